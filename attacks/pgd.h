// Projected gradient descent (Madry et al., "Towards deep learning models resistant to adversarial
// attacks", ICLR 2018), in L-inf ("pgd") and L2 ("pgd-l2"): a uniform random start in the ball, then
// `steps` steps of size alpha along the step direction, projected back into the ball and [0,1].
#pragma once
#include "advgrad/attacks/gradient_attacks.h"

namespace advgrad {

class PGD : public IteratedGradientAttack {
 public:
  // The norm is the options' (make_attack sets it from the table: pgd L-inf, pgd-l2 L2).
  explicit PGD(const AttackOptions& options)
      : IteratedGradientAttack(with_defaults(options), options.norm == Norm::L2 ? "pgd-l2" : "pgd") {}

  // Madry et al.'s step: alpha = 2.5 eps / steps (enough to cross the ball from any start), unless given.
  static double default_step_size(double eps, int steps) { return steps > 0 ? 2.5 * eps / steps : 0.0; }

 private:
  static AttackOptions with_defaults(AttackOptions o) {
    if (o.step_size == 0) o.step_size = default_step_size(o.eps, o.steps);
    return o;
  }
};

}  // namespace advgrad
