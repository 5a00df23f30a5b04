// The default CPU backend: Eigen for GEMM, parallel_for (OpenMP) over disjoint outputs for the rest.
//
// Every kernel gives the results of the reference backend (core/backends/reference.cpp), up to float
// rounding where the order of a sum differs. Determinism rules followed throughout:
// - work is cut into chunks whose size is a function of the problem shape (the grains below), never of
//   the thread count, and each chunk writes its own outputs;
// - a sum is accumulated sequentially inside one chunk; when a long sum is split, the partial sums are
//   combined in index order on one thread. No float atomics, no OpenMP reductions.

// GCC 12 reports false "may be used uninitialized" warnings inside its own AVX-512 intrinsics headers
// (GCC bug 105593) when Eigen is built with -march=native; silence exactly that, for those headers only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/backend.h"
#include "core/backends/conv_gemm_kernel.h"
#include "core/parallel.h"
#include "core/storage.h"

namespace advgrad {
namespace {

// ---- work sizes (all constants: chunking depends on the problem shape only) ----
constexpr int64_t kElemGrain = 1 << 15;   // elements per chunk of an element-wise map
constexpr int64_t kReduceGrain = 1 << 14; // input elements per chunk of a reduction / softmax
constexpr int64_t kReduceTile = 256;      // output columns per chunk when reducing with inner > 1
constexpr int64_t kSplitChunk = 4096;     // length of a partial sum when one long sum is split
constexpr int64_t kSplitMaxOutputs = 16;  // split the reduced axis only when there are this few outputs
constexpr int64_t kPlaneWork = 1 << 14;   // multiply-adds per chunk of conv/pool planes
constexpr int64_t kGemmSplitWork = 1 << 20;  // M*N*K above which one matrix is cut into output tiles
constexpr int64_t kGemmTile = 64;            // rows or columns of C per tile
constexpr int64_t kGemmBatchWork = 1 << 16;  // M*N*K per chunk of a batched GEMM
constexpr int64_t kRandGrain = 4096;         // elements per chunk of a random fill
constexpr int64_t kConvSampleWork = 1 << 20; // multiply-adds per chunk of samples of a convolution
constexpr int64_t kConvWeightGroup = 16;     // samples per partial sum of a convolution's weight gradient
constexpr int64_t kConvWideRatio = 10;       // widened input-gradient GEMM: extra MACs per saved col2im add

// Items per chunk so that a chunk holds about `target` units of work.
int64_t grain_for(int64_t work_per_item, int64_t target) {
  return std::max<int64_t>(1, target / std::max<int64_t>(1, work_per_item));
}

// ============================== element-wise driver ==============================

template <size_t N>
using Offsets = std::array<int64_t, N>;

// Calls row(off, step, count) over runs of `count` elements, where off[k]/step[k] are operand k's element
// offset (from raw_data()) and stride along the run. When every operand is contiguous the tensor is one
// flat run cut into fixed chunks; otherwise dims are coalesced and each run is one innermost row.
template <size_t N, class Row>
void for_each_run(const Shape& shape, const std::array<const Tensor*, N>& ops, Row&& row) {
  const int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  bool contiguous = true;
  for (const Tensor* t : ops) contiguous = contiguous && t->is_contiguous();
  if (contiguous) {
    parallel_for(numel, kElemGrain, [&](int64_t b, int64_t e) {
      Offsets<N> off, step;
      off.fill(b);
      step.fill(1);
      row(off, step, e - b);
    });
    return;
  }
  // Drop size-1 dims; merge a dim into the previous (outer) one when both are adjacent in memory for
  // every operand, so that e.g. a broadcast bias over [N,C,H,W] walks runs of H*W.
  std::vector<int64_t> size;
  std::array<std::vector<int64_t>, N> stride;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !size.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = stride[k].back() == ops[k]->strides()[d] * shape[d];
    if (!merge) size.push_back(1);
    size.back() *= shape[d];
    for (size_t k = 0; k < N; ++k) {
      if (merge) stride[k].back() = ops[k]->strides()[d];
      else stride[k].push_back(ops[k]->strides()[d]);
    }
  }
  const size_t nd = size.size();  // >= 1: an all-size-1 shape is contiguous for every operand
  const int64_t inner = size.back(), rows = numel / inner;
  Offsets<N> step;
  for (size_t k = 0; k < N; ++k) step[k] = stride[k].back();
  parallel_for(rows, grain_for(inner, kElemGrain), [&](int64_t r0, int64_t r1) {
    // Multi-index of row r0 over the outer dims, then an odometer from there.
    std::vector<int64_t> idx(nd, 0);
    Offsets<N> off{};
    for (int64_t r = r0, d = int64_t(nd) - 2; d >= 0; --d) {
      idx[size_t(d)] = r % size[size_t(d)];
      r /= size[size_t(d)];
      for (size_t k = 0; k < N; ++k) off[k] += idx[size_t(d)] * stride[k][size_t(d)];
    }
    for (int64_t r = r0; r < r1; ++r) {
      row(off, step, inner);
      for (int64_t d = int64_t(nd) - 2; d >= 0; --d) {
        const size_t u = size_t(d);
        for (size_t k = 0; k < N; ++k) off[k] += stride[k][u];
        if (++idx[u] < size[u]) break;
        for (size_t k = 0; k < N; ++k) off[k] -= stride[k][u] * size[u];
        idx[u] = 0;
      }
    }
  });
}

// Typed maps over one shape. The unit-stride branch is a plain loop the compiler can vectorise.
template <class D, class F>
void map0(Tensor& dst, F f) {
  D* d = dst.data<D>();
  for_each_run<1>(dst.shape(), {&dst}, [&](const Offsets<1>& o, const Offsets<1>& s, int64_t n) {
    D* pd = d + o[0];
    if (s[0] == 1) for (int64_t k = 0; k < n; ++k) pd[k] = f();
    else for (int64_t k = 0; k < n; ++k) pd[k * s[0]] = f();
  });
}

template <class D, class S, class F>
void map1(const Tensor& src, Tensor& dst, F f) {
  const S* x = src.data<S>();
  D* d = dst.data<D>();
  for_each_run<2>(dst.shape(), {&dst, &src}, [&](const Offsets<2>& o, const Offsets<2>& s, int64_t n) {
    D* pd = d + o[0];
    const S* px = x + o[1];
    if (s[0] == 1 && s[1] == 1) for (int64_t k = 0; k < n; ++k) pd[k] = f(px[k]);
    else if (s[0] == 1 && s[1] == 0) std::fill(pd, pd + n, f(*px));  // expanded source
    else for (int64_t k = 0; k < n; ++k) pd[k * s[0]] = f(px[k * s[1]]);
  });
}

template <class T, class F>
void map2(const Tensor& a, const Tensor& b, Tensor& dst, F f) {
  const T *x = a.data<T>(), *y = b.data<T>();
  T* d = dst.data<T>();
  for_each_run<3>(dst.shape(), {&dst, &a, &b}, [&](const Offsets<3>& o, const Offsets<3>& s, int64_t n) {
    T* pd = d + o[0];
    const T *px = x + o[1], *py = y + o[2];
    // Unit strides, or one operand constant along the run (a broadcast bias or scale): vectorisable loops.
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      for (int64_t k = 0; k < n; ++k) pd[k] = f(px[k], py[k]);
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
      const T c = *py;
      for (int64_t k = 0; k < n; ++k) pd[k] = f(px[k], c);
    } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
      const T c = *px;
      for (int64_t k = 0; k < n; ++k) pd[k] = f(c, py[k]);
    } else {
      for (int64_t k = 0; k < n; ++k) pd[k * s[0]] = f(px[k * s[1]], py[k * s[2]]);
    }
  });
}

