// OnnxModel: an ONNX graph as a Module. Its nodes run through advgrad's differentiable ops in the file's
// (checked) topological order; its floating initializers are parameters named as in the file (PyTorch
// writes state_dict names, e.g. "conv1.weight"), BatchNormalization's mean/var inputs are buffers, and
// integer initializers (shapes, axes) are constants outside the state dict. So input and parameter
// gradients, train()/eval(), optimizers, safetensors and checkpoints work as for any module.
// Made by load_onnx (onnx/load_onnx.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "advgrad/nn/module.h"

namespace advgrad {

namespace onnx_import {
struct CompiledGraph;  // onnx/op_table.h
}

class OnnxModel : public Module {
 public:
  OnnxModel(std::unique_ptr<onnx_import::CompiledGraph> graph);
  ~OnnxModel() override;

  Tensor forward(const Tensor& x) override;  // the graph's single output (logits)
  std::string describe() const override;     // "OnnxModel(file.onnx, 23 nodes, opset 13)"

  const std::vector<int64_t>& input_dims() const;  // e.g. {-1, 1, 28, 28}; -1 = symbolic (batch)
  const std::string& input_name() const;
  const std::string& output_name() const;
  int64_t opset() const;
  std::vector<std::pair<std::string, int64_t>> op_counts() const;  // op type -> nodes, sorted by type
  // The model as loaded with every initializer that is a parameter or buffer left out (serialized
  // ModelProto bytes); save_onnx adds them back from the current tensors by name.
  const std::string& model_without_weights() const;

 private:
  std::unique_ptr<onnx_import::CompiledGraph> graph_;
  Generator dropout_generator_;  // every Dropout node draws from it (index keyed by its offset)
};

}  // namespace advgrad
