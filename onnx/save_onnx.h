// Writing a Module as an ONNX file, by tracing as torch.onnx.export does: one forward pass in eval mode and
// without gradients, under a Tracer (autograd/trace.h), turned into ONNX nodes. Parameters and buffers
// (matched by identity with named_parameters / named_buffers) become initializers named by their
// state_dict keys ("0.weight", "layer1.bn1.running_mean"); other tensors an op reads that no op wrote
// become constant initializers. BatchNorm becomes BatchNormalization with its running statistics; the
// recurrent layers become ONNX LSTM/GRU/RNN nodes whose weights are converted to ONNX's gate layouts by
// nodes in the graph (so the initializers keep PyTorch's names and shapes); Dropout writes nothing (eval).
//
// The batch dim of the input and the output is symbolic ("N"). The forward runs twice, at two batch sizes
// with different inputs, and both graphs must agree: an op whose attributes or constant inputs depend on
// the batch size or on the input values (a tensor built from x.size(0), a value read with item() and fed
// back) is refused naming the op. An OnnxModel exports its own graph (model_without_weights()) with the
// current tensors put back, so fine-tuned weights go out in the original graph.
//
// The file passes onnx::checker::check_model and ONNX shape inference (checked before it is written;
// written atomically). Every problem is a ValueError (IOError for the file) naming the op or the file.
#pragma once
#include <cstdint>
#include <string>

#include "advgrad/core/shape.h"
#include "advgrad/nn/module.h"

namespace advgrad {

struct OnnxExportOptions {
  int64_t opset = 13;                     // 13 to 17: the ops are written in their opset-13 forms
  std::string input_name = "input";
  std::string output_name = "logits";
  std::string batch_dim_name = "N";
  std::string producer_name = "advgrad";
};

// sample_input_shape: one sample without the batch dim, e.g. {1, 28, 28}.
void save_onnx(Module& module, const Shape& sample_input_shape, const std::string& path,
               const OnnxExportOptions& options = {});

// The serialized ModelProto that save_onnx writes (for tests and in-memory use).
std::string export_onnx_to_string(Module& module, const Shape& sample_input_shape,
                                  const OnnxExportOptions& options = {});

}  // namespace advgrad