template <class T>
void where_typed(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& dst) {
  const T *c = cond.data<T>(), *x = a.data<T>(), *y = b.data<T>();
  T* d = dst.data<T>();
  for_each_run<4>(dst.shape(), {&dst, &cond, &a, &b}, [&](const Offsets<4>& o, const Offsets<4>& s, int64_t n) {
    for (int64_t k = 0; k < n; ++k)
      d[o[0] + k * s[0]] = c[o[1] + k * s[1]] != T(0) ? x[o[2] + k * s[2]] : y[o[3] + k * s[3]];
  });
}

// ============================== scalar functions ==============================

template <class T> bool is_nan(T v) { return v != v; }  // false for int64

// Fold steps of the reductions. Max/min propagate NaN (like PyTorch): the first NaN seen wins and stays.
struct Plus {
  template <class T> T operator()(T acc, T v) const { return acc + v; }
};
// Whether v replaces the running maximum m (scanning in order): it is larger, or the first NaN.
template <class T> bool beats_max(T v, T m) { return v > m || (is_nan(v) && !is_nan(m)); }
// Max-pool's rule differs for NaN (PyTorch's CPU kernel: `val > maxval || isnan(val)`): the LAST NaN of a
// window wins, so max_pool2d's index (and its gradient) lands where PyTorch's does.
template <class T> bool beats_pool_max(T v, T m) { return v > m || is_nan(v); }
struct MaxNan {
  template <class T> T operator()(T m, T v) const { return beats_max(v, m) ? v : m; }
};
struct MinNan {
  template <class T> T operator()(T m, T v) const { return (v < m || (is_nan(v) && !is_nan(m))) ? v : m; }
};

template <class T> T divide(T x, T y) { return x / y; }
// Integer division truncates (C++ semantics); x/0 gives 0 and INT64_MIN/-1 wraps instead of trapping.
int64_t divide(int64_t x, int64_t y) {
  if (y == 0) return 0;
  if (y == -1) return int64_t(0 - uint64_t(x));
  return x / y;
}

