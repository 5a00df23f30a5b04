// What every attack shares: input checks, the restart loop that keeps the per-sample worst case and
// only attacks the samples still standing, the objective and its input gradient.
#include "attacks/attack.h"

#include <limits>

#include "autograd/engine.h"
#include "nn/losses.h"

namespace advgrad {

const char* attack_loss_name(AttackLoss l) {
  return l == AttackLoss::CrossEntropy ? "ce" : l == AttackLoss::CWMargin ? "cw" : "dlr";
}

double AttackResult::accuracy() const {
  if (fooled.empty()) return 0.0;
  int64_t standing = 0;
  for (bool f : fooled) standing += !f;
  return double(standing) / double(fooled.size());
}

Tensor predict(Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  return model.forward(x);
}

Tensor attack_objective(const Tensor& logits, const Tensor& labels, const Tensor& targets, AttackLoss loss,
                        bool targeted) {
  switch (loss) {
    case AttackLoss::CrossEntropy:
      return targeted ? neg(cross_entropy(logits, targets, Reduction::None)) : cross_entropy(logits, labels, Reduction::None);
    case AttackLoss::CWMargin:
      // Untargeted: best other logit minus the label's. Targeted: target logit minus the best other.
      return targeted ? neg(cw_margin_loss(logits, targets, Reduction::None)) : cw_margin_loss(logits, labels, Reduction::None);
    default:
      return targeted ? dlr_targeted_loss(logits, labels, targets, Reduction::None) : dlr_loss(logits, labels, Reduction::None);
  }
}

LossGradient objective_gradient(Module& model, const Tensor& x_adv, const LogitObjective& objective) {
  EnableGradGuard grad_on;
  Tensor probe = x_adv.detach().requires_grad_();
  Tensor logits = model.forward(probe);
  Tensor per_sample = objective(logits);
  // grad(), not backward(): the model's .grad fields stay untouched and weight gradients are never computed.
  Tensor g = grad({sum(per_sample)}, {probe})[0];
  return {g, logits.detach(), per_sample.detach()};
}

LossGradient objective_gradient(Module& model, const Tensor& x_adv, const Tensor& labels, const Tensor& targets,
                                AttackLoss loss, bool targeted) {
  return objective_gradient(model, x_adv, [&](const Tensor& logits) {
    return attack_objective(logits, labels, targets, loss, targeted);
  });
}

std::vector<bool> fooled_by(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted) {
  auto pred = argmax(logits, 1).to_vector<int64_t>();
  auto want = (targeted ? targets : labels).to_vector<int64_t>();
  std::vector<bool> out(pred.size());
  for (size_t i = 0; i < pred.size(); ++i) out[i] = targeted ? pred[i] == want[i] : pred[i] != want[i];
  return out;
}

void Attack::validate(const Tensor&) const {
  if (opt_.steps < 1) throw ValueError(name() + ": steps must be >= 1, got " + std::to_string(opt_.steps));
  if (opt_.restarts < 1) throw ValueError(name() + ": restarts must be >= 1, got " + std::to_string(opt_.restarts));
  if (!(opt_.step_size >= 0)) throw ValueError(name() + ": step size must be >= 0");
}

Tensor Attack::perturb(Module& model, const Tensor& x, const Tensor& labels, uint64_t seed_stream,
                       const Tensor& targets) {
  check_attack_inputs(x, labels, opt_.eps, opt_.num_classes, name());
  validate(x);
  if (opt_.targeted && !targets.defined()) throw ValueError(name() + ": a targeted attack needs target labels");
  EvalModeGuard eval_mode(model);
  Generator gen = Generator(opt_.seed).fork(seed_stream);
  AttackResult counters;
  return project(attack_once(model, x, labels, targets, gen, counters), x, opt_.eps, opt_.norm);
}

AttackResult Attack::run(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets) {
  check_attack_inputs(x, labels, opt_.eps, 0, name());
  validate(x);
  EvalModeGuard eval_mode(model);
  const int64_t N = x.size(0);
  AttackResult result;
  Tensor clean_logits = predict(model, x);
  result.forward_samples += N;
  const int64_t classes = opt_.num_classes > 0 ? opt_.num_classes : clean_logits.size(1);
  check_attack_inputs(x, labels, opt_.eps, classes, name());
  if (opt_.targeted) {
    if (!targets.defined()) throw ValueError(name() + ": a targeted attack needs target labels");
    check_attack_inputs(x, targets, opt_.eps, classes, name() + " (targets)");
  }

  result.x_adv = x.dense().clone();
  result.fooled = fooled_by(clean_logits, labels, targets, opt_.targeted);
  if (!opt_.skip_misclassified) result.fooled.assign(result.fooled.size(), false);
  std::vector<double> best_loss(static_cast<size_t>(N), -std::numeric_limits<double>::infinity());
  for (int r = 0; r < opt_.restarts; ++r) {
    std::vector<int64_t> standing;
    for (int64_t i = 0; i < N; ++i)
      if (!result.fooled[size_t(i)]) standing.push_back(i);
    if (standing.empty()) break;
    Tensor xs = take_rows(x, standing), ls = take_rows(labels, standing);
    Tensor ts = opt_.targeted ? take_rows(targets, standing) : Tensor();
    Generator gen = Generator(opt_.seed).fork(uint64_t(r));
    Tensor adv = attack_once(model, xs, ls, ts, gen, result);
    adv = project(adv, xs, opt_.eps, opt_.norm);  // the contract holds whatever the attack did

    Tensor logits = predict(model, adv);
    result.forward_samples += int64_t(standing.size());
    auto fooled = fooled_by(logits, ls, ts, opt_.targeted);
    auto loss = [&] {
      NoGradGuard ng;
      return attack_objective(logits, ls, ts, opt_.loss, opt_.targeted).to_vector<double>();
    }();
    // Keep, per sample, a fooling example if any restart found one, else the highest-loss one.
    std::vector<int64_t> take_rows_at, dst_rows;
    for (size_t k = 0; k < standing.size(); ++k) {
      size_t i = size_t(standing[k]);
      if (fooled[k] || loss[k] > best_loss[i]) {
        take_rows_at.push_back(int64_t(k));
        dst_rows.push_back(standing[k]);
        best_loss[i] = loss[k];
        result.fooled[i] = fooled[k];
      }
    }
    if (!dst_rows.empty()) put_rows(result.x_adv, dst_rows, take_rows(adv, take_rows_at));
  }
  return result;
}

}  // namespace advgrad
