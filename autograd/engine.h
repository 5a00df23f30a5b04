// Reverse-mode differentiation over the recorded graph.
#pragma once
#include <vector>

#include "advgrad/core/tensor.h"

namespace advgrad {

// Accumulates d(root)/d(leaf) into .grad of every leaf that requires grad and that root depends on.
// grad_root defaults to 1 for a one-element root; other roots need it (ShapeError otherwise).
// The graph stays usable: backward may run again on it (gradients then add up).
void backward(const Tensor& root, const Tensor& grad_root = Tensor());

// Gradients of sum(outputs[k] * grad_outputs[k]) with respect to each of `inputs`, returned in order.
// No .grad of any tensor changes (attacks rely on this: crafting an example never touches the model's
// gradients), and only the part of the graph leading to `inputs` is evaluated (weight-gradient work is
// skipped). An input the outputs do not depend on gets an undefined tensor if allow_unused, else an
// AutogradError.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool allow_unused = false);

}  // namespace advgrad
