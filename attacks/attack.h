// Attacks on any Module (CNN or RNN alike). Contract, for every attack:
// - x in [0,1] [N, ...], labels int64 [N]; the result x_adv satisfies the threat model exactly
//   (attacks/threat_model.h) and stays in [0,1].
// - The model runs in eval mode and is put back in its previous mode; no parameter's .grad changes
//   (gradients come from grad(loss, {x_adv}), which also skips all weight-gradient work).
// - Untargeted (raise the loss of the true label) or targeted (lower the loss of `targets`).
// - Restarts keep the per-sample worst case, and only attack the samples still classified correctly.
// - Invalid parameters raise ValueError naming the attack and the parameter.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/attacks/threat_model.h"
#include "advgrad/nn/module.h"

namespace advgrad {

// The loss an attack ascends (for targeted attacks: descends on the target).
enum class AttackLoss { CrossEntropy, CWMargin, DLR };
const char* attack_loss_name(AttackLoss l);

struct AttackOptions {
  double eps = 0.1;
  int steps = 10;
  double step_size = 0;       // 0: the attack's default, filled in by its constructor (PGD: 2.5 eps / steps)
  int restarts = 1;
  bool random_start = true;   // where the attack has one (PGD, FGSM-RS, APGD)
  Norm norm = Norm::Linf;     // make_attack sets it from the attack's registry entry (pgd-l2: L2)
  AttackLoss loss = AttackLoss::CrossEntropy;
  bool targeted = false;      // needs targets (APGD-T picks its own: the top other classes)
  bool early_stop = false;    // freeze each sample as soon as it is misclassified (or hits its target)
  bool skip_misclassified = true;  // leave samples the model already gets wrong untouched (false: adversarial
                                   // training, which perturbs every sample as Madry et al. do)
  double momentum = 1.0;      // MI-FGSM decay
  int target_classes = 9;     // APGD-T: how many of the highest other classes to try
  int64_t queries = 5000;     // Square: query budget per sample
  double square_p_init = 0.8; // Square: initial fraction of pixels changed
  bool square_rescale_schedule = true;   // Square: spread the p-schedule's marks over `queries` (the authors'
                                         // default); autoattack_preset turns it off, as AutoAttack does: the
                                         // standard marks at query 10, 50, 200, ...
  double fab_alpha_max = 0.1; // FAB: the largest weight of the clean point's projection in a step
  double fab_eta = 1.05;      // FAB: overshoot of each projection
  double fab_beta = 0.9;      // FAB: pull-back toward the clean point after an adversarial step
  uint64_t seed = 0;
  int64_t num_classes = 0;    // for validating labels/targets (0: infer from the model's output)
};

struct AttackResult {
  Tensor x_adv;              // same shape and dtype as x
  std::vector<bool> fooled;  // per sample: misclassified (untargeted) / classified as target (targeted)
  int64_t forward_samples = 0;   // model evaluations, counted per sample
  int64_t gradient_samples = 0;  // of which with an input gradient
  double accuracy() const;       // fraction of samples not fooled
};

class Attack {
 public:
  explicit Attack(AttackOptions options) : opt_(std::move(options)) {}
  virtual ~Attack() = default;
  virtual std::string name() const = 0;
  const AttackOptions& options() const { return opt_; }
  // targets: int64 [N], required when options().targeted (except APGD-T).
  AttackResult run(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets = Tensor());
  // The training-time form: one run of the attack on every sample (restarts and the clean/final
  // classification passes skipped), `seed_stream` selecting the random start. Same contract otherwise.
  Tensor perturb(Module& model, const Tensor& x, const Tensor& labels, uint64_t seed_stream,
                 const Tensor& targets = Tensor());

 protected:
  // One restart on the given (still standing) samples; returns their adversarial examples.
  virtual Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets,
                             Generator& gen, AttackResult& counters) = 0;
  virtual void validate(const Tensor& x) const;
  AttackOptions opt_;
};

// Builds an attack by its command-line name from the table of attacks/registry.h (fgsm, fgsm-rs, bim, pgd,
// pgd-l2, mifgsm, apgd-ce, apgd-dlr, apgd-t, fab-t, fab-t-l2, square, trades-kl): options.norm becomes the entry's norm, and the
// attack fills in the defaults the options leave open; options() of the result is what runs.
// ValueError listing the names for anything else.
std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options);
const std::vector<std::string>& attack_names();  // the table's names, in its order

// ---- building blocks shared by the attacks (attacks/attack.cpp) ----

// Puts a module in eval mode for the scope and restores its previous mode.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeGuard() { m_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  Module& m_;
  bool was_training_;
};

// Per-sample loss to ascend: for targeted attacks the negated loss toward `targets`.
Tensor attack_objective(const Tensor& logits, const Tensor& labels, const Tensor& targets, AttackLoss loss,
                        bool targeted);

// Gradient of the summed objective with respect to x_adv (no .grad anywhere changes), plus the logits
// and per-sample objective values at x_adv.
struct LossGradient {
  Tensor grad, logits, per_sample_loss;
};
LossGradient objective_gradient(Module& model, const Tensor& x_adv, const Tensor& labels, const Tensor& targets,
                                AttackLoss loss, bool targeted);
// The same for any per-sample objective of the logits ([N, classes] -> [N]), e.g. TRADES' KL to the
// clean prediction (attacks/trades_kl.h).
using LogitObjective = std::function<Tensor(const Tensor& logits)>;
LossGradient objective_gradient(Module& model, const Tensor& x_adv, const LogitObjective& objective);

// Per sample: fooled (misclassified / on target) given logits, for reports (copied to the host).
std::vector<bool> fooled_by(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted);
// The same as a mask that stays on the logits' device: [N] of 1 (fooled) or 0, in the logits' dtype.
Tensor fooled_mask(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted);
// Per-sample choice between two batches: row i of `fresh` where pick[i] != 0, else row i of `base`
// (pick [N], any float dtype; fresh and base [N, ...] of one shape and dtype).
Tensor choose_rows(const Tensor& pick, const Tensor& fresh, const Tensor& base);
Tensor predict(Module& model, const Tensor& x);  // logits without a graph
// Per sample, the classes in order of decreasing logit (ties to the lower class): element r [N] (int64)
// holds each row's (r+1)-th highest class, for r < count (count <= classes). APGD-T and FAB-T take their
// targets from ranks 1, 2, ... of the clean logits.
std::vector<Tensor> classes_by_rank(const Tensor& logits, int count);

}  // namespace advgrad
