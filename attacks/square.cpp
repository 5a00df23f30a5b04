#include "advgrad/attacks/square.h"

#include <algorithm>
#include <cmath>

#include "advgrad/autograd/ops.h"

namespace advgrad {

double SquareAttack::patch_fraction(double p_init, int64_t i, int64_t n, bool rescale) {
  const int64_t it = !rescale ? i : n > 0 ? int64_t(double(i) / double(n) * 10000.0) : 0;
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
// The margin to minimise (negative = fooled), per sample as a float64 [N] tensor: z_y - max_{j != y} z_j,
// or for a target t, max_{j != t} z_j - z_t.
Tensor margins(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted) {
  const Tensor& y = targeted ? targets : labels;
  const int64_t N = logits.size(0), C = logits.size(1);
  Tensor z = logits.to(DType::F64);
  Tensor z_y = reshape(gather(z, 1, reshape(y, {N, 1})), {N});
  const Tensor minus_inf = scalar_tensor(-INFINITY, DType::F64, z.device());
  Tensor z_other = max(where(one_hot(y, C, DType::F64), minus_inf, z), {1});
  return targeted ? z_other - z_y : z_y - z_other;
}

// x + (pick ? -eps : +eps): a corner of the eps-box, per value of `draws` (U[0,1), below 0.5 picks -eps).
Tensor box_corner(const Tensor& x, const Tensor& draws, double eps) {
  const Tensor lower = scalar_tensor(-eps, x.dtype(), x.device()), upper = scalar_tensor(eps, x.dtype(), x.device());
  return x + where(lt(draws, scalar_tensor(0.5, draws.dtype(), draws.device())), lower, upper);
}
}  // namespace

Tensor SquareAttack::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets,
                                 Generator& gen, AttackResult& counters) {
  NoGradGuard no_grad;  // black-box: logits only
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), plane = H * W;
  const double eps = opt_.eps;
  // The search runs in float64 (as the paper's reference code); each candidate is rounded to x's dtype and
  // projected before the model sees it, and `best` always holds the admissible point the model saw.
  Tensor x64 = x.dense().to(DType::F64);
  auto admissible = [&](const Tensor& values, const Tensor& clean) {
    return project(values.to(x.dtype()), clean, eps, Norm::Linf);
  };

  // Start: vertical stripes of +-eps (one sign per sample, channel and column).
  Tensor best_input = admissible(box_corner(x64, rand({N, C, 1, W}, gen, DType::F64, x.device()), eps), x);
  Tensor best = best_input.to(DType::F64);
  Tensor margin = margins(model.forward(best_input), labels, targets, opt_.targeted);
  counters.forward_samples += N;

  // Row and column numbers, to cut square windows out of an image with comparisons.
  Tensor row_number = reshape(arange(H, DType::F64, x.device()), {1, 1, H, 1});
  Tensor col_number = reshape(arange(W, DType::F64, x.device()), {1, 1, 1, W});
  for (int64_t q = 1; q < opt_.queries; ++q) {
    const std::vector<int64_t> active = nonzero_indices(gt(margin, scalar_tensor(0.0, DType::F64, x.device())));
    if (active.empty()) break;
    const double p = patch_fraction(opt_.square_p_init, q, opt_.queries, opt_.square_rescale_schedule);
    const int64_t s = std::clamp<int64_t>(int64_t(std::lround(std::sqrt(p * double(plane)))), 1, std::max<int64_t>(H - 1, 1));
    // Per active sample: a window of side s at (h0, w0) and one sign per channel, from the counter-based
    // generator; inside the window the candidate is x +- eps, elsewhere the best point so far.
    const int64_t A = int64_t(active.size());
    Tensor draws = rand({A, 2 + C}, gen, DType::F64, x.device());
    auto corner = [&](int64_t column, int64_t size) {  // floor(u * (size - s + 1)), at most size - s
      Tensor u = reshape(slice(draws, 1, column, column + 1), {A, 1, 1, 1});
      Tensor first = minimum((u * double(size - s + 1)).to(DType::I64).to(DType::F64),
                             scalar_tensor(double(size - s), DType::F64, x.device()));
      return first;
    };
    Tensor h0 = corner(0, H), w0 = corner(1, W);
    Tensor window = ge(row_number, h0) * lt(row_number, h0 + double(s)) * ge(col_number, w0) * lt(col_number, w0 + double(s));
    Tensor signs = reshape(slice(draws, 1, 2, 2 + C), {A, C, 1, 1});
    Tensor cand = where(window, box_corner(take_rows(x64, active), signs, eps), take_rows(best, active));
    Tensor candidates = admissible(cand, take_rows(x, active));
    Tensor m = margins(model.forward(candidates), take_rows(labels, active),
                       opt_.targeted ? take_rows(targets, active) : Tensor(), opt_.targeted);
    counters.forward_samples += A;
    // Keep a candidate where it lowers the margin: only those rows are copied into the best points.
    const std::vector<int64_t> better = nonzero_indices(lt(m, take_rows(margin, active)));
    if (better.empty()) continue;
    std::vector<int64_t> rows;
    for (int64_t k : better) rows.push_back(active[size_t(k)]);
    put_rows(margin, rows, take_rows(m, better));
    put_rows(best, rows, take_rows(candidates, better).to(DType::F64));
  }
  return admissible(best, x);
}

}  // namespace advgrad