template <class T> T power(T x, T y) { return std::pow(x, y); }
// Exact integer power (wrapping on overflow); a negative exponent gives 1/x^|e| truncated (0 for x = 0).
int64_t power(int64_t x, int64_t e) {
  if (e < 0) return x == 1 ? 1 : x == -1 ? (e % 2 ? -1 : 1) : 0;
  uint64_t r = 1, b = uint64_t(x);
  for (; e > 0; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return int64_t(r);
}

template <class T>
void unary_typed(UnaryOp op, const Tensor& src, Tensor& dst, T a, T b) {
  auto run = [&](auto f) { map1<T, T>(src, dst, f); };
  switch (op) {
    case UnaryOp::Neg: return run([](T x) { return -x; });
    case UnaryOp::Exp: return run([](T x) { return std::exp(x); });
    case UnaryOp::Log: return run([](T x) { return std::log(x); });
    case UnaryOp::Sqrt: return run([](T x) { return std::sqrt(x); });
    case UnaryOp::Abs: return run([](T x) { return std::abs(x); });
    case UnaryOp::Tanh: return run([](T x) { return std::tanh(x); });
    case UnaryOp::Sigmoid:  // never exp of a large positive number
      return run([](T x) {
        if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
        T e = std::exp(x);
        return e / (T(1) + e);
      });
    // NaN and -0 pass (PyTorch); `x < 0 ? 0 : x` is still one vector max (maxps(0, x) keeps x on NaN).
    case UnaryOp::Relu: return run([](T x) { return x < T(0) ? T(0) : x; });
    case UnaryOp::Sign: return run([](T x) { return T((x > T(0)) - (x < T(0))); });
    case UnaryOp::Square: return run([](T x) { return x * x; });
    case UnaryOp::Reciprocal: return run([](T x) { return T(1) / x; });
    case UnaryOp::LeakyRelu: return run([a](T x) { return x > T(0) ? x : a * x; });
    case UnaryOp::PowScalar: return run([a](T x) { return std::pow(x, a); });
    case UnaryOp::Clamp: return run([a, b](T x) { return std::min(std::max(x, a), b); });
    case UnaryOp::AddScalar: return run([a](T x) { return x + a; });
    case UnaryOp::MulScalar: return run([a](T x) { return x * a; });
    case UnaryOp::Affine: return run([a, b](T x) { return a * x + b; });
  }
}

template <class T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& dst) {
  auto run = [&](auto f) { map2<T>(a, b, dst, f); };
  switch (op) {
    case BinaryOp::Add: return run([](T x, T y) { return x + y; });
    case BinaryOp::Sub: return run([](T x, T y) { return x - y; });
    case BinaryOp::Mul: return run([](T x, T y) { return x * y; });
    case BinaryOp::Div: return run([](T x, T y) { return divide(x, y); });
    case BinaryOp::Pow: return run([](T x, T y) { return power(x, y); });
    // NaN propagates (as in PyTorch); a tie returns the first operand.
    case BinaryOp::Minimum: return run([](T x, T y) { return is_nan(x) ? x : is_nan(y) ? y : y < x ? y : x; });
    case BinaryOp::Maximum: return run([](T x, T y) { return is_nan(x) ? x : is_nan(y) ? y : y > x ? y : x; });
    case BinaryOp::Eq: return run([](T x, T y) { return T(x == y); });
    case BinaryOp::Ne: return run([](T x, T y) { return T(x != y); });
    case BinaryOp::Lt: return run([](T x, T y) { return T(x < y); });
    case BinaryOp::Le: return run([](T x, T y) { return T(x <= y); });
    case BinaryOp::Gt: return run([](T x, T y) { return T(x > y); });
    case BinaryOp::Ge: return run([](T x, T y) { return T(x >= y); });
    case BinaryOp::PassPositive: return run([](T x, T y) { return y <= T(0) ? T(0) : x; });  // NaN y passes x
  }
}

// ============================== reductions ==============================

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

// ============================== GEMM ==============================

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

// One whole product C = alpha op(A) op(B) + beta C, no tiling: for callers that are already parallel over
// something else (the per-sample convolutions below).
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

// ============================== convolution and pooling ==============================

// Calls f(p0, p1) over chunks of the batch*channels planes; `work` is the cost of one plane.
template <class F>
void for_planes(const Conv2dGeometry& g, int64_t work, F&& f) {
  parallel_for(g.batch * g.channels, grain_for(work, kPlaneWork), f);
}

// A buffer from the storage block cache (no page faults in a steady loop), released on scope exit.
template <class T>
struct Scratch {
  explicit Scratch(int64_t n) : bytes(size_t(n) * sizeof(T)), p(static_cast<T*>(storage_allocate(bytes))) {}
  ~Scratch() { storage_release(p, bytes); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  size_t bytes;
  T* p;
};

// A plane with its zero padding written out (Hp x Wp), so that im2col and col2im walk every window tap
// without bounds checks: each output row is one fixed-length (vectorised) copy or add. Without padding the
// plane itself is used in place, unless `slack` extra elements past the padded plane are asked for (room
// for runs that overhang its end; they always go to the buffer).
template <class T>
class PaddedPlane {
 public:
  explicit PaddedPlane(const Conv2dGeometry& g, int64_t slack = 0)
      : g_(g), padded_(g.pad_h > 0 || g.pad_w > 0 || slack > 0), ld_(g.width + 2 * g.pad_w),
        buf_(padded_ ? size_t((g.height + 2 * g.pad_h) * ld_ + slack) : 0, T(0)) {}
  int64_t ld() const { return padded_ ? ld_ : g_.width; }
  // The padded view of plane xp (copied in when padding is used).
  const T* load(const T* xp) {
    if (!padded_) return xp;
    for (int64_t h = 0; h < g_.height; ++h)
      std::copy(xp + h * g_.width, xp + (h + 1) * g_.width, buf_.data() + (h + g_.pad_h) * ld_ + g_.pad_w);
    return buf_.data();
  }
  // A zeroed padded plane to accumulate into; store() copies its interior out to xp.
  T* zeroed(T* xp) {
    if (!padded_) {
      std::fill(xp, xp + g_.height * g_.width, T(0));
      return xp;
    }
    std::fill(buf_.begin(), buf_.end(), T(0));
    return buf_.data();
  }
  void store(T* xp) const {
    if (!padded_) return;
    for (int64_t h = 0; h < g_.height; ++h) {
      const T* src = buf_.data() + (h + g_.pad_h) * ld_ + g_.pad_w;
      std::copy(src, src + g_.width, xp + h * g_.width);
    }
  }

