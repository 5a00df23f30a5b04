#include "advgrad/attacks/threat_model.h"

#include <algorithm>
#include <cmath>

#include "advgrad/autograd/ops.h"
#include "advgrad/core/backend.h"

namespace advgrad {

const char* norm_name(Norm n) { return n == Norm::Linf ? "Linf" : "L2"; }

Tensor project(const Tensor& x_adv, const Tensor& x, double eps, Norm norm) {
  if (x_adv.shape() != x.shape() || x_adv.dtype() != x.dtype())
    throw ShapeError("project: x_adv " + x_adv.describe() + " and x " + x.describe() + " differ");
  if (x_adv.device() != x.device())
    throw TypeError("project: x_adv " + x_adv.describe() + " and x " + x.describe() + " are on different devices");
  if (!is_floating(x.dtype())) throw TypeError("project: needs float tensors, got " + x.describe());
  Tensor a = x_adv.dense(), xd = x.dense();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  // The exact projection (in double, rounded toward x) is a backend kernel: tensor ops cannot round toward a point.
  Backend& backend = backend_for(x.device());
  if (norm == Norm::Linf) backend.project_linf(a, xd, eps, out);
  else backend.project_l2(a, xd, x.dim() ? x.size(0) : 1, eps, out);
  return out;
}

Tensor random_start(const Tensor& x, double eps, Norm norm, Generator& gen) {
  NoGradGuard no_grad;
  if (norm == Norm::Linf) return project(x + uniform(x.shape(), -eps, eps, gen, x.dtype(), x.device()), x, eps, norm);
  // L2: a Gaussian direction normalised per sample, radius eps * u.
  const int64_t N = x.size(0);
  Tensor d = randn(x.shape(), gen, x.dtype(), x.device());
  Tensor flat = reshape(d, {N, -1});
  Tensor norms = sqrt(sum(square(flat), {1}, true)) + 1e-12;
  Tensor radius = rand({N, 1}, gen, x.dtype(), x.device()) * eps;
  Tensor delta = reshape(flat / norms * radius, x.shape());
  return project(x + delta, x, eps, norm);
}

double max_perturbation(const Tensor& x_adv, const Tensor& x, Norm norm) {
  auto a = x_adv.to_vector<double>(), b = x.to_vector<double>();
  const int64_t samples = x.dim() ? x.size(0) : 1, per = samples ? int64_t(a.size()) / samples : 0;
  double worst = 0;
  for (int64_t s = 0; s < samples; ++s) {
    double acc = 0;
    for (int64_t i = 0; i < per; ++i) {
      double d = std::fabs(a[size_t(s * per + i)] - b[size_t(s * per + i)]);
      acc = norm == Norm::Linf ? std::max(acc, d) : acc + d * d;
    }
    worst = std::max(worst, norm == Norm::Linf ? acc : std::sqrt(acc));
  }
  return worst;
}

void check_attack_inputs(const Tensor& x, const Tensor& labels, double eps, int64_t num_classes, const std::string& who) {
  if (!x.defined() || x.dim() < 1 || !is_floating(x.dtype()))
    throw ValueError(who + ": input must be a float tensor [N, ...]");
  if (!(eps >= 0) || !std::isfinite(eps)) throw ValueError(who + ": eps must be >= 0 and finite, got " + std::to_string(eps));
  if (!labels.defined() || labels.dtype() != DType::I64 || labels.shape() != Shape{x.size(0)})
    throw ValueError(who + ": labels must be int64 [" + std::to_string(x.size(0)) + "], got " +
                     (labels.defined() ? labels.describe() : std::string("undefined")) + " (batch/label size mismatch?)");
  // Checked with tensor ops on the input's device, a block of rows at a time (so that checking a whole test
  // set adds no more than a few MB of temporaries); only the first offending value (row-major order, for
  // the message) is copied out.
  {
    NoGradGuard no_grad;
    const int64_t n = x.size(0), row = n > 0 ? x.numel() / n : 0;
    const int64_t rows_per_block = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(row, 1));
    for (int64_t b = 0; b < n && row > 0; b += rows_per_block) {
      Tensor block = slice(x, 0, b, std::min(n, b + rows_per_block));
      // 1 where v is not in [0,1] (NaN included: every comparison with it is false).
      Tensor outside = rsub(1.0, mul(ge(block, scalar_tensor(0.0, x.dtype(), x.device())),
                                     le(block, scalar_tensor(1.0, x.dtype(), x.device()))));
      Tensor flat = reshape(outside, {-1});
      if (sum(flat).item() > 0) {
        const double v = reshape(block, {-1}).at({int64_t(argmax(flat, 0).item())});
        throw ValueError(who + ": inputs must lie in [0,1] (found " + std::to_string(v) +
                         "); put normalisation inside the model");
      }
    }
    if (num_classes > 0 && labels.numel() > 0) {
      Tensor bad = add(lt(labels, scalar_tensor(0.0, DType::I64, labels.device())),
                       ge(labels, scalar_tensor(double(num_classes), DType::I64, labels.device())));
      if (sum(bad).item() > 0) {
        const int64_t v = int64_t(labels.at({int64_t(argmax(bad.to(DType::F64), 0).item())}));
        throw ValueError(who + ": label " + std::to_string(v) + " outside [0, " + std::to_string(num_classes) + ")");
      }
    }
  }
}

}  // namespace advgrad
