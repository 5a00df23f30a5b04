// Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
// parameter-free attacks", ICML 2020): PGD with momentum 0.75 and a step size that starts at 2*eps and
// halves at checkpoints when progress stalls; restarts from the best point found.
#pragma once
#include "advgrad/attacks/attack.h"

namespace advgrad {

// APGD-CE / APGD-DLR (the loss in options), untargeted or targeted (targets given).
class APGD : public Attack {
 public:
  APGD(AttackOptions options, std::string name) : Attack(std::move(options)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  // The checkpoints w_j in [0, steps]: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06).
  static std::vector<int> checkpoints(int steps);

 protected:
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
  // The core loop with explicit objective settings (used by APGD-T with its own targets).
  Tensor apgd(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, AttackLoss loss,
              bool targeted, Generator& gen, AttackResult& counters);

 private:
  std::string name_;
};

// APGD-T: targeted DLR toward each of the `target_classes` highest other classes in turn (as predicted on
// the clean input), keeping every sample that any target run misclassifies. Untargeted success criterion.
class APGDTargeted : public APGD {
 public:
  explicit APGDTargeted(AttackOptions options) : APGD(std::move(options), "apgd-t") {}

 protected:
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

}  // namespace advgrad