 private:
  const Conv2dGeometry& g_;
  bool padded_;
  int64_t ld_;
  std::vector<T> buf_;
};

// d[0, n) = s[0, n) for the short rows of im2col (14 or 28 elements in the zoo): whole 32-byte moves, the
// last one overlapping the one before, instead of a vector loop that leaves most of such a row to a scalar
// remainder. d and s do not overlap.
template <class T>
inline void copy_row(T* d, const T* s, int64_t n) {
  constexpr int64_t V = 32 / int64_t(sizeof(T));
  if (n < V) {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    return;
  }
  int64_t i = 0;
  for (; i + V <= n; i += V) std::memcpy(d + i, s + i, 32);
  if (i < n) std::memcpy(d + n - V, s + n - V, 32);
}

// Plane q = (b, c) of x feeds rows c*KK..(c+1)*KK of sample b in cols, i.e. the block at q*KK*P: planes are
// independent in both directions, so im2col and col2im run in parallel over them.
template <class T>
void im2col_typed(const T* x, const Conv2dGeometry& g, T* cols) {
  const int64_t H = g.height, W = g.width, OH = g.out_h(), OW = g.out_w(), P = OH * OW;
  const int64_t KK = g.kernel_h * g.kernel_w, sh = g.stride_h, sw = g.stride_w;
  for_planes(g, KK * P, [&](int64_t q0, int64_t q1) {
    PaddedPlane<T> plane(g);
    const int64_t ld = plane.ld();
    for (int64_t q = q0; q < q1; ++q) {
      const T* pp = plane.load(x + q * H * W);
      T* row = cols + q * KK * P;
      for (int64_t kh = 0; kh < g.kernel_h; ++kh)
        for (int64_t kw = 0; kw < g.kernel_w; ++kw, row += P)
          for (int64_t oh = 0; oh < OH; ++oh) {
            const T* src = pp + (oh * sh + kh * g.dilation_h) * ld + kw * g.dilation_w;
            T* d = row + oh * OW;
            if (sw == 1)
              copy_row(d, src, OW);
            else
              for (int64_t ow = 0; ow < OW; ++ow) d[ow] = src[ow * sw];
          }
    }
  });
}

template <class T>
void col2im_typed(const T* cols, const Conv2dGeometry& g, T* x) {
  const int64_t H = g.height, W = g.width, OH = g.out_h(), OW = g.out_w(), P = OH * OW;
  const int64_t KK = g.kernel_h * g.kernel_w, sh = g.stride_h, sw = g.stride_w;
  for_planes(g, KK * P, [&](int64_t q0, int64_t q1) {
    PaddedPlane<T> plane(g);
    const int64_t ld = plane.ld();
    for (int64_t q = q0; q < q1; ++q) {
      T* xp = x + q * H * W;
      T* pp = plane.zeroed(xp);
      const T* row = cols + q * KK * P;
      // Sequential within the plane, in (kh, kw, oh, ow) order: every pixel receives its terms in the same
      // order as in the reference (terms landing in the padding are dropped by store()).
      for (int64_t kh = 0; kh < g.kernel_h; ++kh)
        for (int64_t kw = 0; kw < g.kernel_w; ++kw, row += P)
          for (int64_t oh = 0; oh < OH; ++oh) {
            T* dst = pp + (oh * sh + kh * g.dilation_h) * ld + kw * g.dilation_w;
            const T* s = row + oh * OW;
            if (sw == 1)
              for (int64_t ow = 0; ow < OW; ++ow) dst[ow] += s[ow];
            else
              for (int64_t ow = 0; ow < OW; ++ow) dst[ow * sw] += s[ow];
          }
      plane.store(xp);
    }
  });
}

// ---- whole convolutions, one sample at a time ----
// Each chunk of samples builds one sample's columns (channels*KK x P) at a time in its own buffer and uses
// them at once, while they are in cache, instead of writing the whole batch's columns to memory and reading
// them back (80 MB for madry_cnn's second convolution at batch 128). Samples are independent, so chunks of
// them run in parallel; the weight gradient sums fixed groups of kConvWeightGroup samples, then the groups
// in order, so its summation order depends on the batch size only.

struct ConvSizes {
  int64_t O, CKK, L, CHW;
  Conv2dGeometry one;  // the geometry of a single sample
};

ConvSizes conv_sizes(const Conv2dGeometry& g, int64_t O) {
  ConvSizes z{O, g.channels * g.kernel_h * g.kernel_w, g.out_h() * g.out_w(), g.channels * g.height * g.width, g};
  z.one.batch = 1;
  return z;
}

// C[M x N] = A B (+ C when accumulate) for a per-sample convolution product whose B is one of our own
// buffers (with conv_gemm::kSlack room past its end, contiguous rows of N). float goes to conv_gemm's
// kernel, which takes A transposed (`at`, K x M); double to Eigen, which takes A as stored in `a`
// (transposed when ta).
template <class T>
void column_product(int64_t M, int64_t N, int64_t K, const T* at, bool ta, const T* a, const T* b, T* c,
                    bool accumulate) {
  if constexpr (std::is_same_v<T, float>)
    conv_gemm::gemm(M, N, K, at, b, N, c, N, accumulate);
  else
    gemm_single<T>(ta, false, M, N, K, T(1), a, b, accumulate ? T(1) : T(0), c);
}

template <class T>
void conv2d_typed(const T* x, const T* w, const T* bias, const Conv2dGeometry& g, int64_t O, T* out) {
  const ConvSizes z = conv_sizes(g, O);
  // The weights transposed ([C*KK, O]) for the float kernel (see column_product).
  constexpr bool f32 = std::is_same_v<T, float>;
  Scratch<T> wt(f32 ? z.CKK * z.O : 0);
  if (f32)
    for (int64_t o = 0; o < z.O; ++o)
      for (int64_t k = 0; k < z.CKK; ++k) wt.p[k * z.O + o] = w[o * z.CKK + k];
  parallel_for(g.batch, grain_for(z.O * z.CKK * z.L, kConvSampleWork), [&](int64_t n0, int64_t n1) {
    Scratch<T> cols(z.CKK * z.L + conv_gemm::kSlack);
    for (int64_t n = n0; n < n1; ++n) {
      im2col_typed(x + n * z.CHW, z.one, cols.p);
      T* o = out + n * z.O * z.L;
      if (bias)  // start from the bias; the GEMM accumulates onto it
        for (int64_t c = 0; c < z.O; ++c) std::fill(o + c * z.L, o + (c + 1) * z.L, bias[c]);
      column_product<T>(z.O, z.L, z.CKK, wt.p, false, w, cols.p, o, bias != nullptr);
    }
  });
}

template <class T>
void conv2d_backward_input_typed(const T* gout, const T* w, const Conv2dGeometry& g, int64_t O, T* gx) {
  const ConvSizes z = conv_sizes(g, O);
  const int64_t KW = g.kernel_w, KK = g.kernel_h * KW, ldp = g.width + 2 * g.pad_w;
  const int64_t OH = g.out_h(), OW = g.out_w(), H = g.height, W = g.width, Lp = OH * ldp;
  // Unit stride and dilation (the zoo's convolutions): the gradient goes into the GEMM with each output row
  // widened to the padded row length (zeros in the extra columns), so every tap's columns land on the
  // padded plane as one contiguous run of OH * ldp elements instead of OH short rows. The extra terms are
  // exact zeros (x + 0 == x: sums start at +0 and are never -0), so each pixel gets the same terms in the
  // same (kh, kw) order as col2im. An infinite or NaN weight would turn those zeros into NaN: then the
  // general path below is taken, as it is when the widened GEMM would cost more than col2im saves (many
  // output channels over a narrow image: madry_cnn's second convolution measured no faster).
  bool unit = g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 &&
              z.O * (Lp - z.L) <= kConvWideRatio * z.L;
  for (int64_t i = 0; unit && i < z.O * z.CKK; ++i) unit = std::isfinite(w[i]);
  if (!unit) {
    parallel_for(g.batch, grain_for(z.O * z.CKK * z.L, kConvSampleWork), [&](int64_t n0, int64_t n1) {
      Scratch<T> dcols(z.CKK * z.L), gn(z.O * z.L + conv_gemm::kSlack);
      for (int64_t n = n0; n < n1; ++n) {
        const T* go = gout + n * z.O * z.L;
        std::copy(go, go + z.O * z.L, gn.p);  // into a buffer with the kernel's slack
        // W^T dout_n; A = W^T transposed is w as stored
        column_product<T>(z.CKK, z.L, z.O, w, true, w, gn.p, dcols.p, false);
        col2im_typed(dcols.p, z.one, gx + n * z.CHW);
      }
    });
    return;
  }
  parallel_for(g.batch, grain_for(z.O * z.CKK * Lp, kConvSampleWork), [&](int64_t n0, int64_t n1) {
    Scratch<T> wide(z.O * Lp + conv_gemm::kSlack), dcols(z.CKK * Lp);
    PaddedPlane<T> plane(z.one, KW);  // slack: the last tap's run overhangs the padded plane by KW - 2
    std::fill(wide.p, wide.p + z.O * Lp, T(0));  // the extra columns stay 0
    for (int64_t n = n0; n < n1; ++n) {
      const T* gn = gout + n * z.O * z.L;
      for (int64_t r = 0; r < z.O * OH; ++r) copy_row(wide.p + r * ldp, gn + r * OW, OW);
      column_product<T>(z.CKK, Lp, z.O, w, true, w, wide.p, dcols.p, false);  // W^T dout_n, widened
      for (int64_t c = 0; c < g.channels; ++c) {
        T* xp = gx + n * z.CHW + c * H * W;
        T* pp = plane.zeroed(xp);
        for (int64_t t = 0; t < KK; ++t) {
          const T* __restrict src = dcols.p + (c * KK + t) * Lp;
          T* __restrict dst = pp + (t / KW) * ldp + t % KW;
          for (int64_t i = 0; i < Lp; ++i) dst[i] += src[i];
        }
        plane.store(xp);
      }
    }
  });
}

template <class T>
void conv2d_backward_weight_typed(const T* gout, const T* x, const Conv2dGeometry& g, int64_t O, T* gw) {
  const ConvSizes z = conv_sizes(g, O);
  const int64_t groups = (g.batch + kConvWeightGroup - 1) / kConvWeightGroup, WN = z.O * z.CKK;
  // One group writes straight into gw; several write partial sums, added below in group order.
  Scratch<T> partial(groups > 1 ? groups * WN : 0);
  parallel_for(groups, 1, [&](int64_t q0, int64_t q1) {
    Scratch<T> cols(z.CKK * z.L);
    for (int64_t q = q0; q < q1; ++q) {
      T* acc = groups > 1 ? partial.p + q * WN : gw;
      const int64_t n_end = std::min(g.batch, (q + 1) * kConvWeightGroup);
      for (int64_t n = q * kConvWeightGroup; n < n_end; ++n) {
        im2col_typed(x + n * z.CHW, z.one, cols.p);
        const T beta = n == q * kConvWeightGroup ? T(0) : T(1);
        gemm_single<T>(false, true, z.O, z.CKK, z.L, T(1), gout + n * z.O * z.L, cols.p, beta, acc);  // dout_n cols_n^T
      }
    }
  });
  if (groups > 1)
    parallel_for(WN, kElemGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T s = partial.p[i];
        for (int64_t q = 1; q < groups; ++q) s += partial.p[q * WN + i];
        gw[i] = s;
      }
    });
}

