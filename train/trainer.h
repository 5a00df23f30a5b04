// Adversarial training that converges and reproduces: natural, PGD-AT (Madry et al. 2018), FGSM-RS
// (Wong et al. 2020), Free-AT (Shafahi et al. 2019) and TRADES (Zhang et al. 2019), with eps ramp-up,
// LR schedules, gradient clipping, per-epoch validation, best-by-robust-accuracy weights (Rice et al.
// 2020), a catastrophic-overfitting detector, a NaN/Inf guard and bit-identical resume.
//
// Every random choice (data order, augmentation, attack starts) is a counter-based function of
// (seed, epoch, step), so a run is the same at any thread count and after a resume at an epoch boundary.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"
#include "train/config.h"

namespace advgrad {

struct EpochMetrics {
  int epoch = 0;  // 1-based
  std::string method;
  double train_loss = 0, train_clean_acc = 0, train_adv_acc = 0;
  double val_clean_acc = 0, val_pgd_acc = 0;
  double lr = 0, eps = 0, seconds = 0;
  std::string note;  // e.g. the catastrophic-overfitting warning
};

struct TrainSummary {
  double clean_acc = 0, fgsm_acc = 0, pgd_acc = 0;  // on the test split (pgd: PGD-final_pgd_steps)
  int64_t test_samples = 0;
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

class Trainer {
 public:
  explicit Trainer(TrainConfig config);
  ~Trainer();
  // Trains (from scratch, or from the checkpoint in `resume_dir` whose config then takes precedence
  // except for threads, quiet, out and stop_after_epochs) and evaluates; writes the run outputs when
  // config.out is set.
  TrainSummary run(const std::string& resume_dir = "");

  // Called after every epoch, and every few steps with (done, total) steps of the epoch.
  std::function<void(const EpochMetrics&)> on_epoch;
  std::function<void(int64_t done, int64_t total, double samples_per_s)> on_progress;

  Module& model();
  const TrainConfig& config() const;
  // The best weights by validation PGD accuracy so far (after a resume: those of the checkpoint), which
  // the catastrophic-overfitting check restores; empty before the first epoch.
  const StateDict& best_weights() const;

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
