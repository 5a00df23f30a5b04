#include "advgrad/autograd/function.h"

namespace advgrad {

namespace {
class FunctionNode : public Node {
 public:
  FunctionNode(const char* name, BackwardFn fn) : Node(name), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const Tensor& g, const std::vector<bool>& needed) override { return fn_(g, needed); }

 private:
  BackwardFn fn_;
};
}  // namespace

bool should_record(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output, BackwardFn backward) {
  if (!should_record(inputs)) return output;
  if (!is_floating(output.dtype()))
    throw AutogradError(std::string(name) + ": an int64 output cannot carry gradients");
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  for (const auto& t : inputs) {
    node->next_edges.push_back(gradient_edge(t));
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
    node->input_dtypes.push_back(t.defined() ? t.dtype() : DType::F32);
  }
  Tensor out = output.detach();  // a fresh handle: the caller's `output` may be shared (e.g. a view)
  out.impl().grad_fn = std::move(node);
  return out;
}

}  // namespace advgrad
