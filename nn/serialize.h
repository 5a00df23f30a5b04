// safetensors files: save and load a StateDict plus string metadata.
//
// The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section that follows the
// header) and an optional "__metadata__" object of strings, then the tensors' bytes, little-endian,
// row-major. The same files are written and read by the Python `safetensors` package.
//
// Files are treated as hostile: the whole header is checked (sizes, offsets, overlaps, dtypes) before any
// tensor data is read, and every problem is an IOError naming the file and what is wrong.
#pragma once
#include <cstddef>
#include <map>
#include <string>

#include "nn/state_dict.h"

namespace advgrad {

// Writes tensors (any dtype advgrad has: F32, F64, I64; any device; any strides) in name order, packed
// with no gaps. Atomic: the bytes go to a temporary file in the same directory, are fsynced, and the
// temporary is renamed over `path`, so a crash leaves either the old file or the new one.
// ValueError for an undefined tensor, a tensor named "__metadata__" or a name that is not valid UTF-8;
// IOError (naming `path`) when the file cannot be written.
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  StateDict tensors;                              // dense float32/float64/int64 tensors on Device::CPU
  std::map<std::string, std::string> metadata;   // the "__metadata__" object (empty when absent)
};

// Reads F32, F64 and I64 tensors; any other dtype (F16, BF16, I32, U8, BOOL, ...) is an IOError.
SafetensorsFile load_safetensors(const std::string& path);
// The same from bytes in memory (tests, fuzzing); `name_for_errors` stands for the file name in messages.
SafetensorsFile load_safetensors_from_memory(const void* data, size_t size, const std::string& name_for_errors);

}  // namespace advgrad
