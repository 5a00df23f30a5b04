// Free adversarial training (Shafahi et al. 2019): each batch is replayed m (= --steps) times; one
// backward gives both the weight gradient and the input gradient, which moves the perturbation by
// eps * sign(g). The perturbation carries over from replay to replay and batch to batch, and starts at
// 0 each epoch (so a checkpoint between epochs needs none of it).
#include "advgrad/train/methods/method.h"

namespace advgrad {

namespace {
class Free : public TrainingMethod {
 public:
  explicit Free(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "free"; }
  int replays_per_batch() const override { return o_.steps; }
  bool watch_catastrophic_overfitting() const override { return true; }
  void begin_epoch(int) override { delta_ = Tensor(); }
  Tensor craft(const StepContext& c) override {
    if (!delta_.defined() || delta_.shape() != c.x.shape()) delta_ = zeros_like(c.x);
    perturbed_ = project(c.x + delta_, c.x, c.eps, Norm::Linf).requires_grad_();
    return perturbed_;
  }
  StepLoss loss(const StepContext& c, const Tensor& inputs) override {
    Tensor logits = c.model.forward(inputs);
    return {cross_entropy(logits, c.y), logits, "adversarial"};
  }
  void after_backward(const StepContext& c) override {
    NoGradGuard no_grad;
    delta_ = project(c.x + delta_ + sign(perturbed_.grad()) * c.eps, c.x, c.eps, Norm::Linf) - c.x;
  }

 private:
  MethodOptions o_;
  Tensor delta_, perturbed_;
};
}  // namespace

std::unique_ptr<TrainingMethod> make_free(const MethodOptions& o) { return std::make_unique<Free>(o); }

}  // namespace advgrad
