// cpu backend, softmax and log-softmax along the middle axis of an [outer, n, inner] view.
#include <algorithm>
#include <cmath>
#include <limits>

#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {

void CpuBackend::softmax(const Tensor& src, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& dst) {
  dispatch_floating(src.dtype(), "softmax", [&](auto z) {
    using T = decltype(z);
    const T* s = src.data<T>();
    T* d = dst.data<T>();
    parallel_for(outer * inner, grain_for(n, kReduceGrain), [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t base = (e / inner) * n * inner + e % inner;
        const T* x = s + base;
        T* y = d + base;
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t k = 0; k < n; ++k) m = std::max(m, x[k * inner]);
        T sum = T(0);
        for (int64_t k = 0; k < n; ++k) {
          const T ex = std::exp(x[k * inner] - m);
          sum += ex;
          if (!log) y[k * inner] = ex;
        }
        if (log) {
          const T ls = std::log(sum);
          for (int64_t k = 0; k < n; ++k) y[k * inner] = x[k * inner] - m - ls;
        } else {
          for (int64_t k = 0; k < n; ++k) y[k * inner] /= sum;
        }
      }
    });
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
