// LR schedules: closed forms of PyTorch's schedulers, evaluated from the step index alone.
#include "advgrad/nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "advgrad/core/error.h"
#include "advgrad/nn/optim.h"

namespace advgrad {

namespace {

constexpr double kPi = 3.14159265358979323846;

void check_step(const char* name, int64_t step) {
  if (step < 0) throw ValueError(std::string(name) + ": negative step " + std::to_string(step));
}

}  // namespace

void apply_schedule(Optimizer& opt, const LRSchedule& schedule, int64_t step) {
  opt.set_lr(schedule.lr_at(step));
  if (std::optional<double> m = schedule.momentum_at(step)) opt.set_schedule_momentum(*m);
}

// ---- Constant ----

Constant::Constant(double lr) : lr_(lr) {}

double Constant::lr_at(int64_t step) const {
  check_step("Constant", step);
  return lr_;
}

// ---- StepLR ----

StepLR::StepLR(double base, int64_t step_size, double gamma) : base_(base), gamma_(gamma), step_size_(step_size) {
  if (step_size <= 0) throw ValueError("StepLR: step_size must be positive, got " + std::to_string(step_size));
}

double StepLR::lr_at(int64_t step) const {
  check_step("StepLR", step);
  return base_ * std::pow(gamma_, double(step / step_size_));
}

// ---- MultiStepLR ----

MultiStepLR::MultiStepLR(double base, std::vector<int64_t> milestones, double gamma)
    : base_(base), gamma_(gamma), milestones_(std::move(milestones)) {
  std::sort(milestones_.begin(), milestones_.end());
}

double MultiStepLR::lr_at(int64_t step) const {
  check_step("MultiStepLR", step);
  // Milestones passed so far, repeats included (PyTorch's bisect_right on the sorted list).
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
  return base_ * std::pow(gamma_, double(passed));
}

// ---- CosineAnnealingLR ----

CosineAnnealingLR::CosineAnnealingLR(double base, int64_t T_max, double eta_min)
    : base_(base), eta_min_(eta_min), T_max_(T_max) {
  if (T_max <= 0) throw ValueError("CosineAnnealingLR: T_max must be positive, got " + std::to_string(T_max));
}

double CosineAnnealingLR::lr_at(int64_t step) const {
  check_step("CosineAnnealingLR", step);
  return eta_min_ + (base_ - eta_min_) * (1 + std::cos(kPi * double(step) / double(T_max_))) / 2;
}

// ---- OneCycleLR ----

OneCycleLR::OneCycleLR(double max_lr, int64_t total_steps, OneCycleOptions options)
    : total_steps_(total_steps), options_(options) {
  const OneCycleOptions& o = options_;
  if (!(max_lr >= 0)) throw ValueError("OneCycleLR: invalid max_lr " + std::to_string(max_lr));
  if (total_steps <= 0)
    throw ValueError("OneCycleLR: total_steps must be positive, got " + std::to_string(total_steps));
  if (!(o.pct_start >= 0 && o.pct_start <= 1))
    throw ValueError("OneCycleLR: pct_start must be in [0, 1], got " + std::to_string(o.pct_start));
  if (!(o.div_factor > 0) || !(o.final_div_factor > 0))
    throw ValueError("OneCycleLR: div_factor and final_div_factor must be positive");
  const double initial = max_lr / o.div_factor;
  const double min_lr = initial / o.final_div_factor;
  // Phase ends are real numbers computed exactly as PyTorch does (pct_start * n need not be an integer).
  const double warm_end = o.pct_start * double(total_steps) - 1;
  const double last = double(total_steps - 1);
  const double lo = o.base_momentum, hi = o.max_momentum;
  if (o.three_phase) {
    phases_ = {{warm_end, initial, max_lr, hi, lo},
               {2 * o.pct_start * double(total_steps) - 2, max_lr, initial, lo, hi},
               {last, initial, min_lr, hi, hi}};
  } else {
    phases_ = {{warm_end, initial, max_lr, hi, lo}, {last, max_lr, min_lr, lo, hi}};
  }
}

std::pair<size_t, double> OneCycleLR::locate(int64_t step) const {
  check_step("OneCycleLR", step);
  if (step > total_steps_)
    throw ValueError("OneCycleLR: step " + std::to_string(step) + " is past total_steps " +
                     std::to_string(total_steps_));
  const double s = double(step);
  double start = 0;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const double end = phases_[i].end_step;
    if (s <= end || i + 1 == phases_.size()) {
      // A zero-length phase can only be hit at its boundary step (PyTorch divides by zero there).
      if (end == start)
        throw ValueError("OneCycleLR: step " + std::to_string(step) + " falls in an empty phase (pct_start " +
                         std::to_string(options_.pct_start) + ")");
      return {i, (s - start) / (end - start)};
    }
    start = end;
  }
  return {phases_.size() - 1, 1.0};  // not reached: the last phase takes every remaining step
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal == Anneal::Linear) return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1);
}

double OneCycleLR::lr_at(int64_t step) const {
  auto [i, pct] = locate(step);
  return anneal(phases_[i].start_lr, phases_[i].end_lr, pct);
}

std::optional<double> OneCycleLR::momentum_at(int64_t step) const {
  if (!options_.cycle_momentum) return {};
  auto [i, pct] = locate(step);
  return anneal(phases_[i].start_momentum, phases_[i].end_momentum, pct);
}

// ---- LinearWarmup ----

LinearWarmup::LinearWarmup(std::shared_ptr<const LRSchedule> inner, int64_t warmup_steps, double start_factor)
    : inner_(std::move(inner)), warmup_(warmup_steps), start_factor_(start_factor) {
  if (!inner_) throw ValueError("LinearWarmup: no inner schedule");
  if (warmup_steps < 0) throw ValueError("LinearWarmup: negative warmup_steps " + std::to_string(warmup_steps));
  if (!(start_factor >= 0 && start_factor <= 1))
    throw ValueError("LinearWarmup: start_factor must be in [0, 1], got " + std::to_string(start_factor));
}

double LinearWarmup::lr_at(int64_t step) const {
  check_step("LinearWarmup", step);
  if (step >= warmup_) return inner_->lr_at(step - warmup_);
  // PyTorch LinearLR's closed form with end_factor 1 and total_iters = warmup.
  const double factor = start_factor_ + (1 - start_factor_) * double(step) / double(warmup_);
  return inner_->lr_at(0) * factor;
}

std::optional<double> LinearWarmup::momentum_at(int64_t step) const {
  check_step("LinearWarmup", step);
  return inner_->momentum_at(step >= warmup_ ? step - warmup_ : 0);
}

}  // namespace advgrad
