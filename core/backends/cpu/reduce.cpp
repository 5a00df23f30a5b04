// cpu backend, reductions over the middle axis of an [outer, n, inner] view: sum/max/min and arg-max/min.
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {
namespace {

// Fold steps of the reductions. Max/min propagate NaN (like PyTorch): the first NaN seen wins and stays.
struct Plus {
  template <class T> T operator()(T acc, T v) const { return acc + v; }
};
// Whether v replaces the running maximum m (scanning in order): it is larger, or the first NaN.
template <class T> bool beats_max(T v, T m) { return v > m || (is_nan(v) && !is_nan(m)); }
struct MaxNan {
  template <class T> T operator()(T m, T v) const { return beats_max(v, m) ? v : m; }
};
struct MinNan {
  template <class T> T operator()(T m, T v) const { return (v < m || (is_nan(v) && !is_nan(m))) ? v : m; }
};

// dst[o, i] = fold(combine, identity, src[o, 0..n, i]), folding k in increasing order.
template <class T, class Combine>
void reduce_typed(const T* src, int64_t outer, int64_t n, int64_t inner, T* dst, T identity, Combine combine) {
  const int64_t outputs = outer * inner;
  if (outputs <= kSplitMaxOutputs && n >= 2 * kSplitChunk) {
    // Few, long folds (e.g. a full sum): fold fixed pieces of n in parallel, then the pieces in order.
    const int64_t pieces = (n + kSplitChunk - 1) / kSplitChunk;
    std::vector<T> partial(size_t(outputs * pieces));
    parallel_for(outputs * pieces, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t e = j / pieces, p = j % pieces, o = e / inner, i = e % inner;
        const T* s = src + o * n * inner + i;
        T acc = identity;
        for (int64_t k = p * kSplitChunk, end = std::min(n, k + kSplitChunk); k < end; ++k)
          acc = combine(acc, s[k * inner]);
        partial[size_t(j)] = acc;
      }
    });
    for (int64_t e = 0; e < outputs; ++e) {
      T acc = identity;
      for (int64_t p = 0; p < pieces; ++p) acc = combine(acc, partial[size_t(e * pieces + p)]);
      dst[e] = acc;
    }
  } else if (inner == 1) {  // contiguous rows
    parallel_for(outer, grain_for(n, kReduceGrain), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const T* s = src + o * n;
        T acc = identity;
        for (int64_t k = 0; k < n; ++k) acc = combine(acc, s[k]);
        dst[o] = acc;
      }
    });
  } else {  // fold whole rows of a tile of inner columns at once (same per-element order, vectorisable)
    const int64_t tiles = (inner + kReduceTile - 1) / kReduceTile;
    parallel_for(outer * tiles, grain_for(n * kReduceTile, kReduceGrain), [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t o = j / tiles, i0 = (j % tiles) * kReduceTile, i1 = std::min(inner, i0 + kReduceTile);
        T* d = dst + o * inner;
        for (int64_t i = i0; i < i1; ++i) d[i] = identity;
        for (int64_t k = 0; k < n; ++k) {
          const T* s = src + (o * n + k) * inner;
          for (int64_t i = i0; i < i1; ++i) d[i] = combine(d[i], s[i]);
        }
      }
    });
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& dst) {
  auto run = [&](auto z) {
    using T = decltype(z);
    const T* s = src.data<T>();
    T* d = dst.data<T>();
    if constexpr (std::is_floating_point_v<T>) {  // int64 gets here for Sum only
      const T inf = std::numeric_limits<T>::infinity();
      if (op == ReduceOp::Max) return reduce_typed(s, outer, n, inner, d, -inf, MaxNan{});
      if (op == ReduceOp::Min) return reduce_typed(s, outer, n, inner, d, inf, MinNan{});
    }
    reduce_typed(s, outer, n, inner, d, T(0), Plus{});
  };
  if (op == ReduceOp::Sum) dispatch_dtype(src.dtype(), run);
  else dispatch_floating(src.dtype(), "reduce", run);
}

void CpuBackend::arg_reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& idx) {
  dispatch_floating(src.dtype(), "arg_reduce", [&](auto z) {
    using T = decltype(z);
    const T* s = src.data<T>();
    int64_t* out = idx.data<int64_t>();
    const bool is_max = op != ReduceOp::Min;
    parallel_for(outer * inner, grain_for(n, kReduceGrain), [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) {
        const T* p = s + (e / inner) * n * inner + e % inner;
        int64_t arg = 0;
        for (int64_t k = 1; k < n; ++k) {
          const T v = p[k * inner], best = p[arg * inner];
          // Strictly better, or the first NaN: keeps the first extremum; a NaN is never replaced.
          if ((is_max ? v > best : v < best) || (is_nan(v) && !is_nan(best))) arg = k;
        }
        out[e] = arg;
      }
    });
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
