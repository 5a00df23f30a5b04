// cpu backend (internal header): Eigen, for the files that use it (gemm, conv, lstm_cell), and the one
// matrix product C = alpha op(A) op(B) (+ beta C) shared by gemm.cpp and the per-sample convolutions.
#pragma once

// GCC 12 reports false "may be used uninitialized" warnings inside its own AVX-512 intrinsics headers
// (GCC bug 105593) when Eigen is built with -march=native; silence exactly that, for those headers only.
// (The files that include this one are also built with -Wno-maybe-uninitialized: see CMakeLists.txt.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstdint>

#include "advgrad/core/backends/cpu/cpu_backend.h"  // ADVGRAD_CPU_NS

namespace advgrad::ADVGRAD_CPU_NS {
namespace {  // internal linkage in each including file, as when the backend was one file

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// c = alpha * x * y (+ beta * c); Eigen runs single-threaded (EIGEN_DONT_PARALLELIZE).
template <class T, class C, class X, class Y>
void product(C&& c, const X& x, const Y& y, T alpha, T beta) {
  if (x.cols() == 0) {  // K == 0: the product is zero
    if (beta == T(0)) c.setZero();
    else c *= beta;
    return;
  }
  if (beta == T(0)) {
    c.noalias() = alpha * x * y;  // assignment: old contents (NaN included) never read
  } else {
    if (beta != T(1)) c *= beta;
    c.noalias() += alpha * x * y;
  }
}

// One whole product C = alpha op(A) op(B) + beta C, no tiling: for callers that are already parallel over
// something else (the per-sample convolutions of conv.cpp).
template <class T>
void gemm_single(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta, T* C) {
  using CMap = Eigen::Map<const RowMat<T>>;
  CMap a(A, ta ? K : M, ta ? M : K), b(B, tb ? N : K, tb ? K : N);
  Eigen::Map<RowMat<T>> c(C, M, N);
  if (!ta && !tb) product(c, a, b, alpha, beta);
  else if (!ta && tb) product(c, a, b.transpose(), alpha, beta);
  else if (ta && !tb) product(c, a.transpose(), b, alpha, beta);
  else product(c, a.transpose(), b.transpose(), alpha, beta);
}

}  // namespace
}  // namespace advgrad::ADVGRAD_CPU_NS
