// Adversarial weight perturbation (Wu et al., NeurIPS 2020; the authors' code is csdongxian/AWP), on top
// of another method (pgd, trades, mart). Each step, once the method has crafted its inputs:
//   g = d loss / d w at the crafted inputs (one ascent step of the method's own loss),
//   v = gamma * ||w|| * g / ||g|| per weight tensor (tensors of rank >= 2 only: no biases, no BN, as the
//       authors), w <- w + v,
// the training loss and its gradients are computed at w + v, and before the optimizer step w is put
// back exactly (copied from a saved copy; the authors subtract v after the step, which float rounding
// does not undo bit for bit). The ascent's training-mode forward must not move BatchNorm statistics, so
// the buffers are restored after it. Off during the first `warmup` epochs.
#pragma once
#include "advgrad/train/methods/method.h"

namespace advgrad {

class AWP : public TrainingMethod {
 public:
  AWP(std::unique_ptr<TrainingMethod> inner, double gamma, int warmup_epochs);
  std::string name() const override { return inner_->name(); }  // AWP is an option of the method
  int replays_per_batch() const override { return inner_->replays_per_batch(); }
  bool watch_catastrophic_overfitting() const override { return inner_->watch_catastrophic_overfitting(); }
  void begin_epoch(int epoch) override { inner_->begin_epoch(epoch); }
  Tensor craft(const StepContext& c) override { return inner_->craft(c); }
  void before_loss(const StepContext& c, const Tensor& inputs) override;  // w <- w + v
  StepLoss loss(const StepContext& c, const Tensor& inputs) override { return inner_->loss(c, inputs); }
  void after_backward(const StepContext& c) override { inner_->after_backward(c); }
  void before_optimizer_step(const StepContext& c) override;  // w <- the saved w
  StateDict state() const override { return inner_->state(); }
  void load_state(const StateDict& s) override { inner_->load_state(s); }

  // Whether the weights are perturbed now (between before_loss and before_optimizer_step).
  bool perturbed() const { return !saved_.empty(); }

 private:
  std::unique_ptr<TrainingMethod> inner_;
  double gamma_;
  int warmup_;
  std::vector<std::pair<Tensor, Tensor>> saved_;  // (parameter, its value before the perturbation)
};

}  // namespace advgrad
