#include "advgrad/attacks/fab.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "advgrad/autograd/ops.h"

namespace advgrad {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

Tensor scalar_like(double v, const Tensor& like) { return scalar_tensor(v, like.dtype(), like.device()); }

// Per-row norm of d [N, D] in float64: max |d_i| or sqrt(sum d_i^2).
Tensor row_norm(const Tensor& d, Norm norm) {
  return norm == Norm::Linf ? max(abs(d), {1}) : sqrt(sum(square(d), {1}));
}

Tensor column(const Tensor& v) { return reshape(v, {v.size(0), 1}); }  // [N] -> [N, 1]

}  // namespace

Tensor project_onto_hyperplane_in_box(const Tensor& points, const Tensor& w_in, const Tensor& b, Norm norm) {
  NoGradGuard no_grad;
  if (points.dim() != 2 || w_in.shape() != points.shape() || b.dim() != 1 || b.size(0) != points.size(0))
    throw ShapeError("project_onto_hyperplane_in_box: points and w must be [N, D] and b [N], got " +
                     shape_str(points.shape()) + ", " + shape_str(w_in.shape()) + ", " + shape_str(b.shape()));
  const Tensor t = points.to(DType::F64), b64 = b.to(DType::F64);
  // The progress still needed, c = b - <w, t>; flip the hyperplane's sign so that c >= 0 and the step
  // has to raise <w, d>.
  Tensor c = b64 - sum(w_in.to(DType::F64) * t, {1});
  Tensor flip = where(lt(c, scalar_like(0.0, c)), scalar_like(-1.0, c), scalar_like(1.0, c));
  Tensor w = w_in.to(DType::F64) * column(flip);
  c = c * flip;
  // Per coordinate: how far the box lets it move in the direction that raises <w, d> (1 - t up, t down),
  // and the weight |w_i| of that move. Coordinates with w_i = 0 never move.
  const Tensor zero = scalar_like(0.0, t);
  Tensor room = where(gt(w, zero), 1.0 - t, t);
  Tensor weight = abs(w);
  Tensor moves = gt(weight, zero);
  room = where(moves, room, zero);
  // The minimal-norm step for a multiplier m >= 0 moves coordinate i by min(m * k_i, room_i) toward the
  // hyperplane, with k_i = 1 for L-inf (every coordinate as far as m) and k_i = |w_i| for L2 (along w).
  // Its progress sum_i |w_i| min(m k_i, room_i) grows with m; we need it to equal c.
  Tensor rate = norm == Norm::Linf ? where(moves, full_like(w, 1.0), zero) : weight;
  // Beyond m_max = max_i room_i / k_i every coordinate is at its bound: the box's nearest corner.
  Tensor saturation = where(moves, room / where(moves, rate, full_like(w, 1.0)), zero);  // room_i / k_i
  Tensor hi = max(saturation, {1});
  Tensor lo = zeros_like(hi);
  auto progress = [&](const Tensor& m) { return sum(weight * minimum(column(m) * rate, room), {1}); };
  // 32 halvings leave a bracket of m_max / 2^32; the exact solve below finishes on its linear piece (where
  // a breakpoint is still inside the bracket, hi: within 2^-32 m_max on the far side of the hyperplane).
  for (int i = 0; i < 32; ++i) {
    Tensor mid = (lo + hi) * 0.5;
    Tensor enough = ge(progress(mid), c);
    hi = where(enough, mid, hi);
    lo = where(enough, lo, mid);
  }
  // On [lo, hi] the coordinates saturated at lo stay saturated, so the progress is linear there:
  // fixed + m * slope; solve it exactly where that lands inside the bracket.
  Tensor saturated = le(saturation, column(lo));
  Tensor fixed = sum(where(saturated, weight * room, zero), {1});
  Tensor slope = sum(where(saturated, zero, weight * rate), {1});
  const Tensor zero_n = zeros_like(slope);
  Tensor exact = (c - fixed) / where(gt(slope, zero_n), slope, full_like(slope, 1.0));
  Tensor inside = gt(slope, zero_n) * ge(exact, lo) * le(exact, hi);
  Tensor m = where(inside, exact, hi);
  Tensor step = minimum(column(m) * rate, room);
  return sign(w) * step;
}

