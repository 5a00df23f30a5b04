// PGD adversarial training (Madry et al. 2018): minimise the cross-entropy at the PGD-K example of each
// sample (K steps of 2.5 eps / K from a uniform random start); --adv-fraction trains on a mix.
#include <cmath>

#include "advgrad/train/methods/method.h"

namespace advgrad {

Tensor with_adversarial_rows(const StepContext& c, Attack& attack, double fraction, uint64_t stream) {
  const int64_t k = int64_t(std::llround(fraction * double(c.y.numel())));
  if (k <= 0 || c.eps <= 0) return c.x;
  if (k == c.y.numel()) return attack.perturb(c.model, c.x, c.y, stream);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < k; ++i) rows.push_back(i);
  Tensor mixed = c.x.clone();
  put_rows(mixed, rows, attack.perturb(c.model, take_rows(c.x, rows), take_rows(c.y, rows), stream));
  return mixed;
}

namespace {
class MadryPGD : public TrainingMethod {
 public:
  explicit MadryPGD(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "pgd"; }
  Tensor craft(const StepContext& c) override {
    auto attack = make_attack("pgd", pgd_options(c.eps, o_.steps, o_.seed));
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

std::unique_ptr<TrainingMethod> make_pgd(const MethodOptions& o) { return std::make_unique<MadryPGD>(o); }

}  // namespace advgrad
