// Momentum iterative FGSM (Dong et al., "Boosting adversarial attacks with momentum", CVPR 2018):
// g <- mu * g + grad / mean|grad| (per sample), x <- Proj(x + alpha * sign(g)), from the clean point.
#pragma once
#include "advgrad/attacks/gradient_attacks.h"

namespace advgrad {

// alpha = eps / steps unless given; mu = options().momentum (1.0, the paper's).
class MIFGSM : public Attack {
 public:
  explicit MIFGSM(const AttackOptions& options) : Attack(with_defaults(options)) {}
  std::string name() const override { return "mifgsm"; }

 protected:
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;

 private:
  static AttackOptions with_defaults(AttackOptions o) {
    o.random_start = false;  // it has none
    if (o.step_size == 0 && o.steps > 0) o.step_size = o.eps / o.steps;
    return o;
  }
};

}  // namespace advgrad