// Calls f(pos) for each input position pos = ih*width + iw inside the window of output (oh, ow),
// in (kh, kw) order; padding positions are skipped.
template <class F>
void for_window(const Conv2dGeometry& g, int64_t oh, int64_t ow, F&& f) {
  for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
    const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dilation_h;
    if (ih < 0 || ih >= g.height) continue;
    for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
      const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dilation_w;
      if (iw >= 0 && iw < g.width) f(ih * g.width + iw);
    }
  }
}

// The common 2x2, stride 2, no padding window (every CNN in the zoo): the four taps read directly, in the
// same (kh, kw) order and with the same first-maximum/NaN rule as the general path. Each row pair is done
// with plain comparisons that also note whether a NaN was seen; only then is it redone with the exact
// scalar rule (beats_pool_max: the last NaN of the window wins). out/idx point at the output row; base = 2*oh*W.

// Plain comparisons, one output at a time (double, and compilers without vector shuffles).
template <class T>
bool pool_row_pair_plain(const T* r0, const T* r1, int64_t W, int64_t OW, int64_t base, T* out, int64_t* idx) {
  int nan = 0;
  for (int64_t ow = 0; ow < OW; ++ow) {
    const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    nan |= int(a != a) | int(b != b) | int(c != c) | int(d != d);
    T best = a;
    int64_t off = 0;
    off = b > best ? 1 : off, best = b > best ? b : best;
    off = c > best ? W : off, best = c > best ? c : best;
    off = d > best ? W + 1 : off, best = d > best ? d : best;
    out[ow] = best;
    idx[ow] = base + 2 * ow + off;
  }
  return nan != 0;
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector) && __has_builtin(__builtin_convertvector)
#define ADVGRAD_POOL_SHUFFLE 1
#endif
#endif

