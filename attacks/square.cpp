#include "attacks/square.h"

#include <algorithm>
#include <cmath>

namespace advgrad {

double SquareAttack::patch_fraction(double p_init, int64_t i, int64_t n) {
  const int64_t it = n > 0 ? int64_t(double(i) / double(n) * 10000.0) : 0;
  const int64_t marks[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = p_init;
  for (int64_t m : marks)
    if (it > m) p /= 2;
  return p;
}

void SquareAttack::validate(const Tensor& x) const {
  if (opt_.norm != Norm::Linf) throw ValueError("square: only the L-inf version is implemented");
  if (opt_.queries < 1) throw ValueError("square: the query budget must be >= 1");
  if (!(opt_.square_p_init > 0 && opt_.square_p_init <= 1)) throw ValueError("square: p_init must be in (0, 1]");
  if (x.dim() != 4) throw ValueError("square: needs image inputs [N,C,H,W], got " + shape_str(x.shape()));
}

namespace {
// The margin to minimise (negative = fooled): z_y - max_{j != y} z_j, or for a target t,
// max_{j != t} z_j - z_t.
std::vector<double> margins(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted) {
  auto z = logits.to_vector<double>();
  auto y = (targeted ? targets : labels).to_vector<int64_t>();
  const int64_t C = logits.size(1);
  std::vector<double> m(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    double zy = z[i * size_t(C) + size_t(y[i])], other = -INFINITY;
    for (int64_t c = 0; c < C; ++c)
      if (c != y[i]) other = std::max(other, z[i * size_t(C) + size_t(c)]);
    m[i] = targeted ? other - zy : zy - other;
  }
  return m;
}
}  // namespace

Tensor SquareAttack::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets,
                                 Generator& gen, AttackResult& counters) {
  NoGradGuard no_grad;  // black-box: logits only
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), plane = H * W, per = C * plane;
  const double eps = opt_.eps;
  Tensor xd = x.dense().to(DType::F64);
  const double* xv = xd.data<double>();

  // Start: vertical stripes of +-eps (one sign per sample, channel and column).
  Tensor signs = rand({N, C, 1, W}, gen, DType::F64, x.device());
  std::vector<double> best(size_t(N * per));
  {
    const double* s = signs.data<double>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            int64_t i = n * per + c * plane + h * W + w;
            best[size_t(i)] = xv[i] + (s[(n * C + c) * W + w] < 0.5 ? -eps : eps);
          }
  }
  // Model input for the given samples from double values: `v` holds either all N samples (rows pick from
  // it) or exactly the rows' samples in order (packed). Projected, so float rounding cannot leave the ball.
  auto to_input = [&](const std::vector<double>& v, const std::vector<int64_t>& rows, bool packed) {
    std::vector<double> sel;
    if (packed) {
      sel = v;
    } else {
      sel.reserve(rows.size() * size_t(per));
      for (int64_t r : rows) sel.insert(sel.end(), v.begin() + r * per, v.begin() + (r + 1) * per);
    }
    Tensor t = from_vector(sel, {int64_t(rows.size()), C, H, W}, x.device()).to(x.dtype());
    return project(t, take_rows(x, rows), eps, Norm::Linf);
  };
  std::vector<int64_t> all(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) all[size_t(i)] = i;
  Tensor best_input = to_input(best, all, false);
  {  // store the projected values back, so `best` always holds an admissible point
    auto bv = best_input.to_vector<double>();
    best.assign(bv.begin(), bv.end());
  }
  std::vector<double> margin = margins(model.forward(best_input), labels, targets, opt_.targeted);
  counters.forward_samples += N;

  for (int64_t q = 1; q < opt_.queries; ++q) {
    std::vector<int64_t> active;
    for (int64_t i = 0; i < N; ++i)
      if (margin[size_t(i)] > 0) active.push_back(i);
    if (active.empty()) break;
    const double p = patch_fraction(opt_.square_p_init, q, opt_.queries);
    const int64_t s = std::clamp<int64_t>(int64_t(std::lround(std::sqrt(p * double(plane)))), 1, std::max<int64_t>(H - 1, 1));
    // Per active sample: a patch position and one sign per channel, from the counter-based generator.
    const int64_t A = int64_t(active.size());
    Tensor draws = rand({A, 2 + C}, gen, DType::F64, x.device());
    const double* d = draws.data<double>();
    std::vector<double> cand;
    cand.reserve(size_t(A * per));
    for (int64_t a = 0; a < A; ++a) {
      const int64_t n = active[size_t(a)];
      cand.insert(cand.end(), best.begin() + n * per, best.begin() + (n + 1) * per);
      double* cv = cand.data() + a * per;
      const int64_t h0 = std::min<int64_t>(int64_t(d[a * (2 + C)] * double(H - s + 1)), H - s);
      const int64_t w0 = std::min<int64_t>(int64_t(d[a * (2 + C) + 1] * double(W - s + 1)), W - s);
      for (int64_t c = 0; c < C; ++c) {
        const double delta = d[a * (2 + C) + 2 + c] < 0.5 ? -eps : eps;
        for (int64_t h = h0; h < h0 + s; ++h)
          for (int64_t w = w0; w < w0 + s; ++w) {
            const int64_t i = c * plane + h * W + w;
            cv[i] = xv[n * per + i] + delta;
          }
      }
    }
    Tensor candidates = to_input(cand, active, /*packed=*/true);
    std::vector<double> m = margins(model.forward(candidates), take_rows(labels, active),
                                    opt_.targeted ? take_rows(targets, active) : Tensor(), opt_.targeted);
    counters.forward_samples += A;
    auto cv = candidates.to_vector<double>();
    for (int64_t a = 0; a < A; ++a) {
      const int64_t n = active[size_t(a)];
      if (m[size_t(a)] < margin[size_t(n)]) {
        margin[size_t(n)] = m[size_t(a)];
        std::copy(cv.begin() + a * per, cv.begin() + (a + 1) * per, best.begin() + n * per);
      }
    }
  }
  std::vector<double> flat(best.begin(), best.end());
  return project(from_vector(flat, x.shape(), x.device()).to(x.dtype()), x, eps, Norm::Linf);
}

}  // namespace advgrad
