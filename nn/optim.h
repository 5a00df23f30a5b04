// Optimizers over a list of parameter tensors, with PyTorch's update rules (torch.optim.SGD, Adam, AdamW;
// the single-tensor, non-foreach code path), and gradient-norm clipping.
//
// - Parameters are leaf tensors; their gradients are read from p.grad(). A parameter whose grad is
//   undefined is skipped entirely (no update, no weight decay, no state change), as in PyTorch.
// - step() updates parameters in place, under NoGradGuard, with backend kernels writing into the
//   parameters' own storage: Module parameter handles stay valid, and the storage version is bumped so
//   autograd notices a graph that saved the old values. Temporaries come from a scratch buffer that is
//   reused across parameters and steps; state buffers are allocated once, on a parameter's first update.
// - Hyper-parameters can change between steps (set_lr, set_momentum, set_beta1); LR schedules
//   (nn/schedule.h) use that.
// - state() / load_state() export and restore every buffer bit-exactly, for checkpoints.
//
//   SGD opt(model.parameters(), 0.1, /*momentum=*/0.9);
//   for (...) { opt.zero_grad(); backward(loss(model(x), y)); clip_grad_norm(opt.params(), 1.0); opt.step(); }
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/core/tensor.h"
#include "advgrad/nn/state_dict.h"

namespace advgrad {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)): the next backward starts
  // fresh, and a parameter it does not reach is then skipped by step().
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // ValueError if negative or not finite
  std::vector<Tensor>& params() { return params_; }
  const std::vector<Tensor>& params() const { return params_; }
  // Number of step() calls so far (restored by load_state).
  int64_t step_count() const { return step_count_; }
  const std::string& name() const { return name_; }  // "SGD", "Adam", "AdamW"

  // Sets the hyper-parameter that a momentum-cycling schedule drives (SGD: momentum, Adam/AdamW: beta1,
  // as PyTorch's OneCycleLR does). Returns false, changing nothing, when the optimizer has none.
  virtual bool set_schedule_momentum(double value);

  // The optimizer's buffers as fresh copies, by name:
  //   "step"                  number of step() calls (int64 scalar)
  //   "<i>.momentum_buffer"   SGD, parameter i (once it has been updated with momentum != 0)
  //   "<i>.exp_avg", "<i>.exp_avg_sq", "<i>.step"   Adam/AdamW, parameter i (once it has been updated;
  //                           "<i>.step" counts its updates, which drive the bias corrections)
  // Buffers have their parameter's shape, dtype and device. Hyper-parameters are not included: they are
  // configuration (and schedules recompute lr/momentum from the step count).
  virtual StateDict state() const;
  // Restores buffers saved by state() (values are copied). Checks everything before changing anything;
  // ValueError naming the entry on an unknown name, a parameter index out of range, a shape or dtype that
  // differs from the parameter's, an incomplete set of buffers for a parameter, or a bad step count; and
  // on a buffer holding NaN or inf (a NaN momentum buffer would make every later step NaN while the
  // gradients stay finite) unless allow_non_finite is true.
  virtual void load_state(const StateDict& state, bool allow_non_finite = false);

 protected:
  // params: defined floating-point tensors, each at most once (ValueError otherwise).
  // buffer_names: per-parameter buffers in state() order; per_param_steps: keep "<i>.step" counts.
  Optimizer(std::string name, std::vector<Tensor> params, double lr, std::vector<std::string> buffer_names,
            bool per_param_steps);

  // The gradient of parameter i, checked to match it in shape, dtype and device; undefined if it has none.
  Tensor grad_of(size_t i) const;
  // A dense tensor shaped like `like`, viewing scratch slot `slot` (0 or 1): its contents are garbage and
  // are overwritten by the next borrower of that slot. Grows (allocates) only for a larger parameter.
  Tensor scratch(int slot, const Tensor& like);
  // Buffer k of parameter i (undefined until the subclass creates it).
  Tensor& buffer(size_t i, size_t k) { return buffers_[i][k]; }
  int64_t& param_steps(size_t i) { return param_steps_[i]; }

  std::string name_;
  std::vector<Tensor> params_;
  double lr_;
  int64_t step_count_ = 0;

 private:
  std::vector<std::string> buffer_names_;
  bool per_param_steps_;
  std::vector<std::vector<Tensor>> buffers_;  // [param][buffer]; all undefined or all defined per param
  std::vector<int64_t> param_steps_;          // used when per_param_steps_
  std::vector<Tensor> scratch_[2];            // flat buffers, one per (dtype, device) in use
};

// Stochastic gradient descent with momentum, as torch.optim.SGD:
//   g = grad + weight_decay * p
//   buf = g on the parameter's first momentum step, else momentum * buf + (1 - dampening) * g
//   d = nesterov ? g + momentum * buf : buf        (d = g when momentum == 0)
//   p -= lr * d
class SGD : public Optimizer {
 public:
  // ValueError on a negative lr/momentum/weight_decay, or nesterov without momentum > 0 and dampening 0.
  SGD(std::vector<Tensor> params, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0,
      bool nesterov = false);
  void step() override;
  double momentum() const { return momentum_; }
  void set_momentum(double momentum);  // ValueError if negative
  bool set_schedule_momentum(double value) override;

 private:
  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
};

// Adam, as torch.optim.Adam (amsgrad off). With t = the parameter's update count:
//   g = grad + weight_decay * p                      (L2 penalty; AdamW decays p instead, see below)
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
class Adam : public Optimizer {
 public:
  // ValueError on a negative lr/eps/weight_decay or a beta outside [0, 1).
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0);
  void step() override;
  double beta1() const { return beta1_; }
  void set_beta1(double beta1);  // ValueError outside [0, 1)
  bool set_schedule_momentum(double value) override;

 protected:
  Adam(std::string name, std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
       double weight_decay, bool decoupled);

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;  // AdamW
};

// AdamW, as torch.optim.AdamW: decoupled weight decay, p *= 1 - lr * weight_decay, before the Adam
// update (which then sees the plain gradient).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weight_decay = 1e-2);
};

// Scales all gradients together so that their global L2 norm is at most max_norm, as
// torch.nn.utils.clip_grad_norm_: norm = sqrt(sum of squares of every gradient element), accumulated in
// double in parameter order then element order (deterministic); when max_norm / (norm + 1e-6) < 1 every
// gradient is multiplied by that factor. Parameters without a gradient are ignored. Returns the norm
// before clipping (0 if no gradient exists). A non-finite norm is returned as is and the gradients are
// scaled by the resulting factor (NaN, or 0 for an infinite norm), as PyTorch does with
// error_if_nonfinite=False. ValueError if max_norm is negative or NaN.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace advgrad