#ifdef ADVGRAD_POOL_SHUFFLE
// float: L outputs at once (GCC/Clang vector types). The even and odd columns of 2L inputs are separated
// with two shuffles, which the compiler cannot find on its own for the stride-2 reads of the loop above.
template <int L> struct PoolVectors;
template <> struct PoolVectors<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
  typedef int64_t X __attribute__((vector_size(64)));
  static F even(F p, F q) { return __builtin_shufflevector(p, q, 0, 2, 4, 6, 8, 10, 12, 14); }
  static F odd(F p, F q) { return __builtin_shufflevector(p, q, 1, 3, 5, 7, 9, 11, 13, 15); }
};
template <> struct PoolVectors<4> {
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
  typedef int64_t X __attribute__((vector_size(32)));
  static F even(F p, F q) { return __builtin_shufflevector(p, q, 0, 2, 4, 6); }
  static F odd(F p, F q) { return __builtin_shufflevector(p, q, 1, 3, 5, 7); }
};
template <int L>
struct PoolLanes : PoolVectors<L> {
  using F = typename PoolVectors<L>::F;
  using I = typename PoolVectors<L>::I;
  using X = typename PoolVectors<L>::X;
  using PoolVectors<L>::even;
  using PoolVectors<L>::odd;
  // Outputs ow .. ow+L-1 of the row pair (reads inputs 2*ow .. 2*ow+2L-1 of both rows).
  static void block(const float* r0, const float* r1, int64_t W, int64_t ow, int64_t base, float* out,
                    int64_t* idx, I& nan) {
    F p0, p1, q0, q1;
    std::memcpy(&p0, r0 + 2 * ow, sizeof(F));
    std::memcpy(&p1, r0 + 2 * ow + L, sizeof(F));
    std::memcpy(&q0, r1 + 2 * ow, sizeof(F));
    std::memcpy(&q1, r1 + 2 * ow + L, sizeof(F));
    const F a = even(p0, p1), b = odd(p0, p1), c = even(q0, q1), d = odd(q0, q1);
    nan |= (a != a) | (b != b) | (c != c) | (d != d);
    F best = a;
    I off = I{}, m = b > best;  // off: the winner's position relative to tap (0, 0)
    best = m ? b : best, off = m ? I{} + 1 : off;
    m = c > best, best = m ? c : best, off = m ? I{} + int32_t(W) : off;
    m = d > best, best = m ? d : best, off = m ? I{} + int32_t(W + 1) : off;
    X pos = __builtin_convertvector(off, X);
    for (int i = 0; i < L; ++i) pos[i] += base + 2 * (ow + i);
    std::memcpy(out + ow, &best, sizeof(F));
    std::memcpy(idx + ow, &pos, sizeof(X));
  }
  // The whole row in blocks of L; the last block overlaps the one before (same values rewritten).
  static bool row(const float* r0, const float* r1, int64_t W, int64_t OW, int64_t base, float* out,
                  int64_t* idx) {
    I nan = I{};
    int64_t ow = 0;
    for (; ow + L <= OW; ow += L) block(r0, r1, W, ow, base, out, idx, nan);
    if (ow < OW) block(r0, r1, W, OW - L, base, out, idx, nan);
    int any = 0;
    for (int i = 0; i < L; ++i) any |= nan[i];
    return any != 0;
  }
};
#endif

template <class T>
bool pool_row_pair_fast(const T* r0, const T* r1, int64_t W, int64_t OW, int64_t base, T* out, int64_t* idx) {
#ifdef ADVGRAD_POOL_SHUFFLE
  if constexpr (std::is_same_v<T, float>) {
    if (W < (int64_t(1) << 30)) {  // the lanes hold offsets up to W + 1 as int32
      if (OW >= 8) return PoolLanes<8>::row(r0, r1, W, OW, base, out, idx);
      if (OW >= 4) return PoolLanes<4>::row(r0, r1, W, OW, base, out, idx);
    }
  }
#endif
  return pool_row_pair_plain(r0, r1, W, OW, base, out, idx);
}

template <class T>
void max_pool_2x2_typed(const T* x, const Conv2dGeometry& g, T* out, int64_t* idx) {
  const int64_t W = g.width, HW = g.height * g.width, OH = g.out_h(), OW = g.out_w();
  for_planes(g, OH * OW * 4, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q)
      for (int64_t oh = 0; oh < OH; ++oh) {
        const T* r0 = x + q * HW + 2 * oh * W;
        const T* r1 = r0 + W;
        T* op = out + q * OH * OW + oh * OW;
        int64_t* ip = idx + q * OH * OW + oh * OW;
        if (!pool_row_pair_fast(r0, r1, W, OW, 2 * oh * W, op, ip)) continue;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t pos[4] = {2 * ow, 2 * ow + 1, W + 2 * ow, W + 2 * ow + 1};
          const T v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
          int j_best = 0;
          for (int j = 1; j < 4; ++j)
            if (beats_pool_max(v[j], v[j_best])) j_best = j;
          op[ow] = v[j_best];
          ip[ow] = 2 * oh * W + pos[j_best];
        }
      }
  });
}

