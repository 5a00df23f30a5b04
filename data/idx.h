// IDX files, the MNIST container: bytes 00 00 <type> <ndim>, then ndim big-endian uint32 dims, then the
// elements in row-major order. Only unsigned bytes (type 0x08) are read: every MNIST-family file uses them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace advgrad {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. [60000, 28, 28] for images, [60000] for labels
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
};

// Parses an IDX file held in memory, raw or gzip-compressed (recognised by its magic bytes). `name` stands
// for the file in messages. IOError for: an empty input, corrupt/oversized gzip data, a short header, bad
// magic, an element type other than 0x08, zero dimensions, dims whose product exceeds the bytes present
// (including products that would overflow), and bytes left over after the elements. Nothing is allocated
// from a header value before it has been checked against the actual size.
IdxArray parse_idx(const uint8_t* data, size_t size, const std::string& name);

// Reads and parses `path` (see read_file_bytes for the size cap).
IdxArray read_idx(const std::string& path);

}  // namespace advgrad
