// The one-step attacks: FGSM (Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial
// examples", ICLR 2015) and FGSM with a random start (Wong, Rice & Kolter, "Fast is better than free",
// ICLR 2020), the step of fast adversarial training.
#pragma once
#include "advgrad/attacks/gradient_attacks.h"

namespace advgrad {

// x_adv = Proj(x + alpha * sign(grad)), alpha = eps unless given: one step from the clean point.
class FGSM : public IteratedGradientAttack {
 public:
  explicit FGSM(const AttackOptions& options) : IteratedGradientAttack(with_defaults(options), "fgsm") {}

 private:
  static AttackOptions with_defaults(AttackOptions o) {
    o.steps = 1, o.random_start = false;
    if (o.step_size == 0) o.step_size = o.eps;
    return o;
  }
};

// x_adv = Proj(u + alpha * sign(grad at u)), u uniform in the eps-ball; alpha = 1.25 eps unless given
// (Wong et al.'s choice: a larger step makes up for the random start).
class FGSMRandomStart : public IteratedGradientAttack {
 public:
  explicit FGSMRandomStart(const AttackOptions& options)
      : IteratedGradientAttack(with_defaults(options), "fgsm-rs") {}

 private:
  static AttackOptions with_defaults(AttackOptions o) {
    o.steps = 1, o.random_start = true;
    if (o.step_size == 0) o.step_size = 1.25 * o.eps;
    return o;
  }
};

}  // namespace advgrad
