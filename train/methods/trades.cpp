// TRADES (Zhang et al. 2019): x' maximises KL(f(x) || f(x')) in the eps-ball (the "trades-kl" attack),
// then the loss is CE(f(x), y) + beta * KL(f(x) || f(x')), the clean fit plus the boundary term.
#include "advgrad/nn/losses.h"
#include "advgrad/train/methods/method.h"

namespace advgrad {

namespace {
class Trades : public TrainingMethod {
 public:
  explicit Trades(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "trades"; }
  Tensor craft(const StepContext& c) override {
    AttackOptions a;
    a.eps = c.eps, a.steps = o_.steps, a.seed = o_.seed;  // trades-kl's default step: 2.5 eps / steps
    return make_attack("trades-kl", a)->perturb(c.model, c.x, c.y, attack_stream(uint64_t(c.step), 2));
  }
  StepLoss loss(const StepContext& c, const Tensor& inputs) override {
    Tensor logits = c.model.forward(c.x);
    Tensor adv_logits = c.model.forward(inputs);
    Tensor boundary = kl_div(log_softmax(adv_logits, 1), softmax(logits, 1));
    return {cross_entropy(logits, c.y) + boundary * o_.trades_beta, adv_logits, "adversarial"};
  }

 private:
  MethodOptions o_;
};
}  // namespace

std::unique_ptr<TrainingMethod> make_trades(const MethodOptions& o) { return std::make_unique<Trades>(o); }

}  // namespace advgrad
