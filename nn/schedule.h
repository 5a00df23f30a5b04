// Learning-rate schedules as pure functions of a step index, with PyTorch's formulas
// (torch.optim.lr_scheduler). Because lr_at(step) depends on nothing but `step`, resuming a run needs
// only the step count, and a schedule can be evaluated anywhere (plots, tests) without an optimizer.
//
// The step index is the number of scheduler.step() calls PyTorch would have made so far: lr_at(0) is the
// LR of the first optimizer step. "Stepped per batch or per epoch" is only a matter of which counter you
// pass: the optimizer-step (batch) index for per-batch schedules such as OneCycleLR, or the epoch index for
// per-epoch ones such as StepLR(base, 30, 0.1) stepped once an epoch:
//
//   for (int64_t epoch = 0; ...; ++epoch)
//     for (...batches...) {
//       apply_schedule(opt, onecycle, global_batch++);   // per batch
//       // or: apply_schedule(opt, steplr, epoch);       // per epoch
//       ...; opt.step();
//     }
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace advgrad {

class Optimizer;

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  // The learning rate for step `step` >= 0 (ValueError for a negative step).
  virtual double lr_at(int64_t step) const = 0;
  // The momentum (SGD) or beta1 (Adam) for that step, for schedules that cycle it; empty otherwise.
  virtual std::optional<double> momentum_at(int64_t step) const {
    (void)step;
    return {};
  }
};

// Sets opt's lr to schedule.lr_at(step) and, when the schedule cycles momentum and the optimizer has a
// momentum-like hyper-parameter (SGD: momentum, Adam/AdamW: beta1), that too. Call it before opt.step().
void apply_schedule(Optimizer& opt, const LRSchedule& schedule, int64_t step);

// The same LR at every step.
class Constant : public LRSchedule {
 public:
  explicit Constant(double lr);
  double lr_at(int64_t step) const override;

 private:
  double lr_;
};

// base * gamma^floor(step / step_size)  (torch.optim.lr_scheduler.StepLR).
class StepLR : public LRSchedule {
 public:
  StepLR(double base, int64_t step_size, double gamma = 0.1);  // ValueError unless step_size > 0
  double lr_at(int64_t step) const override;

 private:
  double base_, gamma_;
  int64_t step_size_;
};

// base * gamma^(number of milestones <= step)  (MultiStepLR). Milestones may come in any order; one
// listed twice counts twice, as in PyTorch (which keeps them in a Counter).
class MultiStepLR : public LRSchedule {
 public:
  MultiStepLR(double base, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(int64_t step) const override;

 private:
  double base_, gamma_;
  std::vector<int64_t> milestones_;  // sorted
};

// eta_min + (base - eta_min) * (1 + cos(pi * step / T_max)) / 2: PyTorch's closed form of
// CosineAnnealingLR. Past T_max the cosine rises again (period 2*T_max), as PyTorch's recursive form does.
class CosineAnnealingLR : public LRSchedule {
 public:
  CosineAnnealingLR(double base, int64_t T_max, double eta_min = 0);  // ValueError unless T_max > 0
  double lr_at(int64_t step) const override;

 private:
  double base_, eta_min_;
  int64_t T_max_;
};

enum class Anneal { Cos, Linear };

struct OneCycleOptions {
  double pct_start = 0.3;          // fraction of the steps spent warming up
  Anneal anneal = Anneal::Cos;
  double div_factor = 25;          // initial lr = max_lr / div_factor
  double final_div_factor = 1e4;   // min lr = initial lr / final_div_factor
  bool three_phase = false;        // warm up, come back down to the initial lr, then anneal to min lr
  bool cycle_momentum = true;      // momentum moves opposite to the LR, between these two values
  double base_momentum = 0.85;
  double max_momentum = 0.95;
};

// torch.optim.lr_scheduler.OneCycleLR with total_steps (for epochs * steps_per_epoch, multiply first).
// With n = total_steps and w = pct_start * n (a real number), the phases end at steps
//   two-phase:   w - 1 (initial -> max lr; momentum max -> base),  n - 1 (max -> min lr; momentum base -> max)
//   three-phase: w - 1 (initial -> max),  2w - 2 (max -> initial; momentum back to max),  n - 1 (initial -> min;
//                momentum stays at max)
// and step s lies in the first phase whose end is >= s; it is annealed from the phase's start value to its end
// value by pct = (s - previous end) / (end - previous end) (previous end 0 for the first phase). So
// lr_at(0) = max_lr / div_factor with momentum max_momentum, lr_at(n - 1) = the min lr, and max_lr is reached
// exactly only when w is an integer (at step w - 1). Like PyTorch, step n is still allowed (the last phase
// extrapolates; the value is never used by an optimizer step) and a larger step is a ValueError.
class OneCycleLR : public LRSchedule {
 public:
  // ValueError unless max_lr >= 0, total_steps > 0, pct_start in [0, 1] and both factors > 0.
  OneCycleLR(double max_lr, int64_t total_steps, OneCycleOptions options = {});
  double lr_at(int64_t step) const override;
  std::optional<double> momentum_at(int64_t step) const override;
  int64_t total_steps() const { return total_steps_; }

 private:
  struct Phase {
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };
  // (phase index, pct) for a step.
  std::pair<size_t, double> locate(int64_t step) const;
  double anneal(double start, double end, double pct) const;

  int64_t total_steps_;
  OneCycleOptions options_;
  std::vector<Phase> phases_;
};

// Linear warm-up in front of another schedule (PyTorch: SequentialLR([LinearLR(start_factor, end_factor=1,
// total_iters=warmup_steps), inner], milestones=[warmup_steps])):
//   step < warmup_steps:  inner.lr_at(0) * (start_factor + (1 - start_factor) * step / warmup_steps)
//   otherwise:            inner.lr_at(step - warmup_steps)   (the inner schedule starts after the warm-up)
// Momentum (if the inner schedule cycles it) is inner's at step 0 during the warm-up, then follows it.
class LinearWarmup : public LRSchedule {
 public:
  // ValueError unless warmup_steps >= 0 and start_factor in [0, 1]. Default start factor as PyTorch's LinearLR.
  LinearWarmup(std::shared_ptr<const LRSchedule> inner, int64_t warmup_steps, double start_factor = 1.0 / 3);
  double lr_at(int64_t step) const override;
  std::optional<double> momentum_at(int64_t step) const override;

 private:
  std::shared_ptr<const LRSchedule> inner_;
  int64_t warmup_;
  double start_factor_;
};

}  // namespace advgrad
