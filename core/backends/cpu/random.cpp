// cpu backend, counter-based random fills: element i is a pure function of (seed, stream, offset + i).
#include <type_traits>

#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/generator.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {

void CpuBackend::random(RandomKind kind, Tensor& out, uint64_t seed, uint64_t stream, uint64_t offset, double a,
                        double b) {
  const int64_t n = out.numel();
  if (kind == RandomKind::Randint) {
    int64_t* p = out.data<int64_t>();
    const int64_t lo = int64_t(a);
    const uint64_t range = uint64_t(int64_t(b) - lo);
    parallel_for(n, kRandGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        p[i] = int64_t(uint64_t(lo) + Generator::below(seed, stream, offset + uint64_t(i), range));
    });
    return;
  }
  dispatch_floating(out.dtype(), "random", [&](auto z) {
    using T = decltype(z);
    T* p = out.data<T>();
    parallel_for(n, kRandGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const uint64_t c = offset + uint64_t(i);
        if (kind == RandomKind::Normal) {
          p[i] = T(a + b * Generator::normal(seed, stream, c));
        } else {
          const double u = std::is_same_v<T, float> ? double(Generator::uniform_float(seed, stream, c))
                                                    : Generator::uniform_double(seed, stream, c);
          p[i] = T(a + (b - a) * u);
        }
      }
    });
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
