// Reading an ONNX file into an OnnxModel (a Module). The file is untrusted input: its size, node count,
// initializer bytes, dims and references are checked before anything is allocated from them, and every
// problem is one advgrad::IOError (the file cannot be read or parsed, or the ONNX checker refuses it) or
// ValueError (the graph uses something advgrad does not implement), its message starting with the name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "advgrad/onnx/onnx_model.h"

namespace advgrad {

struct OnnxLoadOptions {
  uint64_t max_file_bytes = uint64_t(1) << 30;    // the file (or buffer) itself
  int64_t max_nodes = 100000;                     // nodes in the graph
  uint64_t max_tensor_bytes = uint64_t(1) << 30;  // total bytes of every initializer and Constant
  int64_t max_rank = 8;                           // dims of any one tensor
};

std::shared_ptr<OnnxModel> load_onnx(const std::string& path, const OnnxLoadOptions& options = {});
std::shared_ptr<OnnxModel> load_onnx_from_memory(const void* data, size_t size, const std::string& name_for_errors,
                                                 const OnnxLoadOptions& options = {});

// What `advgrad inspect` prints: the file checked as load_onnx checks it, but nothing is run or folded.
struct OnnxValueInfo {
  std::string name;
  std::string dtype;          // "float32", "int64", ...
  std::vector<int64_t> dims;  // -1 = symbolic or unknown
  std::vector<std::string> dim_names;  // the symbolic name ("N", "batch_size") or "" per dim
};
struct OnnxInitializerInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> dims;
  std::string role;  // "parameter", "buffer" (BatchNormalization's mean/var) or "constant" (integers)
};
struct OnnxFileSummary {
  std::string file;
  int64_t ir_version = 0;
  int64_t opset = 0;
  std::string producer;  // "pytorch 1.13.1"
  std::vector<OnnxValueInfo> inputs, outputs;  // graph inputs that are not initializers
  std::vector<std::pair<std::string, int64_t>> op_counts;  // op type -> nodes, sorted by type
  std::vector<OnnxInitializerInfo> initializers;
  // One line per node advgrad cannot run: "node 'NAME' (op TYPE, opset K): <why>"; empty = all supported.
  std::vector<std::string> unsupported;
};
OnnxFileSummary summarize_onnx(const std::string& path, const OnnxLoadOptions& options = {});
OnnxFileSummary summarize_onnx_from_memory(const void* data, size_t size, const std::string& name_for_errors,
                                           const OnnxLoadOptions& options = {});

// The op types the loader runs (sorted), as listed in unsupported-op errors.
std::vector<std::string> supported_onnx_ops();

}  // namespace advgrad
