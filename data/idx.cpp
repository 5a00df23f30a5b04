#include "advgrad/data/idx.h"

#include <cstdint>
#include <cstddef>
#include <cstdio>

#include "advgrad/core/error.h"
#include "advgrad/data/file_io.h"
#include "advgrad/data/gzip.h"

namespace advgrad {
namespace {

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", p[i]);
    s += buf;
  }
  return s;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string dims_str(const std::vector<uint32_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// owner, when given, holds the bytes at data: the elements are moved out of it instead of copied, so a
// decompressed file is held once, not twice.
IdxArray parse_raw(const uint8_t* data, size_t size, const std::string& name,
                   std::vector<uint8_t>* owner = nullptr) {
  if (size < 4)
    throw IOError(name + ": truncated: " + std::to_string(size) + " bytes, too short for the 4-byte IDX magic");
  if (data[0] != 0 || data[1] != 0)
    throw IOError(name + ": bad magic " + hex_bytes(data, 4) + ": not an IDX file (expected 00 00 08 <ndim>)");
  if (data[2] != 0x08)
    throw IOError(name + ": unsupported IDX element type 0x" + hex_bytes(data + 2, 1) +
                  " (only 0x08, unsigned byte, is supported)");
  const size_t ndim = data[3];
  if (ndim == 0) throw IOError(name + ": IDX header declares zero dimensions");
  const size_t header = 4 + 4 * ndim;
  if (size < header)
    throw IOError(name + ": truncated header: " + std::to_string(ndim) + " dims need " + std::to_string(header) +
                  " bytes, the file has " + std::to_string(size));

  std::vector<uint32_t> dims(ndim);
  for (size_t i = 0; i < ndim; ++i) dims[i] = read_be32(data + 4 + 4 * i);
  // The product saturates instead of overflowing, and nothing is allocated from it until it is known to
  // equal the bytes actually present: a dim of 4e9 in a 100-byte file is just an error message.
  const uint64_t available = size - header;
  uint64_t count = 1;
  bool overflow = false;
  for (uint32_t d : dims) {
    if (d != 0 && count > UINT64_MAX / d) overflow = true;
    count = overflow ? UINT64_MAX : count * d;
  }
  for (uint32_t d : dims)
    if (d == 0) count = 0, overflow = false;  // a zero dim makes the product 0 whatever the others are
  if (overflow)
    throw IOError(name + ": dims " + dims_str(dims) + " overflow a 64-bit element count (corrupt header)");
  if (count > available)
    throw IOError(name + ": dims " + dims_str(dims) + " need " + std::to_string(count) + " bytes after the header, " +
                  "the file has " + std::to_string(available) + " (truncated file or corrupt header)");
  if (count < available)
    throw IOError(name + ": " + std::to_string(available - count) + " trailing bytes after the " +
                  std::to_string(count) + " elements of dims " + dims_str(dims));

  IdxArray out;
  out.dims.assign(dims.begin(), dims.end());
  if (owner) {
    owner->erase(owner->begin(), owner->begin() + std::ptrdiff_t(header));  // in place, no allocation
    out.data = std::move(*owner);
  } else {
    out.data.assign(data + header, data + header + count);
  }
  return out;
}

}  // namespace

IdxArray parse_idx(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) throw IOError(name + ": empty file (0 bytes)");
  if (is_gzip(data, size)) {
    std::vector<uint8_t> raw = gunzip(data, size, name);
    if (raw.empty()) throw IOError(name + ": empty file (0 bytes after gzip decompression)");
    return parse_raw(raw.data(), raw.size(), name, &raw);
  }
  return parse_raw(data, size, name);
}

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return parse_idx(bytes.data(), bytes.size(), path);
}

}  // namespace advgrad
