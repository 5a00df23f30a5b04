#include "attacks/apgd.h"

#include <algorithm>
#include <cmath>

#include "attacks/gradient_attacks.h"

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
// rows of `fresh` where pick[i], else rows of `base`
Tensor choose_rows(const std::vector<bool>& pick, const Tensor& fresh, const Tensor& base) {
  std::vector<double> m(pick.size());
  for (size_t i = 0; i < pick.size(); ++i) m[i] = pick[i] ? 1.0 : 0.0;
  return where(per_sample_column(m, base), fresh, base);
}
}  // namespace

Tensor APGD::apgd(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, AttackLoss loss,
                  bool targeted, Generator& gen, AttackResult& counters) {
  const int64_t N = x.size(0);
  const double eps = opt_.eps, alpha = 0.75, rho = 0.75;
  const std::vector<int> ckpt = checkpoints(opt_.steps);

  Tensor x_cur = opt_.random_start ? random_start(x, eps, opt_.norm, gen) : x.clone();
  LossGradient lg = objective_gradient(model, x_cur, labels, targets, loss, targeted);
  counters.forward_samples += N, counters.gradient_samples += N;
  Tensor grad = lg.grad, x_prev = x_cur;
  std::vector<double> eta(static_cast<size_t>(N), 2.0 * eps), loss_prev = lg.per_sample_loss.to_vector<double>();
  std::vector<double> best = loss_prev;
  Tensor x_best = x_cur, grad_best = grad;
  // The returned point: the latest misclassifying iterate if any, else the best-loss one.
  std::vector<bool> fooled = fooled_by(lg.logits, labels, targets, false);
  Tensor x_fooled = x_cur;
  // Checkpoint bookkeeping per sample.
  std::vector<int> successes(static_cast<size_t>(N), 0);
  std::vector<bool> reduced_last(static_cast<size_t>(N), false);
  std::vector<double> best_at_last = best;
  size_t next_ckpt = 1;

  for (int k = 0; k < opt_.steps; ++k) {
    {
      NoGradGuard no_grad;
      Tensor step = mul(step_direction(grad, opt_.norm), per_sample_column(eta, x));
      Tensor z = project(add(x_cur, step), x, eps, opt_.norm);
      Tensor next = z;
      if (k > 0)  // momentum: x + alpha (z - x) + (1 - alpha)(x - x_prev)
        next = project(add(add(x_cur, mul(sub(z, x_cur), alpha)), mul(sub(x_cur, x_prev), 1.0 - alpha)), x, eps,
                       opt_.norm);
      x_prev = x_cur;
      x_cur = next;
    }
    lg = objective_gradient(model, x_cur, labels, targets, loss, targeted);
    counters.forward_samples += N, counters.gradient_samples += N;
    grad = lg.grad;
    auto l = lg.per_sample_loss.to_vector<double>();
    auto now_fooled = fooled_by(lg.logits, labels, targets, false);
    x_fooled = choose_rows(now_fooled, x_cur, x_fooled);
    std::vector<bool> improved(static_cast<size_t>(N));
    for (size_t i = 0; i < size_t(N); ++i) {
      fooled[i] = fooled[i] || now_fooled[i];
      successes[i] += l[i] > loss_prev[i];
      loss_prev[i] = l[i];
      improved[i] = l[i] > best[i];
      if (improved[i]) best[i] = l[i];
    }
    x_best = choose_rows(improved, x_cur, x_best);
    grad_best = choose_rows(improved, grad, grad_best);

    if (next_ckpt < ckpt.size() && k + 1 == ckpt[next_ckpt]) {
      // Halve the step where (1) fewer than rho of the steps since the last checkpoint raised the loss, or
      // (2) the step was not reduced last time and the best loss has not moved since; restart from x_best.
      const int interval = ckpt[next_ckpt] - ckpt[next_ckpt - 1];
      std::vector<bool> halve(static_cast<size_t>(N));
      bool any = false;
      for (size_t i = 0; i < size_t(N); ++i) {
        bool stalled = successes[i] < rho * interval;
        bool stuck = !reduced_last[i] && best_at_last[i] >= best[i];
        halve[i] = stalled || stuck;
        if (halve[i]) eta[i] /= 2.0;
        reduced_last[i] = halve[i];
        best_at_last[i] = best[i];
        successes[i] = 0;
        any = any || halve[i];
      }
      if (any) {
        x_cur = choose_rows(halve, x_best, x_cur);
        x_prev = choose_rows(halve, x_best, x_prev);
        grad = choose_rows(halve, grad_best, grad);
      }
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
  // Classes by decreasing clean logit, per sample; target r is the (r+1)-th highest.
  auto lv = logits.to_vector<double>();
  std::vector<std::vector<int64_t>> order(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    auto& o = order[size_t(i)];
    for (int64_t c = 0; c < C; ++c) o.push_back(c);
    std::stable_sort(o.begin(), o.end(), [&](int64_t a, int64_t b) { return lv[size_t(i * C + a)] > lv[size_t(i * C + b)]; });
  }
  Tensor out = x.clone();
  std::vector<bool> done(static_cast<size_t>(N), false);
  for (int r = 1; r <= ranks; ++r) {
    std::vector<int64_t> standing, target_values;
    for (int64_t i = 0; i < N; ++i)
      if (!done[size_t(i)]) standing.push_back(i), target_values.push_back(order[size_t(i)][size_t(r)]);
    if (standing.empty()) break;
    Tensor xs = take_rows(x, standing), ls = take_rows(labels, standing);
    Tensor ts = from_vector(target_values, {}, x.device());
    Generator g = gen.fork(gen.stream() * 1000 + uint64_t(r));
    Tensor adv = apgd(model, xs, ls, ts, AttackLoss::DLR, true, g, counters);
    auto fooled = fooled_by(predict(model, adv), ls, Tensor(), false);
    counters.forward_samples += int64_t(standing.size());
    std::vector<int64_t> src, dst;
    for (size_t k = 0; k < standing.size(); ++k)
      if (fooled[k] || r == 1) {  // the first run fills every row; later runs only replace with successes
        src.push_back(int64_t(k));
        dst.push_back(standing[k]);
        if (fooled[k]) done[size_t(standing[k])] = true;
      }
    if (!dst.empty()) put_rows(out, dst, take_rows(adv, src));
  }
  return out;
}

}  // namespace advgrad
