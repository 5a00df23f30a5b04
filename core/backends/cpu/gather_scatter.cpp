// cpu backend, indexing along the middle axis of an [outer, n, inner] view: gather and scatter-add.
#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {

void CpuBackend::gather(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner, Tensor& dst) {
  dispatch_dtype(src.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* s = src.data<T>();
    const int64_t* ix = idx.data<int64_t>();
    T* d = dst.data<T>();
    parallel_for(outer * inner, kElemGrain, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) d[e] = s[((e / inner) * n + ix[e]) * inner + e % inner];
    });
  });
}

void CpuBackend::scatter_add(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                             Tensor& dst) {
  dispatch_dtype(src.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* s = src.data<T>();
    const int64_t* ix = idx.data<int64_t>();
    T* d = dst.data<T>();
    // Source element (o, i) lands in column i of block o: distinct sources never share a target.
    parallel_for(outer * inner, kElemGrain, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) d[((e / inner) * n + ix[e]) * inner + e % inner] += s[e];
    });
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
