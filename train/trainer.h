// Adversarial training that converges and reproduces, on objects a library user already has: any Module,
// train / validation / test Datasets, an Optimizer, an LRSchedule and a TrainingMethod (train/methods/:
// natural, PGD-AT, FGSM-RS, Free-AT, TRADES, MART, each optionally with AWP). The Trainer owns the loop:
// eps ramp-up, gradient clipping, per-epoch validation (clean and PGD), best-by-robust-accuracy weights
// (Rice et al. 2020), an optional weight average (EMA), a catastrophic-overfitting detector, a NaN/Inf
// guard, run files and bit-identical resume. make_training(TrainConfig) builds the objects of the
// `advgrad train` recipe.
//
// Every random choice (data order, augmentation, attack starts, Dropout masks) is a counter-based function
// of (seed, epoch, step), so a run is the same at any thread count and after a resume at an epoch boundary.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/data/dataset.h"
#include "advgrad/nn/module.h"
#include "advgrad/nn/optim.h"
#include "advgrad/nn/schedule.h"
#include "advgrad/train/config.h"
#include "advgrad/train/methods/method.h"

namespace advgrad {

struct EpochMetrics {
  int epoch = 0;  // 1-based
  std::string method;
  double train_loss = 0, train_clean_acc = 0, train_adv_acc = 0;
  double val_clean_acc = 0, val_pgd_acc = 0;
  double lr = 0, eps = 0, seconds = 0;
  std::string note;  // e.g. the catastrophic-overfitting warning
  // What the two training accuracies are of ("" in metrics written before they were named):
  // train_adv_acc: the logits each step trained on ("adversarial", "clean" or "mixed" inputs);
  // train_clean_acc: "training steps" when the steps trained on clean inputs (natural), else "fixed training
  // sample" = the first <= 512 training images in eval mode at the end of the epoch.
  std::string train_adv_acc_of, train_clean_acc_of;
  double ema_val_clean_acc = -1, ema_val_pgd_acc = -1;  // the weight average on validation (-1: no EMA)
  std::string best_from;  // "model" or "ema" when this epoch's weights became the best, else ""
  // The training loss of every optimizer step of the epoch (of the last replay for free), in order: one
  // float per step, for curves.svg's per-step plot of short runs (empty in metrics written before).
  std::vector<float> step_losses;
};

// Where training stands after a step (Trainer::on_progress).
struct TrainProgress {
  int epoch = 0, epochs = 0;      // the current epoch (1-based) of the run's
  int64_t step = 0, steps = 0;    // steps done of this epoch's
  double loss = 0, accuracy = 0;  // running means over the epoch's steps so far
  std::string accuracy_of;        // the inputs the steps trained on: "adversarial", "clean" or "mixed"
  double samples_per_s = 0;       // this epoch's rate
  double eta_seconds = 0;         // the rest of this invocation's training (run_eta_seconds)
};

// The training time left: the rest of the current epoch's steps at its own rate; then, once an epoch of
// this invocation has finished, the finished epochs' mean validation time and `epochs_after` epochs of
// their mean length (validation included); before that, `epochs_after` epochs as long as the current
// one's steps promise (its validation is not known yet).
// `epoch_fraction` in (0, 1] is the share of the current epoch's steps done; `mean_epoch_seconds` <= 0
// when no epoch has finished yet.
double run_eta_seconds(double epoch_elapsed, double epoch_fraction, double mean_epoch_seconds,
                       double mean_validation_seconds, int epochs_after);

struct TrainSummary {
  double clean_acc = 0, fgsm_acc = 0, pgd_acc = 0;  // on the test split (pgd: PGD-final_pgd_steps)
  int64_t test_samples = 0;        // evaluated: the first test_samples of the test split
  int64_t test_split_samples = 0;  // in the whole test split (test_samples == it: the full test set)
  double seconds = 0;        // training + final evaluation (this process)
  std::string param_sha256;  // of every state_dict tensor's bytes, in key order
  int threads = 1;
  uint64_t seed = 0;
  int epochs_done = 0;
  bool finished = false;     // false when stopped early (stop_after_epochs or catastrophic overfitting)
  std::string stop_reason;
};

// Thrown by the NaN/Inf guard: names the epoch, the step and the first parameter whose gradient, or whose
// value after the optimizer step, is NaN or Inf.
struct TrainingDiverged : Error {
  using Error::Error;
};

// One chainable option: `TrainerOptions().epochs(10).eps(0.1).out("runs/x")` (as PyTorch's C++ options).
#define ADVGRAD_TRAINER_OPTION(T, name, initial)          \
 public:                                                 \
  TrainerOptions& name(T value) {                        \
    name##_ = std::move(value);                          \
    return *this;                                        \
  }                                                      \
  const T& name() const { return name##_; }              \
                                                         \
 private:                                                \
  T name##_ = initial;

// How the Trainer runs the loop around the method (TrainConfig's fields of the same names).
class TrainerOptions {
  ADVGRAD_TRAINER_OPTION(int, epochs, 10)
  ADVGRAD_TRAINER_OPTION(int64_t, batch, 128)
  ADVGRAD_TRAINER_OPTION(double, eps, 0.1)               // training and validation radius (L-inf)
  ADVGRAD_TRAINER_OPTION(int, eps_ramp_epochs, 0)        // eps grows linearly from 0 over this many epochs
  ADVGRAD_TRAINER_OPTION(double, clip_norm, 0)           // > 0: clip the global gradient norm
  ADVGRAD_TRAINER_OPTION(double, ema_decay, 0)           // > 0: keep and evaluate a weight average
  ADVGRAD_TRAINER_OPTION(int, val_pgd_steps, 10)
  ADVGRAD_TRAINER_OPTION(int, final_pgd_steps, 20)
  ADVGRAD_TRAINER_OPTION(int64_t, test_limit, 0)         // > 0: final evaluation on the first N test samples
  ADVGRAD_TRAINER_OPTION(bool, co_detect, true)          // for methods that watch_catastrophic_overfitting()
  // On catastrophic overfitting: continue with the method this makes (the CLI: PGD), or stop when unset.
  ADVGRAD_TRAINER_OPTION(std::function<std::unique_ptr<TrainingMethod>()>, co_fallback, nullptr)
  ADVGRAD_TRAINER_OPTION(uint64_t, seed, 0)              // data order and evaluation attacks
  ADVGRAD_TRAINER_OPTION(int, threads, 0)                // 0: keep the current setting
  ADVGRAD_TRAINER_OPTION(std::string, out, "")           // run directory ("" = write nothing)
  ADVGRAD_TRAINER_OPTION(int, stop_after_epochs, 0)      // > 0: stop with a checkpoint after N epochs
  ADVGRAD_TRAINER_OPTION(bool, quiet, false)
};
#undef ADVGRAD_TRAINER_OPTION

// Everything a Trainer works on. The schedule is indexed by optimizer step: build it for
// training_steps(...) steps.
struct TrainingParts {
  std::shared_ptr<Module> model;
  Dataset train, validation, test;  // test may be empty (no final evaluation)
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<LRSchedule> schedule;
  std::unique_ptr<TrainingMethod> method;
  TrainerOptions options;
  // The recipe these parts were made from (make_training sets it), written to config.json and the
  // checkpoints; unset for parts built by hand, whose files then record what the options know.
  std::optional<TrainConfig> recipe;
};

// Optimizer steps of a run: batches per epoch x epochs x the method's replays per batch.
int64_t training_steps(int64_t train_samples, int64_t batch, int epochs, int replays_per_batch);

// The `advgrad train` recipe as objects: the zoo model initialised from (seed, stream 1), the dataset
// (the last val_size training samples held out for validation, the first `limit` of the rest trained on),
// SGD or Adam, the schedule, the method from the registry (with AWP when awp_gamma > 0), the options.
TrainingParts make_training(const TrainConfig& config);
// The same recipe around a model given as an object (the command's --model FILE.onnx): config.model is
// only recorded; the caller checks that the model takes the data's samples.
TrainingParts make_training(const TrainConfig& config, std::shared_ptr<Module> model);

class Trainer {
 public:
  // From objects (see TrainingParts).
  explicit Trainer(TrainingParts parts);
  Trainer(std::shared_ptr<Module> model, Dataset train, Dataset validation, Dataset test,
          std::unique_ptr<Optimizer> optimizer, std::unique_ptr<LRSchedule> schedule,
          std::unique_ptr<TrainingMethod> method, TrainerOptions options = {});
  // From a TrainConfig (the command): the objects are built by make_training when run() starts.
  explicit Trainer(TrainConfig config);
  ~Trainer();

  // Trains (from scratch, or from the checkpoint in `resume_dir`) and evaluates on the test set; writes
  // the run outputs when an out directory is set. A Trainer from a TrainConfig resumes with the
  // checkpoint's config, except threads, quiet, out and stop_after_epochs; a Trainer from objects
  // resumes into its own objects (build them as for the original run).
  TrainSummary run(const std::string& resume_dir = "");

  // Called after every epoch; after every step (unless quiet); and, as EvalOptions::progress, during the
  // final evaluation on the test split (unless quiet). None of them changes the results.
  std::function<void(const EpochMetrics&)> on_epoch;
  std::function<void(const TrainProgress&)> on_progress;
  std::function<void(const EvalProgress&)> on_test_progress;

  Module& model();  // for a Trainer from a TrainConfig: once run() has built it
  // The recipe written to config.json and checkpoints (for a Trainer from objects: its options, with
  // model "" and the method's name).
  const TrainConfig& config() const;
  // The best weights by validation PGD accuracy so far (after a resume: those of the checkpoint), which
  // the catastrophic-overfitting check restores; empty before the first epoch.
  const StateDict& best_weights() const;
  // The weight average (empty without ema_decay).
  StateDict ema_weights() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// What the catastrophic-overfitting check does once it fires: loads `best` into `model` and returns
// "restored the best weights", or, when there are none (a resume from a checkpoint that kept none and
// no best.safetensors), leaves the model alone and returns a note saying they could not be restored.
std::string restore_best_weights(Module& model, const StateDict& best);

// SHA-256 over the bytes of every state_dict tensor in key order.
std::string parameter_sha256(const Module& model);

}  // namespace advgrad
