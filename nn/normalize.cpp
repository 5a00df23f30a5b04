#include "advgrad/nn/normalize.h"

#include <cstdio>

namespace advgrad {

InputNormalized::InputNormalized(std::shared_ptr<Module> inner, std::vector<double> mean, std::vector<double> std)
    : inner_(std::move(inner)), mean_(std::move(mean)), std_(std::move(std)) {
  if (!inner_) throw ValueError("InputNormalized: the inner model is null");
  if (mean_.empty() || mean_.size() != std_.size())
    throw ValueError("InputNormalized: mean and std need the same, non-zero number of values, got " +
                     std::to_string(mean_.size()) + " and " + std::to_string(std_.size()));
  for (double s : std_)
    if (!(s > 0)) throw ValueError("InputNormalized: every std must be > 0");
  // The inner model's tensors under their own names: the same handles, so loading, saving, to() and the
  // optimiser all act on the inner model. register_parameter marks a leaf as requiring grad: a frozen
  // inner parameter stays frozen.
  for (const auto& [name, p] : inner_->named_parameters()) {
    const bool trainable = p.requires_grad();
    Tensor shared = register_parameter(name, p);
    if (!trainable) shared.requires_grad_(false);
  }
  for (const auto& [name, b] : inner_->named_buffers()) register_buffer(name, b);
  for (const auto& [name, g] : inner_->named_generators()) register_generator(name, *g);
}

Tensor InputNormalized::forward(const Tensor& x) {
  // The inner model is not a child (its names would gain a prefix), so train()/eval() reach it here.
  if (inner_->is_training() != is_training()) inner_->train(is_training());
  if (x.dim() < 2) throw ShapeError("InputNormalized: input " + shape_str(x.shape()) + " has no channel dim (dim 1)");
  const size_t channels = size_t(x.size(1));
  if (mean_.size() != 1 && mean_.size() != channels)
    throw ShapeError("InputNormalized: input " + shape_str(x.shape()) + " has " + std::to_string(channels) +
                     " channels in dim 1, mean and std have " + std::to_string(mean_.size()) + " values");
  // One value stands for every channel; Normalize takes one per channel (graph ops: gradients flow).
  Normalize normalize(mean_.size() == 1 ? std::vector<double>(channels, mean_[0]) : mean_,
                            std_.size() == 1 ? std::vector<double>(channels, std_[0]) : std_);
  return inner_->forward(normalize.forward(x));
}

std::string InputNormalized::describe() const {
  auto list = [](const std::vector<double>& v) {
    std::string s;
    char buf[32];
    for (double d : v) std::snprintf(buf, sizeof buf, "%g", d), s += (s.empty() ? "" : ", ") + std::string(buf);
    return "[" + s + "]";
  };
  return "InputNormalized(mean=" + list(mean_) + ", std=" + list(std_) + ") over " + inner_->describe();
}

}  // namespace advgrad
