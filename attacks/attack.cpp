// What every attack shares: input checks, the restart loop that keeps the per-sample worst case and
// only attacks the samples still standing, the objective and its input gradient.
#include "advgrad/attacks/attack.h"

#include <limits>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/nn/losses.h"

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

std::vector<Tensor> classes_by_rank(const Tensor& logits, int count) {
  NoGradGuard no_grad;
  const int64_t C = logits.size(1);
  std::vector<Tensor> by_rank;
  Tensor ranked = logits.to(DType::F64);
  const Tensor masked_out = scalar_tensor(-std::numeric_limits<double>::infinity(), DType::F64, logits.device());
  // The first maximum once the classes ranked above it are masked out: a stable sort by decreasing logit.
  for (int r = 0; r < count && r < C; ++r) {
    by_rank.push_back(argmax(ranked, 1));
    ranked = where(one_hot(by_rank.back(), C, DType::F64), masked_out, ranked);
  }
  return by_rank;
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

Tensor fooled_mask(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted) {
  NoGradGuard no_grad;
  Tensor pred = argmax(logits, 1);
  return (targeted ? eq(pred, targets) : ne(pred, labels)).to(logits.dtype());
}

std::vector<bool> fooled_by(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted) {
  auto mask = fooled_mask(logits, labels, targets, targeted).to_vector<double>();
  return std::vector<bool>(mask.begin(), mask.end());
}

Tensor choose_rows(const Tensor& pick, const Tensor& fresh, const Tensor& base) {
  NoGradGuard no_grad;
  Shape column(size_t(base.dim()), 1);  // [N, 1, 1, ...]: one choice per sample, broadcast over its values
  column[0] = base.size(0);
  return where(reshape(pick, column).to(base.dtype()), fresh, base);
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
  // Per sample: the objective of the example kept so far (a restart replaces it when it fools the model or
  // reaches a higher objective).
  Tensor best_loss = full({N}, -std::numeric_limits<double>::infinity(), DType::F64, x.device());
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
    NoGradGuard no_grad;
    Tensor fooled = fooled_mask(logits, ls, ts, opt_.targeted).to(DType::F64);
    Tensor loss = attack_objective(logits, ls, ts, opt_.loss, opt_.targeted).to(DType::F64);
    // Keep, per sample, a fooling example if any restart found one, else the highest-loss one.
    Tensor keep = maximum(fooled, gt(loss, take_rows(best_loss, standing)));
    std::vector<int64_t> kept = nonzero_indices(keep), dst_rows;
    for (int64_t k : kept) dst_rows.push_back(standing[size_t(k)]);
    if (dst_rows.empty()) continue;
    put_rows(result.x_adv, dst_rows, take_rows(adv, kept));
    put_rows(best_loss, dst_rows, take_rows(loss, kept));
    const std::vector<double> fooled_now = fooled.to_vector<double>();  // for the report (result.fooled)
    for (size_t j = 0; j < kept.size(); ++j) result.fooled[size_t(dst_rows[j])] = fooled_now[size_t(kept[j])] != 0;
  }
  return result;
}

}  // namespace advgrad
