// Your own model through the Trainer: a Module subclass that is not in the zoo (with Dropout), trained
// adversarially (PGD, Madry et al.) on a small Fashion-MNIST subset, stopped after epoch 1 and resumed,
// checked to end bit-identical to an uninterrupted run, then evaluated with the AutoAttack-style ensemble.
// Exits non-zero when the resumed run differs. Runs in the test suite (CTest: example_custom_model).
//
//   ./custom_model [DATA_DIR]       (default: Debian's Fashion-MNIST)
#include <cstdio>
#include <filesystem>
#include <string>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/layers.h"
#include "advgrad/nn/optim.h"
#include "advgrad/nn/schedule.h"
#include "advgrad/train/trainer.h"

using namespace advgrad;

// conv 3x3 (8) -> ReLU -> max-pool 2 -> conv 3x3 (16) -> ReLU -> max-pool 2 -> Dropout -> linear 10.
class TinyCNN : public Module {
 public:
  explicit TinyCNN(uint64_t seed) {
    Generator gen(seed);
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(1, 8, 3, gen, 1, 1));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(8, 16, 3, gen, 1, 1));
    dropout_ = register_module("dropout", std::make_shared<Dropout>(0.25, seed + 1));  // its counter is checkpoint state
    fc_ = register_module("fc", std::make_shared<Linear>(16 * 7 * 7, 10, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = max_pool2d(relu(conv1_->forward(x)), 2);
    h = max_pool2d(relu(conv2_->forward(h)), 2);
    return fc_->forward(dropout_->forward(flatten(h, 1)));
  }
  std::string describe() const override { return "TinyCNN"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<Linear> fc_;
};

// Rows [begin, end) of a dataset.
Dataset rows(const Dataset& d, int64_t begin, int64_t end) {
  Dataset out = d;
  out.images.assign(d.images.begin() + begin * d.sample_numel(), d.images.begin() + end * d.sample_numel());
  out.labels.assign(d.labels.begin() + begin, d.labels.begin() + end);
  return out;
}

// The same objects every time: a run and its resumption must be given the same model, data and recipe.
Trainer make_trainer(const Dataset& train_split, const Dataset& test_split, const std::string& out, int stop_after) {
  const int epochs = 2;
  const int64_t batch = 64;
  auto model = std::make_shared<TinyCNN>(/*seed=*/0);
  Dataset train = rows(train_split, 0, 512), validation = rows(train_split, 59000, 59128), test = rows(test_split, 0, 100);
  auto optimizer = std::make_unique<SGD>(model->parameters(), 0.15, 0.9, 0.0, 5e-4);
  MethodOptions method_options;
  method_options.steps = 3, method_options.seed = 0;  // PGD-3, step 2.5 eps / 3
  auto method = make_training_method("pgd", method_options);
  auto schedule = std::make_unique<OneCycleLR>(0.15, training_steps(train.size(), batch, epochs, method->replays_per_batch()));
  TrainerOptions options = TrainerOptions().epochs(epochs).batch(batch).eps(0.1).val_pgd_steps(3).final_pgd_steps(5);
  options.eps_ramp_epochs(1).ema_decay(0.9).out(out).stop_after_epochs(stop_after).quiet(true);
  return Trainer(model, std::move(train), std::move(validation), std::move(test), std::move(optimizer), std::move(schedule),
                 std::move(method), options);
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : default_fashion_mnist_dir();
  const Dataset train_split = load_dataset(dir, "train"), test_split = load_dataset(dir, "test");
  const std::string root = (std::filesystem::temp_directory_path() / "advgrad_custom_model").string();
  std::filesystem::remove_all(root);

  Trainer whole = make_trainer(train_split, test_split, root + "/whole", 0);
  const TrainSummary uninterrupted = whole.run();

  make_trainer(train_split, test_split, root + "/part", /*stop_after=*/1).run();  // "interrupted" after epoch 1
  Trainer resumed_trainer = make_trainer(train_split, test_split, root + "/part", 0);
  const TrainSummary resumed = resumed_trainer.run(root + "/part");

  std::printf("TinyCNN, PGD-3 training on 512 images (eps ramped over epoch 1), 2 epochs: clean %.3f  PGD-5 %.3f (100 test images)\n",
              uninterrupted.clean_acc, uninterrupted.pgd_acc);
  std::printf("uninterrupted %s\nresumed       %s\n", uninterrupted.param_sha256.c_str(), resumed.param_sha256.c_str());
  if (uninterrupted.param_sha256 != resumed.param_sha256) {
    std::fprintf(stderr, "error: the resumed run differs from the uninterrupted one\n");
    return 1;
  }

  // The ensemble (AutoAttack's standard set: APGD-CE, APGD-T, FAB-T, Square), at 2% of its usual budget to stay quick.
  const std::vector<int64_t> first = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                      20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39};
  EvalOptions eo;
  eo.ensemble = true;
  const EvalReport report = evaluate(resumed_trainer.model(), test_split.images_float(first), test_split.labels_tensor(first),
                                     ensemble_preset(0.1, 0, 0.02), eo);
  std::printf("ensemble on %lld test images at eps 0.1: clean %.3f, robust %.3f\n", (long long)report.n,
              report.clean_accuracy, report.robust_accuracy);
  std::filesystem::remove_all(root);
  return report.robust_accuracy <= report.clean_accuracy ? 0 : 1;
}
