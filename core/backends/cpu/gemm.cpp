// cpu backend, batched GEMM with transpose flags and batch strides (Eigen inside each chunk).
#include <algorithm>

#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/backends/cpu/eigen.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {
namespace {

template <class T>
void gemm_typed(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t sa,
                const T* B, int64_t sb, T beta, T* C, int64_t sc) {
  using CMap = Eigen::Map<const RowMat<T>>;
  using MMap = Eigen::Map<RowMat<T>>;
  // C_b[r0:r0+nr, c0:c0+nc] for batch entry b. The stored A is K x M when transposed, else M x K.
  auto tile = [&](int64_t b, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    CMap a(A + b * sa, ta ? K : M, ta ? M : K);
    CMap bm(B + b * sb, tb ? N : K, tb ? K : N);
    auto c = MMap(C + b * sc, M, N).block(r0, c0, nr, nc);
    if (!ta && !tb) product(c, a.middleRows(r0, nr), bm.middleCols(c0, nc), alpha, beta);
    else if (!ta && tb) product(c, a.middleRows(r0, nr), bm.middleRows(c0, nc).transpose(), alpha, beta);
    else if (ta && !tb) product(c, a.middleCols(r0, nr).transpose(), bm.middleCols(c0, nc), alpha, beta);
    else product(c, a.middleCols(r0, nr).transpose(), bm.middleRows(c0, nc).transpose(), alpha, beta);
  };
  if (batch <= 0 || M == 0 || N == 0) return;
  const int64_t work = M * N * K;
  // Independent batch entries (each C_b its own block): one chunk per few entries.
  if (batch > 1 && sc >= M * N) {
    parallel_for(batch, grain_for(work, kGemmBatchWork), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) tile(b, 0, M, 0, N);
    });
    return;
  }
  // One matrix at a time (batch == 1, or C shared/overlapping across entries, which accumulate in order):
  // a large product is cut into tiles of kGemmTile rows or columns of C, along its longer side. K is never split.
  int64_t tr = M, tc = N;
  if (work >= kGemmSplitWork) {
    if (M >= N) tr = kGemmTile;
    else tc = kGemmTile;
  }
  const int64_t nrt = (M + tr - 1) / tr, nct = (N + tc - 1) / tc;
  for (int64_t b = 0; b < batch; ++b)
    parallel_for(nrt * nct, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r0 = (t / nct) * tr, c0 = (t % nct) * tc;
        tile(b, r0, std::min(tr, M - r0), c0, std::min(tc, N - c0));
      }
    });
}

}  // namespace

void CpuBackend::gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                      const Tensor& A, int64_t batch_stride_a, const Tensor& B, int64_t batch_stride_b, double beta,
                      Tensor& C, int64_t batch_stride_c) {
  dispatch_floating(C.dtype(), "gemm", [&](auto z) {
    using T = decltype(z);
    gemm_typed<T>(trans_a, trans_b, batch, M, N, K, T(alpha), A.data<T>(), batch_stride_a, B.data<T>(),
                  batch_stride_b, T(beta), C.data<T>(), batch_stride_c);
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