FABTargeted::FABTargeted(AttackOptions options) : Attack(std::move(options)) {}

namespace {

// The checks FAB and FAB-T share.
void validate_fab_options(const AttackOptions& o, const std::string& name) {
  if (!(o.fab_alpha_max >= 0 && o.fab_alpha_max <= 1)) throw ValueError(name + ": alpha_max must be in [0, 1]");
  if (!(o.fab_eta >= 1)) throw ValueError(name + ": eta (overshoot) must be >= 1");
  if (!(o.fab_beta > 0 && o.fab_beta <= 1)) throw ValueError(name + ": beta must be in (0, 1]");
}

// The linearised boundary a step projects onto: {z : <w, z> = b} per row (float64 [n, D] and [n]).
struct Hyperplane {
  Tensor w, b;
};
// The boundary at the iterate x1 (float64 [n, D]); `input` is x1 as the model takes it.
using BoundaryAt = std::function<Hyperplane(const Tensor& x1, const Tensor& input)>;

// f = z_target - z_label, linearised at x1: f(x1) + <grad f(x1), z - x1> = 0, i.e. <w, z> = <w, x1> - f(x1).
BoundaryAt boundary_toward(Module& model, const Tensor& labels, const Tensor& targets, AttackResult& counters) {
  return [&model, labels, targets, &counters](const Tensor& x1, const Tensor& input) {
    const int64_t n = x1.size(0);
    const LogitObjective target_minus_label = [&](const Tensor& logits) {
      return reshape(gather(logits, 1, reshape(targets, {n, 1})) - gather(logits, 1, reshape(labels, {n, 1})), {n});
    };
    LossGradient lg = objective_gradient(model, input, target_minus_label);
    counters.forward_samples += n, counters.gradient_samples += n;
    Tensor w = reshape(lg.grad.to(DType::F64), {n, x1.size(1)});
    return Hyperplane{w, sum(w * x1, {1}) - lg.per_sample_loss.to(DType::F64)};
  };
}

// The boundary of the class j != label whose linearisation is closest to x1: the smallest
// |f_j(x1)| / ||grad f_j(x1)||_dual (dual norm: L1 for L-inf, L2 for L2), with f_j = z_j - z_label. One
// backward pass per other class k, aiming at class (label + k) mod C, over the batch as it is: memory stays
// that of one batch whatever the number of classes (a 1000-class model would otherwise need 999 copies).
BoundaryAt closest_boundary(Module& model, const Tensor& labels, int64_t classes, Norm norm, AttackResult& counters) {
  return [&model, labels, classes, norm, &counters](const Tensor& x1, const Tensor& input) {
    const int64_t n = x1.size(0);
    const Tensor C = full({}, double(classes), DType::I64, labels.device());
    Tensor best_distance, w, fj;  // the nearest boundary so far (the first smallest wins ties)
    for (int64_t k = 1; k < classes; ++k) {
      Tensor j = add(labels, full({}, double(k), DType::I64, labels.device()));
      const Tensor other = reshape(sub(j, mul(ge(j, C), C)), {n, 1});  // (label + k) mod C
      const LogitObjective difference = [&](const Tensor& logits) {
        return reshape(gather(logits, 1, other) - gather(logits, 1, reshape(labels, {n, 1})), {n});
      };
      LossGradient lg = objective_gradient(model, input, difference);
      counters.forward_samples += n, counters.gradient_samples += n;
      const Tensor f = lg.per_sample_loss.to(DType::F64);
      const Tensor g = reshape(lg.grad.to(DType::F64), {n, x1.size(1)});
      const Tensor dual = norm == Norm::Linf ? sum(abs(g), {1}) : sqrt(sum(square(g), {1}));
      const Tensor distance = abs(f) / add(dual, 1e-12);  // [n]
      if (k == 1) {
        best_distance = distance, w = g, fj = f;
        continue;
      }
      const Tensor nearer = lt(distance, best_distance);
      best_distance = where(nearer, distance, best_distance);
      w = where(reshape(nearer, {n, 1}), g, w);
      fj = where(nearer, f, fj);
    }
    return Hyperplane{w, sum(w * x1, {1}) - fj};
  };
}

// One FAB run: `steps` iterations projecting onto the boundary that `boundary` gives at each iterate.
FABRun run_fab(const AttackOptions& opt, Module& model, const Tensor& x, const Tensor& labels,
               const BoundaryAt& boundary, bool random_start, Generator& gen, AttackResult& counters) {
  const int64_t n = x.size(0), D = x.numel() / std::max<int64_t>(n, 1);
  const Norm norm = opt.norm;
  const double eps = opt.eps;
  NoGradGuard no_grad;
  const Tensor x0 = reshape(x.dense().to(DType::F64), {n, D});
  auto as_input = [&](const Tensor& flat) { return reshape(flat, x.shape()).to(x.dtype()); };
  auto as_flat = [&](const Tensor& input) { return reshape(input.to(DType::F64), {n, D}); };

  // The start: the clean point, or for a restart a random point at distance eps / 2 (clipped to the box).
  Tensor x1 = x0;
  if (random_start) {
    Tensor r = norm == Norm::Linf ? rand({n, D}, gen, DType::F64, x.device()) * 2.0 - 1.0
                                  : randn({n, D}, gen, DType::F64, x.device());
    Tensor length = maximum(row_norm(r, norm), full({n}, 1e-12, DType::F64, x.device()));
    x1 = clamp(x0 + r / column(length) * (0.5 * eps), 0.0, 1.0);
  }
  x1 = as_flat(as_input(x1));  // every iterate is a point the model can see (x's dtype)

  Tensor best = x0, best_distance = full({n}, kInfinity, DType::F64, x.device());
  const Tensor tiny = full({n}, 1e-8, DType::F64, x.device());
  for (int k = 0; k < opt.steps; ++k) {
    const Hyperplane h = boundary(x1, as_input(x1));
    // Project the iterate and the clean point onto it (within the box), in one batch.
    Tensor d = project_onto_hyperplane_in_box(concat({x1, x0}, 0), concat({h.w, h.w}, 0), concat({h.b, h.b}, 0), norm);
    Tensor d_iterate = slice(d, 0, 0, n), d_clean = slice(d, 0, n, 2 * n);
    // alpha: how much of the clean point's projection to take, a1 / (a1 + a2) capped at alpha_max.
    Tensor a1 = maximum(row_norm(d_iterate, norm), tiny), a2 = maximum(row_norm(d_clean, norm), tiny);
    Tensor alpha = column(minimum(a1 / (a1 + a2), full({n}, opt.fab_alpha_max, DType::F64, x.device())));
    Tensor next = (x1 + d_iterate * opt.fab_eta) * (1.0 - alpha) + (x0 + d_clean * opt.fab_eta) * alpha;
    x1 = as_flat(as_input(clamp(next, 0.0, 1.0)));

    // An adversarial iterate is kept if it is the closest so far, then pulled back toward x0 by beta.
    Tensor pred = argmax(predict(model, as_input(x1)), 1);
    counters.forward_samples += n;
    Tensor adversarial = ne(pred, labels).to(DType::F64);
    Tensor distance = row_norm(x1 - x0, norm);
    Tensor closer = adversarial * lt(distance, best_distance);
    best = where(column(closer), x1, best);
    best_distance = where(closer, distance, best_distance);
    x1 = where(column(adversarial), as_flat(as_input(x0 + (x1 - x0) * opt.fab_beta)), x1);
  }
  return {as_input(best), best_distance};
}

// Writes the rows of `run` that lie within eps into out (rows `rows` of it) and marks them in `done`.
void keep_within_eps(const FABRun& run, double eps, const std::vector<int64_t>& rows, Tensor& out, Tensor& done) {
  Tensor within = le(run.distance, full({int64_t(rows.size())}, eps, DType::F64, out.device()));
  const std::vector<int64_t> found = nonzero_indices(within);
  std::vector<int64_t> dst;
  for (int64_t k : found) dst.push_back(rows[size_t(k)]);
  if (dst.empty()) return;
  put_rows(out, dst, take_rows(run.x_adv, found));
  put_rows(done, dst, full({int64_t(dst.size())}, 1.0, DType::F64, out.device()));
}

}  // namespace

