#include "advgrad/attacks/apgd.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "advgrad/attacks/gradient_attacks.h"

namespace advgrad {

std::vector<int> APGD::checkpoints(int steps) {
  std::vector<double> p{0.0, 0.22};
  while (p.back() < 1.0) p.push_back(p.back() + std::max(p.back() - p[p.size() - 2] - 0.03, 0.06));
  std::vector<int> w;
  for (double q : p)
    if (q <= 1.0) w.push_back(int(std::ceil(q * steps - 1e-9)));  // 1e-9: 0.41 * 100 must give 41
  return w;
}

namespace {
// A per-sample scalar on the device of `like` (for comparisons with per-sample state).
Tensor scalar_on(double v, const Tensor& like) { return scalar_tensor(v, like.dtype(), like.device()); }
// Per-sample logical operations on 0/1 masks.
Tensor either(const Tensor& a, const Tensor& b) { return maximum(a, b); }
Tensor both(const Tensor& a, const Tensor& b) { return a * b; }
Tensor negation(const Tensor& a) { return 1.0 - a; }
std::vector<int64_t> range_of(size_t n) {
  std::vector<int64_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = int64_t(i);
  return rows;
}
}  // namespace

Tensor APGD::apgd(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, AttackLoss loss,
                  bool targeted, Generator& gen, AttackResult& counters) {
  const int64_t N = x.size(0);
  const double eps = opt_.eps, alpha = 0.75, rho = 0.75;
  const std::vector<int> ckpt = checkpoints(opt_.steps);
  Shape column(size_t(x.dim()), 1);  // [N, 1, 1, ...]: a per-sample value broadcast over its pixels
  column[0] = N;

  Tensor x_cur = opt_.random_start ? random_start(x, eps, opt_.norm, gen) : x.clone();
  LossGradient lg = objective_gradient(model, x_cur, labels, targets, loss, targeted);
  counters.forward_samples += N, counters.gradient_samples += N;
  NoGradGuard no_grad;
  // Per-sample state, all [N] float64 tensors on x's device: step size eta, the loss at the previous
  // iterate and the best loss so far.
  Tensor grad = lg.grad, x_prev = x_cur;
  Tensor eta = full({N}, 2.0 * eps, DType::F64, x.device());
  Tensor loss_prev = lg.per_sample_loss.to(DType::F64), best = loss_prev;
  Tensor x_best = x_cur, grad_best = grad;
  // The returned point: the latest misclassifying iterate if any, else the best-loss one.
  Tensor fooled = fooled_mask(lg.logits, labels, targets, false).to(DType::F64);
  Tensor x_fooled = x_cur;
  // Checkpoint bookkeeping per sample: steps that raised the loss since the last checkpoint, whether the
  // step was halved there, and the best loss then.
  Tensor successes = zeros({N}, DType::F64, x.device());
  Tensor reduced_last = zeros({N}, DType::F64, x.device());
  Tensor best_at_last = best;
  size_t next_ckpt = 1;

  for (int k = 0; k < opt_.steps; ++k) {
    Tensor z = project(x_cur + step_direction(grad, opt_.norm) * reshape(eta, column).to(x.dtype()), x, eps, opt_.norm);
    Tensor next = z;
    if (k > 0)  // momentum: x + alpha (z - x) + (1 - alpha)(x - x_prev)
      next = project(x_cur + (z - x_cur) * alpha + (x_cur - x_prev) * (1.0 - alpha), x, eps, opt_.norm);
    x_prev = x_cur;
    x_cur = next;

    lg = objective_gradient(model, x_cur, labels, targets, loss, targeted);
    counters.forward_samples += N, counters.gradient_samples += N;
    grad = lg.grad;
    Tensor l = lg.per_sample_loss.to(DType::F64);
    Tensor now_fooled = fooled_mask(lg.logits, labels, targets, false).to(DType::F64);
    x_fooled = choose_rows(now_fooled, x_cur, x_fooled);
    fooled = either(fooled, now_fooled);
    successes = successes + gt(l, loss_prev);
    loss_prev = l;
    Tensor improved = gt(l, best);
    best = where(improved, l, best);
    x_best = choose_rows(improved, x_cur, x_best);
    grad_best = choose_rows(improved, grad, grad_best);

    if (next_ckpt < ckpt.size() && k + 1 == ckpt[next_ckpt]) {
      // Halve the step where (1) fewer than rho of the steps since the last checkpoint raised the loss, or
      // (2) the step was not reduced last time and the best loss has not moved since; restart from x_best.
      const int interval = ckpt[next_ckpt] - ckpt[next_ckpt - 1];
      Tensor stalled = lt(successes, scalar_on(rho * interval, successes));
      Tensor stuck = both(negation(reduced_last), ge(best_at_last, best));
      Tensor halve = either(stalled, stuck);
      eta = where(halve, eta / 2.0, eta);
      reduced_last = halve;
      best_at_last = best;
      successes = zeros({N}, DType::F64, x.device());
      x_cur = choose_rows(halve, x_best, x_cur);
      x_prev = choose_rows(halve, x_best, x_prev);
      grad = choose_rows(halve, grad_best, grad);
      ++next_ckpt;
    }
  }
  return choose_rows(fooled, x_fooled, x_best);
}

Tensor APGD::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                         AttackResult& counters) {
  return apgd(model, x, labels, targets, opt_.loss, opt_.targeted, gen, counters);
}

Tensor APGDTargeted::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor&, Generator& gen,
                                 AttackResult& counters) {
  const int64_t N = x.size(0);
  Tensor logits = predict(model, x);
  counters.forward_samples += N;
  const int64_t C = logits.size(1);
  if (C < 4) throw ValueError("apgd-t: the targeted DLR loss needs at least 4 classes, the model has " + std::to_string(C));
  const int ranks = int(std::min<int64_t>(opt_.target_classes, C - 1));
  NoGradGuard no_grad;
  const std::vector<Tensor> target_of_rank = classes_by_rank(logits, ranks + 1);
  Tensor out = x.clone();
  Tensor done = zeros({N}, DType::F64, x.device());  // 1 once some target rank fooled the sample
  for (int r = 1; r <= ranks; ++r) {
    const std::vector<int64_t> standing = nonzero_indices(1.0 - done);
    if (standing.empty()) break;
    Tensor xs = take_rows(x, standing), ls = take_rows(labels, standing);
    Tensor ts = take_rows(target_of_rank[size_t(r)], standing);
    Generator g = gen.fork(gen.stream() * 1000 + uint64_t(r));
    Tensor adv = apgd(model, xs, ls, ts, AttackLoss::DLR, true, g, counters);
    Tensor fooled = fooled_mask(predict(model, adv), ls, Tensor(), false).to(DType::F64);
    counters.forward_samples += int64_t(standing.size());
    // The first run fills every row; later runs only replace with successes.
    const std::vector<int64_t> kept = r == 1 ? range_of(standing.size()) : nonzero_indices(fooled);
    std::vector<int64_t> dst;
    for (int64_t k : kept) dst.push_back(standing[size_t(k)]);
    if (!dst.empty()) put_rows(out, dst, take_rows(adv, kept));
    put_rows(done, standing, maximum(take_rows(done, standing), fooled));
  }
  return out;
}

}  // namespace advgrad
