// Natural training: cross-entropy on the clean batch.
#include "advgrad/train/methods/method.h"

namespace advgrad {

namespace {
class Natural : public TrainingMethod {
 public:
  std::string name() const override { return "natural"; }
  StepLoss loss(const StepContext& c, const Tensor& inputs) override {
    Tensor logits = c.model.forward(inputs);
    return {cross_entropy(logits, c.y), logits, "clean"};
  }
};
}  // namespace

std::unique_ptr<TrainingMethod> make_natural(const MethodOptions&) { return std::make_unique<Natural>(); }

}  // namespace advgrad
