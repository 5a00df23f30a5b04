#include "attacks/gradient_attacks.h"

#include <cmath>

namespace advgrad {

Tensor step_direction(const Tensor& g, Norm norm) {
  NoGradGuard no_grad;
  if (norm == Norm::Linf) return sign(g);  // sign(0) = 0: a pixel with zero gradient does not move
  const int64_t N = g.size(0);
  Shape col(size_t(g.dim()), 1);
  col[0] = N;
  Tensor norms = reshape(sqrt(sum(square(reshape(g, {N, -1})), {1})), col);
  return div(g, add(norms, 1e-12));
}

Tensor per_sample_column(const std::vector<double>& values, const Tensor& like) {
  Shape col(size_t(like.dim()), 1);
  col[0] = int64_t(values.size());
  return from_vector(values, col, like.device()).to(like.dtype());
}

namespace {
// Early stopping: samples fooled at the point just evaluated (adv) are done and keep that point; the others
// take `next`. Returns true once every sample is done (the attack can stop: nothing would move).
bool keep_fooled(std::vector<bool>& done, const LossGradient& at_adv, const Tensor& labels, const Tensor& targets,
                 bool targeted, const Tensor& adv, Tensor& next) {
  auto fooled = fooled_by(at_adv.logits, labels, targets, targeted);
  std::vector<double> keep(done.size());
  bool all = true;
  for (size_t i = 0; i < done.size(); ++i) {
    done[i] = done[i] || fooled[i];
    keep[i] = done[i] ? 1.0 : 0.0;
    all = all && done[i];
  }
  if (!all) next = where(per_sample_column(keep, adv), adv, next);
  return all;
}
}  // namespace

double PGD::step_size() const { return opt_.step_size > 0 ? opt_.step_size : 2.5 * opt_.eps / opt_.steps; }

Tensor PGD::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                        AttackResult& counters) {
  const int64_t N = x.size(0);
  Tensor adv = opt_.random_start ? random_start(x, opt_.eps, opt_.norm, gen) : x.clone();
  std::vector<bool> done(static_cast<size_t>(N), false);
  for (int s = 0; s < opt_.steps; ++s) {
    LossGradient lg = objective_gradient(model, adv, labels, targets, opt_.loss, opt_.targeted);
    counters.forward_samples += N;
    counters.gradient_samples += N;
    NoGradGuard no_grad;
    Tensor next = project(add(adv, mul(step_direction(lg.grad, opt_.norm), step_size())), x, opt_.eps, opt_.norm);
    if (opt_.early_stop && keep_fooled(done, lg, labels, targets, opt_.targeted, adv, next)) break;
    adv = next;
  }
  return adv;
}

Tensor MIFGSM::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator&,
                           AttackResult& counters) {
  const int64_t N = x.size(0);
  const double alpha = opt_.step_size > 0 ? opt_.step_size : opt_.eps / opt_.steps;
  Tensor adv = x.clone();
  Tensor velocity = zeros_like(x);
  Shape col(size_t(x.dim()), 1);
  col[0] = N;
  std::vector<bool> done(static_cast<size_t>(N), false);
  for (int s = 0; s < opt_.steps; ++s) {
    LossGradient lg = objective_gradient(model, adv, labels, targets, opt_.loss, opt_.targeted);
    counters.forward_samples += N;
    counters.gradient_samples += N;
    NoGradGuard no_grad;
    Tensor l1 = reshape(mean(abs(reshape(lg.grad, {N, -1})), {1}), col);  // per-sample mean |grad|
    velocity = add(mul(velocity, opt_.momentum), div(lg.grad, add(l1, 1e-12)));
    Tensor next = project(add(adv, mul(step_direction(velocity, opt_.norm), alpha)), x, opt_.eps, opt_.norm);
    if (opt_.early_stop && keep_fooled(done, lg, labels, targets, opt_.targeted, adv, next)) break;
    adv = next;
  }
  return adv;
}

}  // namespace advgrad
