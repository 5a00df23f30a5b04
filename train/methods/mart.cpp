// MART (Wang et al. 2020): PGD-CE adversarial examples, trained on with a boosted cross-entropy plus a
// KL term weighted by how badly the clean sample is classified (see mart.h).
#include "advgrad/train/methods/mart.h"

#include "advgrad/nn/losses.h"
#include "advgrad/train/methods/method.h"

namespace advgrad {

Tensor mart_loss(const Tensor& clean_logits, const Tensor& adv_logits, const Tensor& labels, double beta) {
  const int64_t classes = adv_logits.size(1);
  const Tensor is_label = one_hot(labels, classes, adv_logits.dtype()).to(adv_logits.device());
  const Tensor p_adv = softmax(adv_logits, 1), p_clean = softmax(clean_logits, 1);
  // Probabilities are >= 0, so zeroing the label's entry leaves the best other class as the maximum.
  const Tensor best_other = max(p_adv * (rsub(1.0, is_label)), {1});
  const Tensor boosted_ce = cross_entropy(adv_logits, labels) + mean(-log(rsub(1.0001, best_other) + 1e-12));
  const Tensor kl = sum(kl_div(log(p_adv + 1e-12), p_clean, KLReduction::None), {1});
  const Tensor p_label = sum(p_clean * is_label, {1});
  return boosted_ce + mean(kl * rsub(1.0000001, p_label)) * beta;
}

namespace {
class Mart : public TrainingMethod {
 public:
  explicit Mart(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "mart"; }
  Tensor craft(const StepContext& c) override {
    if (c.eps <= 0) return c.x;
    return make_attack("pgd", pgd_options(c.eps, o_.steps, o_.seed))->perturb(c.model, c.x, c.y, attack_stream(uint64_t(c.step), 3));
  }
  StepLoss loss(const StepContext& c, const Tensor& inputs) override {
    Tensor logits = c.model.forward(c.x);
    Tensor adv_logits = c.model.forward(inputs);
    return {mart_loss(logits, adv_logits, c.y, o_.mart_beta), adv_logits, "adversarial"};
  }

 private:
  MethodOptions o_;
};
}  // namespace

std::unique_ptr<TrainingMethod> make_mart(const MethodOptions& o) { return std::make_unique<Mart>(o); }

}  // namespace advgrad
