// Square attack, L-inf (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020): a score-based black-box
// attack. It needs only the model's logits: random square patches set to +-eps per channel are kept
// when they lower the margin z_y - max_{j != y} z_j, with the patch size shrinking on a fixed schedule.
#pragma once
#include "advgrad/attacks/attack.h"

namespace advgrad {

class SquareAttack : public Attack {
 public:
  explicit SquareAttack(AttackOptions options) : Attack(std::move(options)) {}
  std::string name() const override { return "square"; }
  // Fraction of pixels changed at iteration i of n: p_init halved after each of the marks 10, 50, 200, 500,
  // 1000, 2000, 4000, 6000, 8000. The standard schedule (the authors' p_selection as AutoAttack runs it,
  // resc_schedule off) counts i itself, so 5000 queries pass the marks up to 4000; `rescale` instead
  // reads the marks on a 10,000 scale of n (i -> floor(i / n * 10000)), the authors' optional variant.
  static double patch_fraction(double p_init, int64_t i, int64_t n, bool rescale = false);

 protected:
  void validate(const Tensor& x) const override;
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

}  // namespace advgrad
