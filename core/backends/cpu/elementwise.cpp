// cpu backend, element-wise family: fill, copy, unary and binary maps, where -- all over strided views.
// One driver (for_each_run) walks any strides as runs of a fixed innermost stride, in chunks whose size
// depends on the shape only.
#include <algorithm>
#include <array>
#include <cmath>

#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {
namespace {

template <size_t N>
using Offsets = std::array<int64_t, N>;

// n zeroed int64 on the heap. Not std::vector, whose out-of-line members would be weak symbols shared by
// every copy of this backend (see isa.cmake); this class has internal linkage.
class Int64Buffer {
 public:
  explicit Int64Buffer(size_t n) : p_(new int64_t[n > 0 ? n : 1]()) {}
  ~Int64Buffer() { delete[] p_; }
  Int64Buffer(const Int64Buffer&) = delete;
  Int64Buffer& operator=(const Int64Buffer&) = delete;
  int64_t& operator[](size_t i) { return p_[i]; }
  int64_t operator[](size_t i) const { return p_[i]; }

 private:
  int64_t* p_;
};

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
  // every operand, so that e.g. a broadcast bias over [N,C,H,W] walks runs of H*W. size[d] and
  // stride[k * rank + d] (operand k) for the nd merged dims.
  const size_t rank = shape.size();
  Int64Buffer size(rank), stride(N * rank);
  size_t nd = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (size_t k = 0; k < N && merge; ++k)
      merge = stride[k * rank + nd - 1] == ops[k]->strides()[d] * shape[d];
    if (!merge) size[nd++] = 1;
    size[nd - 1] *= shape[d];
    for (size_t k = 0; k < N; ++k) stride[k * rank + nd - 1] = ops[k]->strides()[d];
  }
  // nd >= 1: an all-size-1 shape is contiguous for every operand
  const int64_t inner = size[nd - 1], rows = numel / inner;
  Offsets<N> step;
  for (size_t k = 0; k < N; ++k) step[k] = stride[k * rank + nd - 1];
  parallel_for(rows, grain_for(inner, kElemGrain), [&](int64_t r0, int64_t r1) {
    // Multi-index of row r0 over the outer dims, then an odometer from there.
    Int64Buffer idx(nd);
    Offsets<N> off{};
    for (int64_t r = r0, d = int64_t(nd) - 2; d >= 0; --d) {
      idx[size_t(d)] = r % size[size_t(d)];
      r /= size[size_t(d)];
      for (size_t k = 0; k < N; ++k) off[k] += idx[size_t(d)] * stride[k * rank + size_t(d)];
    }
    for (int64_t r = r0; r < r1; ++r) {
      row(off, step, inner);
      for (int64_t d = int64_t(nd) - 2; d >= 0; --d) {
        const size_t u = size_t(d);
        for (size_t k = 0; k < N; ++k) off[k] += stride[k * rank + u];
        if (++idx[u] < size[u]) break;
        for (size_t k = 0; k < N; ++k) off[k] -= stride[k * rank + u] * size[u];
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

}  // namespace

void CpuBackend::fill(Tensor& out, double value) {
  dispatch_dtype(out.dtype(), [&](auto z) {
    using T = decltype(z);
    const T v = T(value);
    map0<T>(out, [v] { return v; });
  });
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  dispatch_dtype(dst.dtype(), [&](auto zd) {
    using D = decltype(zd);
    dispatch_dtype(src.dtype(), [&](auto zs) {
      using S = decltype(zs);
      map1<D, S>(src, dst, [](S x) { return D(x); });
    });
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& src, Tensor& dst, double a, double b) {
  dispatch_floating(dst.dtype(), "unary", [&](auto z) {
    using T = decltype(z);
    unary_typed<T>(op, src, dst, T(a), T(b));
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& dst) {
  dispatch_dtype(dst.dtype(), [&](auto z) { binary_typed<decltype(z)>(op, a, b, dst); });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& dst) {
  dispatch_dtype(dst.dtype(), [&](auto z) { where_typed<decltype(z)>(cond, a, b, dst); });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
