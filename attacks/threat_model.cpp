#include "attacks/threat_model.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"

namespace advgrad {

const char* norm_name(Norm n) { return n == Norm::Linf ? "Linf" : "L2"; }

namespace {

// Rounds v (a double inside the allowed interval around x) to T without leaving the interval:
// float rounding could otherwise land just outside the ball.
template <class T>
T round_inside(double v, T x, double lo, double hi) {
  T f = T(v);
  while (double(f) > hi) f = std::nextafter(f, x);
  while (double(f) < lo) f = std::nextafter(f, x);
  return f;
}

template <class T>
void project_linf(T* out, const T* adv, const T* x, int64_t n, double eps) {
  for (int64_t i = 0; i < n; ++i) {
    double lo = std::max(double(x[i]) - eps, 0.0), hi = std::min(double(x[i]) + eps, 1.0);
    double v = std::clamp(double(adv[i]), lo, hi);
    if (std::isnan(v)) v = double(x[i]);  // a NaN gradient must not poison the example
    out[i] = round_inside<T>(v, x[i], lo, hi);
  }
}

template <class T>
void project_l2(T* out, const T* adv, const T* x, int64_t samples, int64_t per, double eps) {
  for (int64_t s = 0; s < samples; ++s) {
    const T* a = adv + s * per;
    const T* xs = x + s * per;
    T* o = out + s * per;
    // Scale delta into the ball, then clip to [0,1] (clipping only shrinks |delta_i| since x is in [0,1]).
    double norm2 = 0;
    for (int64_t i = 0; i < per; ++i) {
      double d = double(a[i]) - double(xs[i]);
      norm2 += std::isnan(d) ? 0 : d * d;
    }
    double scale = norm2 > eps * eps ? eps / std::sqrt(norm2) : 1.0;
    for (int64_t shrink = 0;; ++shrink) {
      double check = 0;
      for (int64_t i = 0; i < per; ++i) {
        double d = double(a[i]) - double(xs[i]);
        if (std::isnan(d)) d = 0;
        double v = std::clamp(double(xs[i]) + d * scale, 0.0, 1.0);
        o[i] = round_inside<T>(v, xs[i], std::min(double(xs[i]), v), std::max(double(xs[i]), v));
        double r = double(o[i]) - double(xs[i]);
        check += r * r;
      }
      if (check <= eps * eps || shrink > 60) break;
      scale *= 1.0 - 1e-7 * double(1 << std::min<int64_t>(shrink, 20));  // rounding pushed it out: shrink a hair
    }
  }
}

}  // namespace

Tensor project(const Tensor& x_adv, const Tensor& x, double eps, Norm norm) {
  if (x_adv.shape() != x.shape() || x_adv.dtype() != x.dtype())
    throw ShapeError("project: x_adv " + x_adv.describe() + " and x " + x.describe() + " differ");
  Tensor a = x_adv.dense(), xd = x.dense();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel(), samples = x.dim() ? x.size(0) : 1, per = samples ? n / samples : 0;
  dispatch_floating(x.dtype(), "project", [&](auto z) {
    using T = decltype(z);
    if (norm == Norm::Linf) project_linf<T>(out.data<T>(), a.data<T>(), xd.data<T>(), n, eps);
    else project_l2<T>(out.data<T>(), a.data<T>(), xd.data<T>(), samples, per, eps);
  });
  return out;
}

Tensor random_start(const Tensor& x, double eps, Norm norm, Generator& gen) {
  NoGradGuard no_grad;
  if (norm == Norm::Linf) return project(add(x, uniform(x.shape(), -eps, eps, gen, x.dtype(), x.device())), x, eps, norm);
  // L2: a Gaussian direction normalised per sample, radius eps * u.
  const int64_t N = x.size(0);
  Tensor d = randn(x.shape(), gen, x.dtype(), x.device());
  Shape per_sample(size_t(x.dim()), 1);
  per_sample[0] = N;
  Tensor flat = reshape(d, {N, -1});
  Tensor norms = add(sqrt(sum(square(flat), {1}, true)), 1e-12);
  Tensor radius = mul(rand({N, 1}, gen, x.dtype(), x.device()), eps);
  Tensor delta = reshape(mul(div(flat, norms), radius), x.shape());
  return project(add(x, delta), x, eps, norm);
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
  for (double v : x.to_vector<double>())
    if (!(v >= 0.0 && v <= 1.0))
      throw ValueError(who + ": inputs must lie in [0,1] (found " + std::to_string(v) +
                       "); put normalisation inside the model");
  if (num_classes > 0)
    for (int64_t v : labels.to_vector<int64_t>())
      if (v < 0 || v >= num_classes)
        throw ValueError(who + ": label " + std::to_string(v) + " outside [0, " + std::to_string(num_classes) + ")");
}

}  // namespace advgrad
