// safetensors files: save and load a StateDict plus string metadata.
//
// The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section that follows the
// header) and an optional "__metadata__" object of strings, then the tensors' bytes, little-endian,
// row-major. The same files are written and read by the Python `safetensors` package.
//
// Files are treated as hostile: the whole header is checked (sizes, offsets, overlaps, dtypes) before any
// tensor data is read, and every problem is an IOError naming the file and what is wrong. Tensor data is
// then read one tensor at a time straight into that tensor (memory: the tensors returned, nothing more).
//
// Which reader to use:
//   load_safetensors_into(model, path)   weights for a known model: names and shapes are checked against
//                                        the model before any data is read, then only the model's tensors
//                                        are read (an extra 2 GiB entry costs nothing), NaN/inf refused.
//   read_safetensors_header(path)        names, dtypes, shapes and metadata only (reads the header bytes).
//   load_safetensors(path)               everything, up to max_data_bytes (default 4 GiB) of tensor data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "advgrad/nn/state_dict.h"

namespace advgrad {

class Module;

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

// The most tensor data load_safetensors holds for one file by default (the zoo's largest model is ~50 MB).
constexpr uint64_t kMaxSafetensorsDataBytes = uint64_t(4) << 30;

// Reads F32, F64 and I64 tensors; any other dtype (F16, BF16, I32, U8, BOOL, ...) is an IOError. A file
// whose tensors take more than max_data_bytes is an IOError naming the file and both sizes, raised after
// reading the header only (nothing is allocated for the data).
SafetensorsFile load_safetensors(const std::string& path, uint64_t max_data_bytes = kMaxSafetensorsDataBytes);
// The same from bytes in memory (tests, fuzzing); `name_for_errors` stands for the file name in messages.
SafetensorsFile load_safetensors_from_memory(const void* data, size_t size, const std::string& name_for_errors);

// One tensor as the header describes it; offsets are relative to the data section.
struct SafetensorsTensorInfo {
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};
struct SafetensorsHeader {
  std::map<std::string, SafetensorsTensorInfo> tensors;  // by name
  std::map<std::string, std::string> metadata;           // the "__metadata__" object (empty when absent)
  uint64_t data_offset = 0;  // where the data section starts in the file (8 + header length)
  uint64_t data_size = 0;    // its size: exactly the sum of the tensors' byte sizes
};
// The header alone, with every check load_safetensors makes (so the tensors are known to be readable);
// reads only the first 8 + header-length bytes. IOError naming the file.
SafetensorsHeader read_safetensors_header(const std::string& path);
SafetensorsHeader read_safetensors_header_from_memory(const void* data, size_t size, const std::string& name_for_errors);

// Loads a file into existing tensors, as Module::load_state_dict does, without reading what is not wanted:
//  1. the header is read and checked (IOError naming the file, as load_safetensors);
//  2. names and shapes are compared with `destination` (strict: missing and unexpected keys are errors
//     too; not strict: tensors only in the file are ignored, never read). Any problem is a ValueError
//     "load_safetensors_into: <path>: N problem(s): ..." listing each key, raised before any tensor data
//     is read (an unexpected 2 GiB entry costs neither time nor memory);
//  3. each expected tensor is read, converted to its destination's dtype and device, and checked for NaN
//     and inf (ValueError naming each such key, unless allow_non_finite);
//  4. only then are the values copied into the destination tensors (their handles stay valid), so a
//     refused file changes nothing. Extra memory: one copy of the destination's size, never the file's.
// Returns the file's metadata. The destination is typically model.state_dict() (its tensors share the
// model's storage): that is what the Module overload does.
std::map<std::string, std::string> load_safetensors_into(const std::string& path, const StateDict& destination,
                                                         bool strict = true, bool allow_non_finite = false);
std::map<std::string, std::string> load_safetensors_into(Module& model, const std::string& path, bool strict = true,
                                                         bool allow_non_finite = false);
std::map<std::string, std::string> load_safetensors_into_from_memory(const void* data, size_t size,
                                                                     const std::string& name_for_errors,
                                                                     const StateDict& destination, bool strict = true,
                                                                     bool allow_non_finite = false);

}  // namespace advgrad