void FABTargeted::validate(const Tensor& x) const {
  Attack::validate(x);
  if (opt_.target_classes < 1)
    throw ValueError(name() + ": target classes must be >= 1, got " + std::to_string(opt_.target_classes));
  validate_fab_options(opt_, name());
}

namespace {
// The model's logits on x (one counted forward pass), refusing a model of fewer than 2 classes.
Tensor checked_logits(Module& model, const Tensor& x, AttackResult& counters, const std::string& attack) {
  Tensor logits = predict(model, x);
  counters.forward_samples += x.size(0);
  if (logits.size(1) < 2)
    throw ValueError(attack + ": needs at least 2 classes, the model has " + std::to_string(logits.size(1)));
  return logits;
}

}  // namespace

FABTargeted::Run FABTargeted::fab(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets,
                                  bool random_start, Generator& gen, AttackResult& counters) const {
  return run_fab(opt_, model, x, labels, boundary_toward(model, labels, targets, counters), random_start, gen, counters);
}

Tensor FABTargeted::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor&, Generator& gen,
                                AttackResult& counters) {
  const int64_t N = x.size(0);
  Tensor logits = checked_logits(model, x, counters, name());
  const int64_t C = logits.size(1);
  const int ranks = int(std::min<int64_t>(opt_.target_classes, C - 1));
  const std::vector<Tensor> by_rank = classes_by_rank(logits, ranks + 1);
  // Run() forks one generator per restart (stream = restart index): restart 0 starts at the clean point.
  const bool random_start = gen.stream() > 0;
  NoGradGuard no_grad;
  Tensor out = x.dense().clone();
  Tensor done = zeros({N}, DType::F64, x.device());  // 1 once some target found a point within eps
  for (int r = 1; r <= ranks; ++r) {
    const std::vector<int64_t> standing = nonzero_indices(1.0 - done);
    if (standing.empty()) break;
    Tensor xs = take_rows(x, standing), ls = take_rows(labels, standing);
    Tensor ts = take_rows(by_rank[size_t(r)], standing);
    Generator g = gen.fork(gen.stream() * 1000 + uint64_t(r));
    keep_within_eps(fab(model, xs, ls, ts, random_start, g, counters), opt_.eps, standing, out, done);
  }
  return out;
}

FAB::FAB(AttackOptions options) : Attack(std::move(options)) {}

void FAB::validate(const Tensor& x) const {
  Attack::validate(x);
  validate_fab_options(opt_, name());
}

Tensor FAB::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor&, Generator& gen,
                        AttackResult& counters) {
  const int64_t N = x.size(0);
  Tensor logits = checked_logits(model, x, counters, name());
  const int64_t C = logits.size(1);
  const bool random_start = gen.stream() > 0;  // restart 0 starts at the clean point, as FAB-T
  NoGradGuard no_grad;
  Tensor out = x.dense().clone();
  Tensor done = zeros({N}, DType::F64, x.device());
  Generator g = gen.fork(gen.stream() * 1000);
  std::vector<int64_t> all(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) all[size_t(i)] = i;
  keep_within_eps(run_fab(opt_, model, x, labels, closest_boundary(model, labels, C, opt_.norm, counters), random_start,
                          g, counters),
                  opt_.eps, all, out, done);
  return out;
}

}  // namespace advgrad
