// A training method: what one optimizer step trains on and which loss it minimises. The Trainer owns
// the loop (data order, LR schedule, gradient guard and clipping, the optimizer step, validation,
// checkpoints); a method only says, per step:
//   craft()                 the inputs to train on (adversarial examples; clean for natural training),
//   before_loss()           a last change before the training forward (AWP perturbs the weights here),
//   loss()                  the loss at the current weights, and the logits its reported accuracy is of,
//   after_backward()        work on the gradients just computed (Free's perturbation update),
//   before_optimizer_step() AWP puts the weights back here, so the step starts from w,
// plus how often each batch is replayed (Free), what it does when an epoch begins, and any state of its
// own that a checkpoint must keep. Adding a method: one file under train/methods/ and one line in
// train/methods/registry.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/attacks/attack.h"
#include "advgrad/nn/module.h"

namespace advgrad {

// What a method sees of one step. The batch is on the model's device.
struct StepContext {
  Module& model;
  const Tensor& x;    // clean inputs in [0,1]
  const Tensor& y;    // int64 labels
  double eps;         // this step's radius (after the eps ramp)
  int epoch;          // 0-based
  int64_t step;       // global optimizer step (replays counted): keys the step's attack randomness
  int replay;         // 0 .. replays_per_batch() - 1
};

// What the step computed. `logits` give the reported training accuracy; `accuracy_of` names it:
// "adversarial" (logits of the inputs trained on when they are adversarial) or "clean".
struct StepLoss {
  Tensor loss;    // scalar with a graph to the weights
  Tensor logits;
  std::string accuracy_of = "adversarial";
};

// The settings every built-in method draws from (TrainConfig's fields of the same names).
struct MethodOptions {
  int steps = 7;              // attack steps (step 2.5 eps / steps); Free: replays per batch
  double adv_fraction = 1.0;  // pgd / fgsm-rs: share of each batch made adversarial
  double trades_beta = 6.0;
  double mart_beta = 6.0;
  double awp_gamma = 0;       // > 0: adversarial weight perturbation on top of pgd / trades
  int awp_warmup = 0;         // epochs before AWP starts
  uint64_t seed = 0;          // attack random starts: (seed, stream of the step)
};

class TrainingMethod {
 public:
  virtual ~TrainingMethod() = default;
  virtual std::string name() const = 0;
  virtual int replays_per_batch() const { return 1; }
  // FGSM-type methods can overfit catastrophically; the trainer then watches them (Wong et al. 2020).
  virtual bool watch_catastrophic_overfitting() const { return false; }
  virtual void begin_epoch(int /*epoch*/) {}

  // The inputs to train on; leaves every .grad alone (attacks run in eval mode through grad()).
  virtual Tensor craft(const StepContext& c) { return c.x; }
  // Called with the crafted inputs just before the training forward.
  virtual void before_loss(const StepContext& /*c*/, const Tensor& /*inputs*/) {}
  // The training loss on the crafted inputs; the model is in training mode.
  virtual StepLoss loss(const StepContext& c, const Tensor& inputs) = 0;
  virtual void after_backward(const StepContext& /*c*/) {}
  virtual void before_optimizer_step(const StepContext& /*c*/) {}

  // State kept in checkpoints besides the model's and the optimizer's (none for the built-in methods:
  // Free's perturbation starts at 0 every epoch and a checkpoint is taken between epochs).
  virtual StateDict state() const { return {}; }
  virtual void load_state(const StateDict& /*state*/) {}
};

// ---- the registry (train/methods/registry.cpp) ----
struct MethodInfo {
  std::string name;         // as --method and config.json spell it
  std::string description;  // one line for the command's help
  std::unique_ptr<TrainingMethod> (*make)(const MethodOptions&);
};
const std::vector<MethodInfo>& method_registry();
// A library user's own method, by name, for config.json, checkpoints and metrics (a method known only
// as an object can be trained but not resumed). ValueError for a name already taken.
void add_training_method(MethodInfo method);
// The method by name, wrapped in AWP when options.awp_gamma > 0 (pgd, trades or mart). ValueError
// listing the names for an unknown one.
std::unique_ptr<TrainingMethod> make_training_method(const std::string& name, const MethodOptions& options);

// ---- shared by the built-in methods ----

// PGD as Madry et al. train with it: `steps` steps of 2.5 eps / steps from a uniform random start.
inline AttackOptions pgd_options(double eps, int steps, uint64_t seed) {
  AttackOptions o;
  o.eps = eps, o.steps = steps, o.step_size = 2.5 * eps / steps, o.seed = seed, o.random_start = true;
  return o;
}
// The batch with its first round(fraction * B) rows replaced by `attack`'s examples (pgd.cpp); the clean
// batch when that is no row or eps is 0.
Tensor with_adversarial_rows(const StepContext& c, Attack& attack, double fraction, uint64_t stream);

// The stream number of the attack of global step `step` (`salt` tells a step's attacks apart), so attack
// starts never repeat across steps.
inline uint64_t attack_stream(uint64_t step, uint64_t salt) { return step * 8 + salt; }

}  // namespace advgrad
