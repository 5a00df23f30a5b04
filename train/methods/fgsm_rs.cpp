// "Fast is better than free" (Wong et al. 2020): one FGSM step of 1.25 eps from a uniform random start
// (make_attack's fgsm-rs defaults), then cross-entropy there. Watched for catastrophic overfitting.
#include "advgrad/train/methods/method.h"

namespace advgrad {

namespace {
class FgsmRS : public TrainingMethod {
 public:
  explicit FgsmRS(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "fgsm-rs"; }
  bool watch_catastrophic_overfitting() const override { return true; }
  Tensor craft(const StepContext& c) override {
    AttackOptions a = pgd_options(c.eps, o_.steps, o_.seed);
    a.step_size = 0;  // fgsm-rs's default: 1.25 eps
    auto attack = make_attack("fgsm-rs", a);
    return with_adversarial_rows(c, *attack, o_.adv_fraction, attack_stream(uint64_t(c.step), 1));
  }
  StepLoss loss(const StepContext& c, const Tensor& inputs) override {
    Tensor logits = c.model.forward(inputs);
    return {cross_entropy(logits, c.y), logits, o_.adv_fraction < 1 ? "mixed" : "adversarial"};
  }

 private:
  MethodOptions o_;
};
}  // namespace

std::unique_ptr<TrainingMethod> make_fgsm_rs(const MethodOptions& o) { return std::make_unique<FgsmRS>(o); }

}  // namespace advgrad
