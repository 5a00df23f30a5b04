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
  // Fraction of pixels changed at query i of n: p_init halved at 10, 50, 200, 500, 1000, 2000, 4000, 6000,
  // 8000 (scaled from a 10,000-query budget to n).
  static double patch_fraction(double p_init, int64_t i, int64_t n);

 protected:
  void validate(const Tensor& x) const override;
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

}  // namespace advgrad
