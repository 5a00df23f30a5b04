// gzip decompression (zlib) with a cap on the output, checked while streaming: a small hostile .gz file
// cannot make us allocate gigabytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/data/file_io.h"

namespace advgrad {

// True when the bytes start with the gzip magic 1f 8b. Loaders detect compression by content, not by
// the file name, so a misnamed file is still read correctly.
bool is_gzip(const uint8_t* data, size_t size);

// Inflates a gzip stream (several concatenated members are allowed, as gunzip allows). The output buffer
// is allocated once at its final size: one pass when the size in the trailer (ISIZE) is right, else the
// output is first counted and then inflated again. Memory stays within the output size (so within
// max_bytes) plus a constant. IOError naming `name` for corrupt or truncated data, trailing garbage, or
// output larger than max_bytes (found without holding more than a 64 KiB scratch buffer).
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name,
                            uint64_t max_bytes = kMaxDataFileBytes);

}  // namespace advgrad