template <class T>
void max_pool_typed(const T* x, const Conv2dGeometry& g, T* out, int64_t* idx) {
  if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 &&
      g.dilation_h == 1 && g.dilation_w == 1)
    return max_pool_2x2_typed(x, g, out, idx);
  const int64_t HW = g.height * g.width, OH = g.out_h(), OW = g.out_w();
  for_planes(g, OH * OW * g.kernel_h * g.kernel_w, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const T* xp = x + q * HW;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          // The first maximum in (kh, kw) order; NaN counts as the maximum (the last NaN). A window made only of
          // padding (impossible for pad <= kernel/2) gives -inf and index -1.
          T best = -std::numeric_limits<T>::infinity();
          int64_t arg = -1;
          for_window(g, oh, ow, [&](int64_t pos) {
            const T v = xp[pos];
            if (arg < 0 || beats_pool_max(v, best)) {
              best = v;
              arg = pos;
            }
          });
          const int64_t o = q * OH * OW + oh * OW + ow;
          out[o] = best;
          idx[o] = arg;
        }
    }
  });
}

template <class T>
void max_pool_backward_typed(const T* grad_out, const int64_t* idx, const Conv2dGeometry& g, T* grad_x) {
  const int64_t HW = g.height * g.width, P = g.out_h() * g.out_w();
  for_planes(g, P + HW, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      T* gx = grad_x + q * HW;
      std::fill(gx, gx + HW, T(0));
      for (int64_t o = q * P; o < (q + 1) * P; ++o)
        if (idx[o] >= 0) gx[idx[o]] += grad_out[o];
    }
  });
}

template <class T>
void avg_pool_typed(const T* x, const Conv2dGeometry& g, T* out) {
  const int64_t HW = g.height * g.width, OH = g.out_h(), OW = g.out_w();
  const T area = T(g.kernel_h * g.kernel_w);  // padding included in the divisor
  for_planes(g, OH * OW * g.kernel_h * g.kernel_w, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const T* xp = x + q * HW;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          T sum = T(0);
          for_window(g, oh, ow, [&](int64_t pos) { sum += xp[pos]; });
          out[q * OH * OW + oh * OW + ow] = sum / area;
        }
    }
  });
}

template <class T>
void avg_pool_backward_typed(const T* grad_out, const Conv2dGeometry& g, T* grad_x) {
  const int64_t HW = g.height * g.width, OH = g.out_h(), OW = g.out_w();
  const T area = T(g.kernel_h * g.kernel_w);
  for_planes(g, OH * OW * g.kernel_h * g.kernel_w, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      T* gx = grad_x + q * HW;
      std::fill(gx, gx + HW, T(0));
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T share = grad_out[q * OH * OW + oh * OW + ow] / area;
          for_window(g, oh, ow, [&](int64_t pos) { gx[pos] += share; });
        }
    }
  });
}

// ============================== fused LSTM cell ==============================

constexpr int64_t kCellGrain = 1 << 14;  // gate elements per chunk of an LSTM cell (transcendental-heavy)

// One pass per row over the four gate blocks with Eigen's vectorised logistic/tanh (float: rational
// approximations within a few ulp; double: libm), instead of ~15 separate element-wise graph ops.
template <class T>
void lstm_cell_typed(T* gates, const T* c_prev, T* c, T* h, int64_t rows, int64_t H) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  parallel_for(rows, grain_for(4 * H, kCellGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* row = gates + r * 4 * H;
      Eigen::Map<Arr> i(row, H), f(row + H, H), g(row + 2 * H, H), o(row + 3 * H, H);
      Eigen::Map<const Arr> cp(c_prev + r * H, H);
      Eigen::Map<Arr> cn(c + r * H, H), hn(h + r * H, H);
      i = i.logistic();
      f = f.logistic();
      g = g.tanh();
      o = o.logistic();
      cn = f * cp + i * g;
      hn = o * cn.tanh();
    }
  });
}

template <class T>
void lstm_cell_backward_typed(const T* act, const T* c_prev, const T* c, const T* dh, const T* dc, T* dgates,
                              T* dc_prev, int64_t rows, int64_t H) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  parallel_for(rows, grain_for(4 * H, kCellGrain), [&](int64_t r0, int64_t r1) {
    Arr tc(H), dct(H);
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = act + r * 4 * H;
      T* drow = dgates + r * 4 * H;
      Eigen::Map<const Arr> i(row, H), f(row + H, H), g(row + 2 * H, H), o(row + 3 * H, H);
      Eigen::Map<const Arr> cp(c_prev + r * H, H), cv(c + r * H, H), gh(dh + r * H, H), gc(dc + r * H, H);
      tc = cv.tanh();
      dct = gc + gh * o * (T(1) - tc * tc);
      Eigen::Map<Arr>(drow, H) = dct * g * i * (T(1) - i);
      Eigen::Map<Arr>(drow + H, H) = dct * cp * f * (T(1) - f);
      Eigen::Map<Arr>(drow + 2 * H, H) = dct * i * (T(1) - g * g);
      Eigen::Map<Arr>(drow + 3 * H, H) = gh * tc * o * (T(1) - o);
      Eigen::Map<Arr>(dc_prev + r * H, H) = dct * f;
    }
  });
}

