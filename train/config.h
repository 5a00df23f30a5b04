// Everything that defines a training run. Saved as config.json in the run directory and inside every
// checkpoint, so a run can be reproduced and resumed from it alone.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace advgrad {

// The training methods of train/methods/registry.cpp, in the order the command line lists them.
std::vector<std::string> training_methods();
bool is_training_method(const std::string& name);

// "Any finite non-negative number" as the upper end of a range check.
constexpr double kAnyPositive = std::numeric_limits<double>::max();

// Bounds of TrainConfig's counts, shared by validate() and the command line (cli/cmd_train.cpp). They are
// far above any real run and low enough that no product of them (steps per epoch x epochs x replays,
// eps-ramp x steps per epoch, stream numbers) can overflow.
struct TrainLimits {
  static constexpr int64_t max_batch = int64_t(1) << 20;
  static constexpr int max_epochs = 100000;
  static constexpr int max_steps = 10000;             // attack steps, Free replays, evaluation steps
  static constexpr int64_t max_samples = int64_t(1) << 40;  // limit, val_size, test_limit
  static constexpr uint64_t max_seed = uint64_t(INT64_MAX);  // seeds round-trip through JSON as int64
};

struct TrainConfig {
  // What to train, on what.
  std::string model = "small_cnn";  // a zoo name; "" for a run whose model was given as an object
  std::string data;                 // dataset directory ("" = default Fashion-MNIST)
  int64_t limit = 0;                // > 0: train on the first `limit` training samples
  int64_t val_size = 1000;          // held out from the end of the training split for per-epoch validation
  int64_t test_limit = 0;           // > 0: final evaluation on the first `test_limit` test samples

  // How: method natural | pgd | fgsm-rs | free | trades | mart (train/methods/registry.cpp).
  std::string method = "pgd";
  double eps = 0.1;
  int steps = 7;                    // PGD / TRADES attack steps (step 2.5 eps / steps); Free: replays m
  double adv_fraction = 1.0;        // pgd / fgsm-rs: share of each batch replaced by adversarial examples
  double trades_beta = 6.0;
  int eps_ramp_epochs = 0;          // eps grows linearly from 0 over this many epochs
  double mart_beta = 6.0;           // MART's KL weight (Wang et al.: 6)
  double awp_gamma = 0;             // > 0: adversarial weight perturbation of this size (pgd, trades, mart)
  int awp_warmup = 0;               // epochs before AWP starts
  double ema_decay = 0;             // > 0: keep an exponential moving average of the weights

  // Optimisation.
  int epochs = 10;
  int64_t batch = 128;
  std::string optimizer = "sgd";    // sgd | adam
  double lr = 0.05;                 // peak learning rate
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::string schedule = "onecycle";  // onecycle | cosine | step | constant
  double onecycle_pct = 0.4;        // warm-up share of one-cycle (as bench/REFERENCE.md's recipes)
  double clip_norm = 0;             // > 0: clip the global gradient norm

  // Monitoring.
  int val_pgd_steps = 10;
  bool co_detect = true;            // catastrophic-overfitting detector for fgsm-rs / free
  bool co_fallback_pgd = false;     // on catastrophic overfitting, continue with PGD instead of stopping
  int final_pgd_steps = 20;         // final evaluation: FGSM and PGD-K (step 2.5 eps / K, one random start)

  // Reproducibility and output.
  uint64_t seed = 0;
  int threads = 0;                  // 0: keep the current setting (OMP_NUM_THREADS)
  std::string out;                  // run directory ("" = write nothing)
  int stop_after_epochs = 0;        // > 0: stop (with a checkpoint) after this many epochs, as if interrupted
  bool quiet = false;

  // ValueError naming the first bad setting (by its config.json name) and its allowed range: every
  // number finite and in range, every name known.
  void validate() const;
  std::string to_json() const;                         // every field
  // Every field must be present with the right JSON type (except those added later, which take their
  // defaults when absent: mart_beta, awp_gamma, awp_warmup, ema_decay); integers are read as int64 and range-checked
  // before narrowing. IOError naming `source` and the field for anything wrong, validate() included.
  static TrainConfig from_json(const std::string& text, const std::string& source);
};

}  // namespace advgrad
