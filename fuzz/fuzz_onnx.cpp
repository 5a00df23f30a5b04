// libFuzzer target for the ONNX loader (onnx/load_onnx.cpp and the op table): load_onnx_from_memory with
// small limits, and, when a model loads, one forward (and the file summary) on an input of the model's
// shape (symbolic dims = 2) of at most 4096 elements. Each step either succeeds or raises advgrad::Error;
// anything else (a crash, a sanitizer report, another exception type, a leak, an allocation past
// -rss_limit_mb) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "advgrad/core/error.h"
#include "advgrad/onnx/load_onnx.h"

using namespace advgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  OnnxLoadOptions options;
  options.max_file_bytes = 1 << 20;
  options.max_nodes = 256;
  options.max_tensor_bytes = 4 << 20;
  try {
    summarize_onnx_from_memory(data, size, "fuzz-input", options);
  } catch (const Error&) {
  }
  std::shared_ptr<OnnxModel> model;
  try {
    model = load_onnx_from_memory(data, size, "fuzz-input", options);
  } catch (const Error&) {
    return 0;  // the expected answer to malformed input
  }
  Shape shape;
  int64_t numel = 1;
  for (int64_t d : model->input_dims()) {
    shape.push_back(d < 0 ? 2 : d);
    numel *= std::max<int64_t>(shape.back(), 1);
    if (numel > 4096) return 0;
  }
  try {
    model->eval();
    Tensor y = model->forward(full(shape, 0.5));
    if (!y.defined()) __builtin_trap();  // a model's forward always gives its output
  } catch (const Error&) {
  }
  return 0;
}
