// First-order attacks: FGSM (Goodfellow et al. 2015), FGSM with random start (Wong et al. 2020),
// BIM/I-FGSM (Kurakin et al. 2017), PGD in L-inf and L2 (Madry et al. 2018), MI-FGSM (Dong et al. 2018).
#pragma once
#include "attacks/attack.h"

namespace advgrad {

// Iterated signed (L-inf) or normalised (L2) gradient steps with projection. FGSM, FGSM-RS, BIM and
// PGD are this with different defaults (see make_attack): steps, step size, random start.
class PGD : public Attack {
 public:
  PGD(AttackOptions options, std::string name) : Attack(std::move(options)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  double step_size() const;  // options().step_size, or 2.5 * eps / steps

 protected:
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;

 private:
  std::string name_;
};

// Momentum iterative FGSM: g <- mu * g + grad / ||grad||_1 (per sample), x <- x + alpha * sign(g).
// Default step eps / steps, no random start.
class MIFGSM : public Attack {
 public:
  explicit MIFGSM(AttackOptions options) : Attack(std::move(options)) {}
  std::string name() const override { return "mifgsm"; }

 protected:
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

// Helpers shared with APGD: the step direction (sign for L-inf, unit L2 direction per sample) and a
// per-sample [N,1,1,...] column from a vector, for masks and step sizes.
Tensor step_direction(const Tensor& g, Norm norm);
Tensor per_sample_column(const std::vector<double>& values, const Tensor& like);

}  // namespace advgrad
