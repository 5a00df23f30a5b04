#include "advgrad/train/methods/awp.h"

#include "advgrad/autograd/engine.h"

namespace advgrad {

AWP::AWP(std::unique_ptr<TrainingMethod> inner, double gamma, int warmup_epochs)
    : inner_(std::move(inner)), gamma_(gamma), warmup_(warmup_epochs) {
  if (!inner_) throw ValueError("AWP: no method to perturb the weights of");
  if (!(gamma >= 0)) throw ValueError("AWP: gamma must be >= 0, got " + std::to_string(gamma));
  if (warmup_epochs < 0) throw ValueError("AWP: warmup must be >= 0 epochs, got " + std::to_string(warmup_epochs));
}

void AWP::before_loss(const StepContext& c, const Tensor& inputs) {
  inner_->before_loss(c, inputs);
  saved_.clear();
  if (gamma_ == 0 || c.epoch < warmup_) return;
  std::vector<Tensor> weights;
  for (const auto& [name, p] : c.model.named_parameters())
    if (p.dim() >= 2 && p.requires_grad()) weights.push_back(p);
  if (weights.empty()) return;
  std::vector<std::pair<Tensor, Tensor>> buffers;
  for (const auto& [name, b] : c.model.named_buffers()) buffers.emplace_back(b, b.clone());

  // The ascent direction: the gradient of the method's loss at the crafted inputs (grad(), so no .grad changes).
  std::vector<Tensor> g = grad({inner_->loss(c, inputs).loss}, weights);
  NoGradGuard no_grad;
  for (auto& [b, value] : buffers) b.copy_(value);
  for (size_t i = 0; i < weights.size(); ++i) {
    Tensor& w = weights[i];
    const Tensor w_norm = sqrt(sum(w * w)), g_norm = sqrt(sum(g[i] * g[i]));
    const Tensor v = g[i] * (w_norm / (g_norm + 1e-20)) * gamma_;
    saved_.emplace_back(w, w.clone());
    w.add_(v);
  }
}

void AWP::before_optimizer_step(const StepContext& c) {
  inner_->before_optimizer_step(c);
  NoGradGuard no_grad;
  for (auto& [w, value] : saved_) w.copy_(value);
  saved_.clear();
}

}  // namespace advgrad
