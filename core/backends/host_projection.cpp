// The default bodies of Backend::project_linf / project_l2, for backends whose memory is host memory (the
// cpu backend uses them as they are). Samples are independent, so they run in parallel one sample per
// task; the results do not depend on the thread count. A device whose memory the host cannot address
// overrides both.
#include <algorithm>
#include <cmath>

#include "advgrad/core/backend.h"
#include "advgrad/core/device_memory.h"
#include "advgrad/core/parallel.h"

namespace advgrad {
namespace {

// v (a double inside [lo, hi], an interval that holds x) rounded to T without leaving the interval.
template <class T>
T round_toward(double v, T x, double lo, double hi) {
  T f = T(v);
  while (double(f) > hi) f = std::nextafter(f, x);
  while (double(f) < lo) f = std::nextafter(f, x);
  return f;
}

template <class T>
void linf(const T* adv, const T* x, T* out, int64_t begin, int64_t end, double eps) {
  for (int64_t i = begin; i < end; ++i) {
    const double lo = std::max(double(x[i]) - eps, 0.0), hi = std::min(double(x[i]) + eps, 1.0);
    double v = std::clamp(double(adv[i]), lo, hi);
    if (std::isnan(v)) v = double(x[i]);
    out[i] = round_toward<T>(v, x[i], lo, hi);
  }
}

template <class T>
void l2_sample(const T* a, const T* xs, T* o, int64_t per, double eps) {
  double norm2 = 0;
  for (int64_t i = 0; i < per; ++i) {
    double d = double(a[i]) - double(xs[i]);
    if (std::isnan(d)) d = 0;
    norm2 += d * d;  // the reference's form: a compiler that contracts a*b+c into an FMA does so in both
  }
  double scale = norm2 > eps * eps ? eps / std::sqrt(norm2) : 1.0;
  for (int64_t shrink = 0;; ++shrink) {
    double check = 0;
    for (int64_t i = 0; i < per; ++i) {
      double d = double(a[i]) - double(xs[i]);
      if (std::isnan(d)) d = 0;
      const double v = std::clamp(double(xs[i]) + d * scale, 0.0, 1.0);
      o[i] = round_toward<T>(v, xs[i], std::min(double(xs[i]), v), std::max(double(xs[i]), v));
      const double r = double(o[i]) - double(xs[i]);
      check += r * r;
    }
    if (check <= eps * eps || shrink > 60) break;
    scale *= 1.0 - 1e-7 * double(1 << std::min<int64_t>(shrink, 20));
  }
}

}  // namespace

void Backend::project_linf(const Tensor& adv, const Tensor& x, double eps, Tensor& out) {
  dispatch_floating(x.dtype(), "project_linf", [&](auto z) {
    using T = decltype(z);
    const T *a = device_data<T>(adv), *xs = device_data<T>(x);
    T* o = device_data<T>(out);
    parallel_for(x.numel(), 1 << 14, [&](int64_t begin, int64_t end) { linf<T>(a, xs, o, begin, end, eps); });
  });
}

void Backend::project_l2(const Tensor& adv, const Tensor& x, int64_t samples, double eps, Tensor& out) {
  const int64_t per = samples ? x.numel() / samples : 0;
  dispatch_floating(x.dtype(), "project_l2", [&](auto z) {
    using T = decltype(z);
    const T *a = device_data<T>(adv), *xs = device_data<T>(x);
    T* o = device_data<T>(out);
    parallel_for(samples, 1, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) l2_sample<T>(a + s * per, xs + s * per, o + s * per, per, eps);
    });
  });
}

}  // namespace advgrad
