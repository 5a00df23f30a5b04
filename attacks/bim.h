// The basic iterative method, I-FGSM (Kurakin, Goodfellow & Bengio, "Adversarial examples in the
// physical world", ICLR workshop 2017): FGSM iterated from the clean point, each step clipped back into
// the ball.
#pragma once
#include <algorithm>

#include "advgrad/attacks/gradient_attacks.h"

namespace advgrad {

// No random start; alpha = eps / steps unless given, so that the steps together reach the ball's edge.
class BIM : public IteratedGradientAttack {
 public:
  explicit BIM(const AttackOptions& options) : IteratedGradientAttack(with_defaults(options), "bim") {}

 private:
  static AttackOptions with_defaults(AttackOptions o) {
    o.random_start = false;
    if (o.step_size == 0) o.step_size = o.eps / std::max(o.steps, 1);
    return o;
  }
};

}  // namespace advgrad
