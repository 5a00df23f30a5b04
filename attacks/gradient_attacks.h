// What the first-order attacks share: the iterated projected-gradient loop that FGSM, FGSM-RS, BIM and
// PGD all are (attacks/fgsm.h, bim.h, pgd.h), the step direction, per-sample columns and early stopping
// (also used by MI-FGSM and APGD).
#pragma once
#include "advgrad/attacks/attack.h"

namespace advgrad {

// x_0 = x (or a random point of the ball), x_{t+1} = Proj(x_t + alpha * d(grad_x L(x_t))), for `steps`
// steps, d the step direction of the norm. The attacks built on it differ only in their defaults
// (steps, alpha, random start), which each resolves in its own constructor: options() is what runs.
class IteratedGradientAttack : public Attack {
 public:
  std::string name() const override { return name_; }
  double step_size() const { return opt_.step_size; }  // alpha

 protected:
  // `resolved`: options with every default already filled in by the derived attack.
  IteratedGradientAttack(AttackOptions resolved, std::string name)
      : Attack(std::move(resolved)), name_(std::move(name)) {}
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;

 private:
  std::string name_;
};

// The step direction: sign(g) for L-inf (a zero gradient does not move), g / ||g||_2 per sample for L2.
Tensor step_direction(const Tensor& g, Norm norm);
// A per-sample [N,1,1,...] column shaped to broadcast against `like`, from a vector (masks, step sizes).
Tensor per_sample_column(const std::vector<double>& values, const Tensor& like);

// Early stopping (AttackOptions::early_stop): a sample fooled at the point just evaluated is done and
// keeps that point for good; the others take the next step.
class FreezeFooled {
 public:
  explicit FreezeFooled(const Tensor& x);  // nothing frozen yet; x [N, ...] gives N, dtype and device
  // Freezes the samples that `logits` (the model at `adv`) shows fooled, and returns `next` with the
  // frozen samples kept at `adv`.
  Tensor step(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted, const Tensor& adv,
              const Tensor& next);
  bool all_frozen() const;  // nothing would move any more: the attack can stop

 private:
  Tensor frozen_;  // [N, 1, 1, ...] 1 where frozen, in x's dtype
};

}  // namespace advgrad