// ============================== the backend ==============================

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void fill(Tensor& out, double value) override {
    dispatch_dtype(out.dtype(), [&](auto z) {
      using T = decltype(z);
      const T v = T(value);
      map0<T>(out, [v] { return v; });
    });
  }

  void copy(const Tensor& src, Tensor& dst) override {
    dispatch_dtype(dst.dtype(), [&](auto zd) {
      using D = decltype(zd);
      dispatch_dtype(src.dtype(), [&](auto zs) {
        using S = decltype(zs);
        map1<D, S>(src, dst, [](S x) { return D(x); });
      });
    });
  }

  void unary(UnaryOp op, const Tensor& src, Tensor& dst, double a, double b) override {
    dispatch_floating(dst.dtype(), "unary", [&](auto z) {
      using T = decltype(z);
      unary_typed<T>(op, src, dst, T(a), T(b));
    });
  }

  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& dst) override {
    dispatch_dtype(dst.dtype(), [&](auto z) { binary_typed<decltype(z)>(op, a, b, dst); });
  }

  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& dst) override {
    dispatch_dtype(dst.dtype(), [&](auto z) { where_typed<decltype(z)>(cond, a, b, dst); });
  }

  void reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& dst) override {
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

  void arg_reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& idx) override {
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

  void gather(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner, Tensor& dst) override {
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

  void scatter_add(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                   Tensor& dst) override {
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

  void softmax(const Tensor& src, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& dst) override {
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

  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
            const Tensor& A, int64_t batch_stride_a, const Tensor& B, int64_t batch_stride_b, double beta, Tensor& C,
            int64_t batch_stride_c) override {
    dispatch_floating(C.dtype(), "gemm", [&](auto z) {
      using T = decltype(z);
      gemm_typed<T>(trans_a, trans_b, batch, M, N, K, T(alpha), A.data<T>(), batch_stride_a, B.data<T>(),
                    batch_stride_b, T(beta), C.data<T>(), batch_stride_c);
    });
  }

  void im2col(const Tensor& x, const Conv2dGeometry& g, Tensor& cols) override {
    dispatch_floating(x.dtype(), "im2col", [&](auto z) {
      using T = decltype(z);
      im2col_typed<T>(x.data<T>(), g, cols.data<T>());
    });
  }

  void col2im(const Tensor& cols, const Conv2dGeometry& g, Tensor& x) override {
    dispatch_floating(x.dtype(), "col2im", [&](auto z) {
      using T = decltype(z);
      col2im_typed<T>(cols.data<T>(), g, x.data<T>());
    });
  }

  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& g, Tensor& out) override {
    dispatch_floating(x.dtype(), "conv2d", [&](auto z) {
      using T = decltype(z);
      conv2d_typed<T>(x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, g, w.size(0), out.data<T>());
    });
  }

  void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Conv2dGeometry& g,
                             Tensor& grad_x) override {
    dispatch_floating(grad_x.dtype(), "conv2d_backward_input", [&](auto z) {
      using T = decltype(z);
      conv2d_backward_input_typed<T>(grad_out.data<T>(), w.data<T>(), g, w.size(0), grad_x.data<T>());
    });
  }

  void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g,
                              Tensor& grad_w) override {
    dispatch_floating(grad_w.dtype(), "conv2d_backward_weight", [&](auto z) {
      using T = decltype(z);
      conv2d_backward_weight_typed<T>(grad_out.data<T>(), x.data<T>(), g, grad_w.size(0), grad_w.data<T>());
    });
  }

  void max_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out, Tensor& idx) override {
    dispatch_floating(x.dtype(), "max_pool2d", [&](auto z) {
      using T = decltype(z);
      max_pool_typed<T>(x.data<T>(), g, out.data<T>(), idx.data<int64_t>());
    });
  }

  void max_pool2d_backward(const Tensor& grad_out, const Tensor& idx, const Conv2dGeometry& g,
                           Tensor& grad_x) override {
    dispatch_floating(grad_x.dtype(), "max_pool2d_backward", [&](auto z) {
      using T = decltype(z);
      max_pool_backward_typed<T>(grad_out.data<T>(), idx.data<int64_t>(), g, grad_x.data<T>());
    });
  }

  void avg_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out) override {
    dispatch_floating(x.dtype(), "avg_pool2d", [&](auto z) {
      using T = decltype(z);
      avg_pool_typed<T>(x.data<T>(), g, out.data<T>());
    });
  }

  void avg_pool2d_backward(const Tensor& grad_out, const Conv2dGeometry& g, Tensor& grad_x) override {
    dispatch_floating(grad_x.dtype(), "avg_pool2d_backward", [&](auto z) {
      using T = decltype(z);
      avg_pool_backward_typed<T>(grad_out.data<T>(), g, grad_x.data<T>());
    });
  }

  void lstm_cell(Tensor& gates, const Tensor& c_prev, Tensor& c, Tensor& h) override {
    dispatch_floating(gates.dtype(), "lstm_cell", [&](auto z) {
      using T = decltype(z);
      lstm_cell_typed<T>(gates.data<T>(), c_prev.data<T>(), c.data<T>(), h.data<T>(), c_prev.size(0),
                         c_prev.size(1));
    });
  }

  void lstm_cell_backward(const Tensor& act, const Tensor& c_prev, const Tensor& c, const Tensor& dh,
                          const Tensor& dc, Tensor& dgates, Tensor& dc_prev) override {
    dispatch_floating(act.dtype(), "lstm_cell_backward", [&](auto z) {
      using T = decltype(z);
      lstm_cell_backward_typed<T>(act.data<T>(), c_prev.data<T>(), c.data<T>(), dh.data<T>(), dc.data<T>(),
                                  dgates.data<T>(), dc_prev.data<T>(), c_prev.size(0), c_prev.size(1));
    });
  }

  void random(RandomKind kind, Tensor& out, uint64_t seed, uint64_t stream, uint64_t offset, double a,
              double b) override {
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
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace advgrad
