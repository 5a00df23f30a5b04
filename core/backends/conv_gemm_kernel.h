// A float GEMM for the convolutions' per-sample products, C (+)= A B, with B read in place.
//
// Why not Eigen here: Eigen copies ("packs") both operands into its own layout on every call, and its
// micro-kernel reached about 120 GFLOP/s on this machine's AVX-512 cores, whose peak is about 215. In a
// convolution, B is a column matrix we have just written ourselves (im2col, or the widened output
// gradient), so it can be laid out as the kernel wants it: rows of B are read directly, three vectors at a
// time (AVX-512: 48 columns), against 8 rows of A (AVX2, SSE: 4) broadcast one value at a time; A is passed
// transposed (K x M), so those values are adjacent. The accumulators stay in registers over a block of K.
// Measured on the zoo's shapes: 1.4-1.9x Eigen's speed (e.g. small_cnn's second convolution 32x196x400:
// 183 vs 127 GFLOP/s).
//
// Summation order: every C element is a sequential sum over k in increasing order, starting from C
// (accumulate) or from 0; blocks of K store the running sum in C and reload it, which is exact, so the
// result does not depend on the blocking or on the thread count. With AVX-512 or AVX2+FMA each step is one
// fused multiply-add; without FMA a multiply and an add (a different rounding, still deterministic).
//
// The kernel is compiled into each copy of the cpu backend (core/backends/cpu/cpu_backend.h): the inline
// namespace, named after the copy, keeps an AVX-512 build of these inline functions from being linked in
// where the baseline one is called.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#ifndef ADVGRAD_CPU_NS
#define ADVGRAD_CPU_NS cpu
#endif

namespace advgrad {
namespace conv_gemm {
inline namespace ADVGRAD_CPU_NS {

// One vector register of floats, and the rows of C per tile: 3 * kRows accumulators, 3 vectors of B and
// one broadcast fit the register file (AVX-512: 32 zmm; AVX and SSE: 16 ymm or xmm). A vector wider
// than the hardware's would live in memory (20x slower, measured on the avx2 and baseline paths).
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
constexpr int kRows = 8;
#elif defined(__AVX__)
constexpr int64_t kLanes = 8;
constexpr int kRows = 4;
#else
constexpr int64_t kLanes = 4;
constexpr int kRows = 4;
#endif
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
constexpr int64_t kBlockK = 256;  // K per block: the B panel (256 x 48 floats) stays in L1/L2
// B must be readable this many floats past its last row's last column (the last tile reads whole vectors).
constexpr int64_t kSlack = kLanes;

inline Vec multiply_add(Vec a, Vec b, Vec c) {
#if defined(__AVX512F__)
  return reinterpret_cast<Vec>(_mm512_fmadd_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b),
                                               reinterpret_cast<__m512>(c)));
#elif defined(__FMA__)  // the copies are built with -ffp-contract=off: no implicit FMA
  return reinterpret_cast<Vec>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                                               reinterpret_cast<__m256>(c)));
#else
  return a * b + c;
#endif
}

// One vector of B, unaligned. With AVX2 alone, GCC turned the memcpy into two 16-byte stores and a 32-byte
// reload per vector (a store-forwarding stall every k: the avx2 path ran slower than the SSE one).
inline Vec load(const float* p) {
#if defined(__AVX__) && !defined(__AVX512F__)
  return reinterpret_cast<Vec>(_mm256_loadu_ps(p));
#else
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
#endif
}

// C[MR x (kLanes*NV)] at c (+)= sum over k < K of at[k*M + r] * b[k*ldb + j]. The last vector holds `last`
// valid columns (1..16): C is read and written only there; B is read in whole vectors.
template <int MR, int NV>
inline void tile(int64_t K, const float* at, int64_t M, const float* b, int64_t ldb, float* c, int64_t ldc,
                 bool accumulate, int last) {
  Vec sum[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      sum[r][v] = Vec{};
      if (accumulate) std::memcpy(&sum[r][v], c + r * ldc + v * kLanes, sizeof(float) * (v == NV - 1 ? last : kLanes));
    }
  for (int64_t k = 0; k < K; ++k) {
    Vec bk[NV];
    for (int v = 0; v < NV; ++v) bk[v] = load(b + k * ldb + v * kLanes);
    const float* ak = at + k * M;
    for (int r = 0; r < MR; ++r) {
      const Vec a = Vec{} + ak[r];
      for (int v = 0; v < NV; ++v) sum[r][v] = multiply_add(a, bk[v], sum[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v)
      std::memcpy(c + r * ldc + v * kLanes, &sum[r][v], sizeof(float) * (v == NV - 1 ? last : kLanes));
}

// Columns j .. j+47 (or up to N) of MR rows.
template <int MR>
inline void tile_at(int64_t j, int64_t N, int64_t K, const float* at, int64_t M, const float* b, int64_t ldb,
                    float* c, int64_t ldc, bool accumulate) {
  const int64_t rest = N - j;
  b += j, c += j;
  if (rest > 2 * kLanes) tile<MR, 3>(K, at, M, b, ldb, c, ldc, accumulate, int(std::min(rest - 2 * kLanes, kLanes)));
  else if (rest > kLanes) tile<MR, 2>(K, at, M, b, ldb, c, ldc, accumulate, int(rest - kLanes));
  else tile<MR, 1>(K, at, M, b, ldb, c, ldc, accumulate, int(rest));
}

// C[M x N] = A[M x K] B[K x N] (+ C when accumulate). at is A transposed (K x M, contiguous); B and C
// are row-major with row strides ldb and ldc; B readable kSlack floats past its end.
inline void gemm(int64_t M, int64_t N, int64_t K, const float* at, const float* b, int64_t ldb, float* c,
                 int64_t ldc, bool accumulate) {
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.f);
    return;
  }
  for (int64_t j = 0; j < N; j += 3 * kLanes)
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t kc = std::min(kBlockK, K - k0);
      const bool acc = accumulate || k0 > 0;
      const float* a = at + k0 * M;
      const float* bk = b + k0 * ldb;
      int64_t i = 0;
      for (; i + kRows <= M; i += kRows) tile_at<kRows>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc);
      switch (M - i) {  // the last rows, fewer than kRows
        case 1: tile_at<1>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        case 2: tile_at<2>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        case 3: tile_at<3>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        case 4: tile_at<4>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        case 5: tile_at<5>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        case 6: tile_at<6>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        case 7: tile_at<7>(j, N, kc, a + i, M, bk, ldb, c + i * ldc, ldc, acc); break;
        default: break;
      }
    }
}

}  // namespace ADVGRAD_CPU_NS
}  // namespace conv_gemm
}  // namespace advgrad
