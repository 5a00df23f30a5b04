#include "data/gzip.h"

#include <zlib.h>

#include <algorithm>

#include "core/error.h"

namespace advgrad {

bool is_gzip(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

namespace {
struct Inflater {
  z_stream zs{};
  ~Inflater() { inflateEnd(&zs); }
};
}  // namespace

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name, uint64_t max_bytes) {
  Inflater inf;
  // windowBits 15 + 16: accept only the gzip wrapper (header and CRC-32 trailer are checked by zlib).
  if (inflateInit2(&inf.zs, 15 + 16) != Z_OK) throw IOError(name + ": cannot initialise zlib");

  // z_stream counts in 32-bit uInt, so input and output are handed over in pieces of at most 1 GiB.
  const size_t kPiece = size_t(1) << 30;
  // One byte beyond the cap is allowed in the buffer so that "exactly max_bytes" and "more" differ.
  const uint64_t limit = std::min<uint64_t>(max_bytes, uint64_t(1) << 62) + 1;
  std::vector<uint8_t> out;
  size_t in_pos = 0, produced = 0;
  for (;;) {
    if (inf.zs.avail_in == 0 && in_pos < size) {
      size_t n = std::min(size - in_pos, kPiece);
      inf.zs.next_in = const_cast<Bytef*>(data + in_pos);  // zlib's API is not const-correct; it never writes
      inf.zs.avail_in = uInt(n);
      in_pos += n;
    }
    if (produced == out.size()) {
      if (out.size() >= limit)
        throw IOError(name + ": decompresses to more than the " + std::to_string(max_bytes) + "-byte limit");
      // Geometric growth (64 KiB first), clipped to the cap: memory follows the data actually produced.
      uint64_t grow = std::max<uint64_t>(out.size(), uint64_t(1) << 16);
      out.resize(size_t(std::min<uint64_t>(limit, out.size() + grow)));
    }
    inf.zs.next_out = out.data() + produced;
    inf.zs.avail_out = uInt(std::min(out.size() - produced, kPiece));
    int ret = inflate(&inf.zs, Z_NO_FLUSH);
    produced = size_t(inf.zs.next_out - out.data());

    if (ret == Z_STREAM_END) {
      if (inf.zs.avail_in == 0 && in_pos == size) break;
      // More bytes follow the member: another gzip member, or garbage that the next inflate rejects.
      if (inflateReset(&inf.zs) != Z_OK) throw IOError(name + ": cannot reset zlib");
      continue;
    }
    if (ret == Z_BUF_ERROR && inf.zs.avail_in == 0 && in_pos == size)
      throw IOError(name + ": truncated gzip data (the stream ends early)");
    if (ret != Z_OK && ret != Z_BUF_ERROR)
      throw IOError(name + ": corrupt gzip data (" + (inf.zs.msg ? inf.zs.msg : "zlib error " + std::to_string(ret)) +
                    ")");
  }
  if (produced > max_bytes)
    throw IOError(name + ": decompresses to more than the " + std::to_string(max_bytes) + "-byte limit");
  out.resize(produced);
  return out;
}

}  // namespace advgrad
