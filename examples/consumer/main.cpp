// A user's own model, trained and attacked through an installed (or add_subdirectory'd) advgrad: a Module
// subclass trained a few SGD steps on synthetic data, then attacked with PGD. Exits non-zero unless the
// model learned the data (clean accuracy >= 90%), PGD does not raise the accuracy, and every adversarial
// example lies in the eps-ball around its input and in [0, 1].
#include <cstdio>
#include <memory>

#include <advgrad/advgrad.h>

#include "core/tensor.h"   // this project's own, not advgrad's
#include "data/dataset.h"  // likewise

using namespace advgrad;

// conv 3x3 (4 channels) -> ReLU -> linear 2.
class TinyNet : public Module {
 public:
  explicit TinyNet(Generator& gen) {
    conv_ = register_module("conv", std::make_shared<Conv2d>(1, 4, 3, gen, 1, 1));
    fc_ = register_module("fc", std::make_shared<Linear>(4 * 8 * 8, 2, gen));
  }
  Tensor forward(const Tensor& x) override { return fc_->forward(flatten(relu(conv_->forward(x)), 1)); }
  std::string describe() const override { return "TinyNet"; }

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<Linear> fc_;
};

double accuracy(Module& model, const Tensor& x, const Tensor& y) {
  const std::vector<int64_t> predicted = argmax(predict(model, x), 1).to_vector<int64_t>();
  const std::vector<int64_t> labels = y.to_vector<int64_t>();
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) right += predicted[i] == labels[i];
  return double(right) / double(labels.size());
}

int main() {
  Generator gen(0);
  TinyNet model(gen);
  SGD optimizer(model.parameters(), /*lr=*/0.1, /*momentum=*/0.9);
  for (int step = 0; step < 60; ++step) {
    const consumer::Batch batch = consumer::synthetic_batch(32, /*seed=*/100 + step);
    optimizer.zero_grad();
    backward(cross_entropy(model(batch.images), batch.labels));
    optimizer.step();
  }

  const consumer::Batch test = consumer::synthetic_batch(200, /*seed=*/1);
  const double clean = accuracy(model, test.images, test.labels);
  AttackOptions options;
  options.eps = 0.1, options.steps = 10;
  const AttackResult pgd = make_attack("pgd", options)->run(model, test.images, test.labels);
  std::printf("%s: clean accuracy %.3f, PGD-10 accuracy at eps 0.1 %.3f\n", model.describe().c_str(), clean,
              pgd.accuracy());

  bool ok = true;
  if (clean < 0.9) std::printf("FAIL: the model did not learn the synthetic data\n"), ok = false;
  if (pgd.accuracy() > clean) std::printf("FAIL: accuracy under attack above clean accuracy\n"), ok = false;
  if (!consumer::in_threat_model(test.images, pgd.x_adv, options.eps))
    std::printf("FAIL: adversarial examples outside the eps-ball or [0, 1]\n"), ok = false;
  return ok ? 0 : 1;
}
