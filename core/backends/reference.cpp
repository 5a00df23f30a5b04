// The reference backend: the executable specification of core/backend.h.
//
// Plain loops, one thread, no Eigen, no OpenMP. Every kernel is written to be obviously correct rather
// than fast: strided views are walked with an N-d index, sums run sequentially in the element type, and
// each entry point mirrors its comment in backend.h. The cpu backend is tested against this file.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "advgrad/core/backend.h"
#include "advgrad/core/device_memory.h"

namespace advgrad {
namespace {

using Index = std::vector<int64_t>;

// Calls f(idx) for every multi-index of `shape` in row-major order (an odometer: the last dim spins
// fastest). A 0-d shape has exactly one (empty) index; a shape with a 0 dim has none.
template <class F>
void for_each_index(const Shape& shape, F&& f) {
  const int64_t count = shape_numel(shape);
  Index idx(shape.size(), 0);
  for (int64_t done = 0; done < count; ++done) {
    f(idx);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;  // wrap, carry into the next slower dim
    }
  }
}

// The element of view t at multi-index idx. device_data<T>() already points at the offset element (and checks
// the dtype); each dim then moves by its stride (0 for broadcast dims, anything for permuted views).
template <class T>
T& element(const Tensor& t, const Index& idx) {
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  return device_data<T>(t)[off];
}

// v (a double inside [lo, hi], an interval holding x) rounded to T, stepped toward x while outside.
template <class T>
T round_toward(double v, T x, double lo, double hi) {
  T f = T(v);
  while (double(f) > hi) f = std::nextafter(f, x);
  while (double(f) < lo) f = std::nextafter(f, x);
  return f;
}

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point<T>::value) return std::isnan(v);
  else return false;
}

// Should `v` replace the running extremum `best`? Strictly better only, so the first extremum wins;
// a NaN beats any number (it propagates, as in PyTorch) but not an earlier NaN.
template <class T>
bool better(ReduceOp op, T v, T best) {
  if (is_nan(best)) return false;
  if (is_nan(v)) return true;
  return op == ReduceOp::Max ? v > best : v < best;
}

// Max-pool's rule (PyTorch's CPU kernel: `val > maxval || isnan(val)`): larger, or any NaN, so the first
// maximum wins among numbers but the last NaN of the window wins among NaNs.
template <class T>
bool pool_better(T v, T best) {
  return v > best || is_nan(v);
}

template <class T>
T apply_unary(UnaryOp op, T x, T a, T b) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: {
      // Never exponentiate a large positive number: exp(-|x|) is in (0, 1], so no overflow either side.
      if (x >= 0) return T(1) / (T(1) + std::exp(-x));
      T e = std::exp(x);
      return e / (T(1) + e);
    }
    case UnaryOp::Relu: return x < 0 ? T(0) : x;  // NaN and -0 pass (PyTorch); x > 0 ? x : 0 hid NaN
    case UnaryOp::Sign: return T((x > 0) - (x < 0));  // sign(0) = 0
    case UnaryOp::Square: return x * x;
    case UnaryOp::Reciprocal: return T(1) / x;
    case UnaryOp::LeakyRelu: return x > 0 ? x : a * x;
    case UnaryOp::PowScalar: return std::pow(x, a);
    case UnaryOp::Clamp: return std::min(std::max(x, a), b);  // a NaN x stays NaN
    case UnaryOp::AddScalar: return x + a;
    case UnaryOp::MulScalar: return x * a;
    case UnaryOp::Affine: return a * x + b;
  }
  return x;
}

template <class T>
T apply_binary(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div:
      // Integers divide truncating toward zero (C++); x/0 is defined as 0 rather than a crash.
      if constexpr (std::is_integral<T>::value) return y == 0 ? T(0) : T(x / y);
      else return x / y;
    case BinaryOp::Pow:
      if constexpr (std::is_integral<T>::value) return T(std::pow(double(x), double(y)));
      else return std::pow(x, y);
    // NaN propagates through minimum/maximum (PyTorch's choice); on ties the first operand is returned.
    case BinaryOp::Minimum: return is_nan(x) ? x : is_nan(y) ? y : (y < x ? y : x);
    case BinaryOp::Maximum: return is_nan(x) ? x : is_nan(y) ? y : (y > x ? y : x);
    case BinaryOp::Eq: return x == y ? T(1) : T(0);
    case BinaryOp::Ne: return x != y ? T(1) : T(0);
    case BinaryOp::Lt: return x < y ? T(1) : T(0);
    case BinaryOp::Le: return x <= y ? T(1) : T(0);
    case BinaryOp::Gt: return x > y ? T(1) : T(0);
    case BinaryOp::Ge: return x >= y ? T(1) : T(0);
    case BinaryOp::PassPositive: return y <= T(0) ? T(0) : x;  // a NaN output passes the gradient
  }
  return x;
}

// Input coordinate (row or column) that output position `o` reads with kernel tap `k` along one axis.
// It may fall outside [0, size): that is padding.
int64_t input_coord(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t dilation) {
  return o * stride - pad + k * dilation;
}
bool inside(int64_t h, int64_t w, const Conv2dGeometry& g) { return h >= 0 && h < g.height && w >= 0 && w < g.width; }

class ReferenceBackend : public Backend {
 public:
  const char* name() const override { return "reference"; }

  // ---- element-wise ----
  void fill(Tensor& out, double value) override {
    dispatch_dtype(out.dtype(), [&](auto z) {
      using T = decltype(z);
      for_each_index(out.shape(), [&](const Index& i) { element<T>(out, i) = T(value); });
    });
  }

  void copy(const Tensor& src, Tensor& dst) override {
    // Two dispatches: any source dtype into any destination dtype (float -> int64 truncates toward 0).
    dispatch_dtype(src.dtype(), [&](auto zs) {
      using S = decltype(zs);
      dispatch_dtype(dst.dtype(), [&](auto zd) {
        using D = decltype(zd);
        for_each_index(src.shape(), [&](const Index& i) { element<D>(dst, i) = D(element<S>(src, i)); });
      });
    });
  }

  void unary(UnaryOp op, const Tensor& src, Tensor& dst, double a, double b) override {
    dispatch_floating(src.dtype(), "unary", [&](auto z) {
      using T = decltype(z);
      // Read then write the same index, so dst may alias src.
      for_each_index(src.shape(), [&](const Index& i) {
        element<T>(dst, i) = apply_unary<T>(op, element<T>(src, i), T(a), T(b));
      });
    });
  }

  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& dst) override {
    dispatch_dtype(a.dtype(), [&](auto z) {
      using T = decltype(z);
      for_each_index(dst.shape(), [&](const Index& i) {
        element<T>(dst, i) = apply_binary<T>(op, element<T>(a, i), element<T>(b, i));
      });
    });
  }

  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& dst) override {
    dispatch_dtype(a.dtype(), [&](auto z) {
      using T = decltype(z);
      for_each_index(dst.shape(), [&](const Index& i) {
        element<T>(dst, i) = element<T>(cond, i) != T(0) ? element<T>(a, i) : element<T>(b, i);
      });
    });
  }

  // ---- reductions over n of dense [outer, n, inner]; element (o, k, i) sits at (o*n + k)*inner + i ----
  void reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& dst) override {
    auto run = [&](auto z) {
      using T = decltype(z);
      const T* x = device_data<T>(src);
      T* y = device_data<T>(dst);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          if (op == ReduceOp::Sum) {
            T acc = 0;  // in T, in index order: the plain sequential sum
            for (int64_t k = 0; k < n; ++k) acc += x[(o * n + k) * inner + i];
            y[o * inner + i] = acc;
          } else {
            T best = x[o * n * inner + i];
            for (int64_t k = 1; k < n; ++k)
              if (better(op, x[(o * n + k) * inner + i], best)) best = x[(o * n + k) * inner + i];
            y[o * inner + i] = best;
          }
        }
    };
    if (op == ReduceOp::Sum) dispatch_dtype(src.dtype(), run);
    else dispatch_floating(src.dtype(), "reduce", run);
  }

  void arg_reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& idx) override {
    dispatch_floating(src.dtype(), "arg_reduce", [&](auto z) {
      using T = decltype(z);
      const T* x = device_data<T>(src);
      int64_t* out = device_data<int64_t>(idx);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          int64_t best = 0;
          for (int64_t k = 1; k < n; ++k)
            if (better(op, x[(o * n + k) * inner + i], x[(o * n + best) * inner + i])) best = k;
          out[o * inner + i] = best;
        }
    });
  }

  void gather(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner, Tensor& dst) override {
    dispatch_floating(src.dtype(), "gather", [&](auto z) {
      using T = decltype(z);
      const T* x = device_data<T>(src);
      const int64_t* k = device_data<int64_t>(idx);
      T* y = device_data<T>(dst);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) y[o * inner + i] = x[(o * n + k[o * inner + i]) * inner + i];
    });
  }

  void scatter_add(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                   Tensor& dst) override {
    dispatch_floating(src.dtype(), "scatter_add", [&](auto z) {
      using T = decltype(z);
      const T* x = device_data<T>(src);
      const int64_t* k = device_data<int64_t>(idx);
      T* y = device_data<T>(dst);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) y[(o * n + k[o * inner + i]) * inner + i] += x[o * inner + i];
    });
  }

  void softmax(const Tensor& src, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& dst) override {
    if (n == 0) return;  // nothing to normalise
    dispatch_floating(src.dtype(), "softmax", [&](auto z) {
      using T = decltype(z);
      const T* x = device_data<T>(src);
      T* y = device_data<T>(dst);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
          // Subtracting the max makes every exponent <= 0: no overflow, and the largest term is exactly 1.
          T m = x[at(0)];
          for (int64_t k = 1; k < n; ++k) m = std::max(m, x[at(k)]);
          T sum = 0;
          for (int64_t k = 0; k < n; ++k) sum += std::exp(x[at(k)] - m);
          for (int64_t k = 0; k < n; ++k)
            y[at(k)] = log ? x[at(k)] - m - std::log(sum) : std::exp(x[at(k)] - m) / sum;
        }
    });
  }

  // ---- linear algebra ----
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
            const Tensor& A, int64_t batch_stride_a, const Tensor& B, int64_t batch_stride_b, double beta,
            Tensor& C, int64_t batch_stride_c) override {
    dispatch_floating(C.dtype(), "gemm", [&](auto z) {
      using T = decltype(z);
      for (int64_t bi = 0; bi < batch; ++bi) {
        const T* a = device_data<T>(A) + bi * batch_stride_a;
        const T* b = device_data<T>(B) + bi * batch_stride_b;
        T* c = device_data<T>(C) + bi * batch_stride_c;
        // op(A)(m,k): A_b is stored K x M when transposed, M x K otherwise; likewise op(B)(k,n).
        auto op_a = [&](int64_t m, int64_t k) { return trans_a ? a[k * M + m] : a[m * K + k]; };
        auto op_b = [&](int64_t k, int64_t n) { return trans_b ? b[n * K + k] : b[k * N + n]; };
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            T acc = 0;
            for (int64_t k = 0; k < K; ++k) acc += op_a(m, k) * op_b(k, n);
            // beta == 0 must not read C: it may hold garbage or NaN (0 * NaN would be NaN).
            T old = beta == 0 ? T(0) : T(beta) * c[m * N + n];
            c[m * N + n] = T(alpha) * acc + old;
          }
      }
    });
  }

  // ---- convolution and pooling over NCHW ----
  // cols[b, (c*KH + kh)*KW + kw, oh*OW + ow] = x[b, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw], 0 outside.
  void im2col(const Tensor& x, const Conv2dGeometry& g, Tensor& cols) override {
    dispatch_floating(x.dtype(), "im2col", [&](auto z) {
      using T = decltype(z);
      const T* in = device_data<T>(x);
      T* out = device_data<T>(cols);
      for_each_tap(g, [&](int64_t col, int64_t pix) { out[col] = pix < 0 ? T(0) : in[pix]; });
    });
  }

  // The adjoint of im2col: every cols entry is added back into the pixel it was read from.
  void col2im(const Tensor& cols, const Conv2dGeometry& g, Tensor& x) override {
    dispatch_floating(cols.dtype(), "col2im", [&](auto z) {
      using T = decltype(z);
      const T* in = device_data<T>(cols);
      T* out = device_data<T>(x);
      for (int64_t p = 0; p < g.batch * g.channels * g.height * g.width; ++p) out[p] = 0;
      for_each_tap(g, [&](int64_t col, int64_t pix) {
        if (pix >= 0) out[pix] += in[col];
      });
    });
  }

  // h and c of one LSTM step, element by element: the formulas of backend.h, nothing fused or reordered.
  void lstm_cell(Tensor& gates, const Tensor& c_prev, Tensor& c, Tensor& h) override {
    dispatch_floating(gates.dtype(), "lstm_cell", [&](auto z) {
      using T = decltype(z);
      const int64_t rows = c_prev.size(0), H = c_prev.size(1);
      T* a = device_data<T>(gates);
      const T* cp = device_data<T>(c_prev);
      T *cn = device_data<T>(c), *hn = device_data<T>(h);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < H; ++j) {
          T* row = a + r * 4 * H;
          const T i = apply_unary(UnaryOp::Sigmoid, row[j], T(0), T(0));
          const T f = apply_unary(UnaryOp::Sigmoid, row[H + j], T(0), T(0));
          const T g = std::tanh(row[2 * H + j]);
          const T o = apply_unary(UnaryOp::Sigmoid, row[3 * H + j], T(0), T(0));
          row[j] = i, row[H + j] = f, row[2 * H + j] = g, row[3 * H + j] = o;
          const T cv = f * cp[r * H + j] + i * g;
          cn[r * H + j] = cv;
          hn[r * H + j] = o * std::tanh(cv);
        }
    });
  }

  // Chain rule through h = o*tanh(c), c = f*c_prev + i*g and the gate activations.
  void lstm_cell_backward(const Tensor& act, const Tensor& c_prev, const Tensor& c, const Tensor& dh,
                          const Tensor& dc, Tensor& dgates, Tensor& dc_prev) override {
    dispatch_floating(act.dtype(), "lstm_cell_backward", [&](auto z) {
      using T = decltype(z);
      const int64_t rows = c_prev.size(0), H = c_prev.size(1);
      const T *a = device_data<T>(act), *cp = device_data<T>(c_prev), *cv = device_data<T>(c), *gh = device_data<T>(dh), *gc = device_data<T>(dc);
      T *dg = device_data<T>(dgates), *dcp = device_data<T>(dc_prev);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < H; ++j) {
          const T* row = a + r * 4 * H;
          const T i = row[j], f = row[H + j], g = row[2 * H + j], o = row[3 * H + j];
          const int64_t e = r * H + j;
          const T tc = std::tanh(cv[e]);
          const T dct = gc[e] + gh[e] * o * (T(1) - tc * tc);  // total gradient of c
          T* drow = dg + r * 4 * H;
          drow[j] = dct * g * i * (T(1) - i);
          drow[H + j] = dct * cp[e] * f * (T(1) - f);
          drow[2 * H + j] = dct * i * (T(1) - g * g);
          drow[3 * H + j] = gh[e] * tc * o * (T(1) - o);
          dcp[e] = dct * f;
        }
    });
  }

  void max_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out, Tensor& idx) override {
    dispatch_floating(x.dtype(), "max_pool2d", [&](auto z) {
      using T = decltype(z);
      const T* in = device_data<T>(x);
      T* y = device_data<T>(out);
      int64_t* arg = device_data<int64_t>(idx);
      for_each_window(g, [&](int64_t plane, int64_t o, const std::vector<int64_t>& pos) {
        // Padding is -inf, never chosen: start from the first real pixel (-1 if the window has none).
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_pos = -1;
        for (int64_t p : pos)
          if (best_pos < 0 || pool_better(in[plane + p], best)) best = in[plane + p], best_pos = p;
        y[o] = best;
        arg[o] = best_pos;
      });
    });
  }

  void max_pool2d_backward(const Tensor& grad_out, const Tensor& idx, const Conv2dGeometry& g,
                           Tensor& grad_x) override {
    dispatch_floating(grad_out.dtype(), "max_pool2d_backward", [&](auto z) {
      using T = decltype(z);
      const T* go = device_data<T>(grad_out);
      const int64_t* arg = device_data<int64_t>(idx);
      T* gx = device_data<T>(grad_x);
      const int64_t plane_in = g.height * g.width, plane_out = g.out_h() * g.out_w();
      for (int64_t p = 0; p < g.batch * g.channels * plane_in; ++p) gx[p] = 0;
      for (int64_t bc = 0; bc < g.batch * g.channels; ++bc)
        for (int64_t o = 0; o < plane_out; ++o)
          if (arg[bc * plane_out + o] >= 0) gx[bc * plane_in + arg[bc * plane_out + o]] += go[bc * plane_out + o];
    });
  }

  void avg_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out) override {
    dispatch_floating(x.dtype(), "avg_pool2d", [&](auto z) {
      using T = decltype(z);
      const T* in = device_data<T>(x);
      T* y = device_data<T>(out);
      const int64_t OW = g.out_w(), P = g.out_h() * OW;
      for_each_window(g, [&](int64_t plane, int64_t o, const std::vector<int64_t>& pos) {
        T sum = 0;
        for (int64_t p : pos) sum += in[plane + p];
        y[o] = sum / T(g.pool_divisor(o % P / OW, o % OW));
      });
    });
  }

  void avg_pool2d_backward(const Tensor& grad_out, const Conv2dGeometry& g, Tensor& grad_x) override {
    dispatch_floating(grad_out.dtype(), "avg_pool2d_backward", [&](auto z) {
      using T = decltype(z);
      const T* go = device_data<T>(grad_out);
      T* gx = device_data<T>(grad_x);
      const int64_t OW = g.out_w(), P = g.out_h() * OW;
      for (int64_t p = 0; p < g.batch * g.channels * g.height * g.width; ++p) gx[p] = 0;
      for_each_window(g, [&](int64_t plane, int64_t o, const std::vector<int64_t>& pos) {
        for (int64_t p : pos) gx[plane + p] += go[o] / T(g.pool_divisor(o % P / OW, o % OW));
      });
    });
  }

  // ---- exact projections onto the threat model ----
  void project_linf(const Tensor& adv, const Tensor& x, double eps, Tensor& out) override {
    dispatch_floating(x.dtype(), "project_linf", [&](auto z) {
      using T = decltype(z);
      const T *a = device_data<T>(adv), *xs = device_data<T>(x);
      T* o = device_data<T>(out);
      for (int64_t i = 0; i < x.numel(); ++i) {
        const double lo = std::max(double(xs[i]) - eps, 0.0), hi = std::min(double(xs[i]) + eps, 1.0);
        double v = std::min(std::max(double(a[i]), lo), hi);
        if (std::isnan(double(a[i]))) v = double(xs[i]);
        o[i] = round_toward<T>(v, xs[i], lo, hi);
      }
    });
  }

  void project_l2(const Tensor& adv, const Tensor& x, int64_t samples, double eps, Tensor& out) override {
    const int64_t per = samples ? x.numel() / samples : 0;
    dispatch_floating(x.dtype(), "project_l2", [&](auto z) {
      using T = decltype(z);
      const T *a = device_data<T>(adv), *xs = device_data<T>(x);
      T* o = device_data<T>(out);
      for (int64_t s = 0; s < samples; ++s) {
        const int64_t first = s * per, last = first + per;
        auto delta = [&](int64_t i) {
          const double d = double(a[i]) - double(xs[i]);
          return std::isnan(d) ? 0.0 : d;
        };
        double norm2 = 0;
        for (int64_t i = first; i < last; ++i) norm2 += delta(i) * delta(i);
        double scale = norm2 > eps * eps ? eps / std::sqrt(norm2) : 1.0;
        for (int64_t shrink = 0;; ++shrink) {
          double inside = 0;  // squared norm of the rounded perturbation
          for (int64_t i = first; i < last; ++i) {
            const double v = std::min(std::max(double(xs[i]) + delta(i) * scale, 0.0), 1.0);
            o[i] = round_toward<T>(v, xs[i], std::min(double(xs[i]), v), std::max(double(xs[i]), v));
            inside += (double(o[i]) - double(xs[i])) * (double(o[i]) - double(xs[i]));
          }
          if (inside <= eps * eps || shrink > 60) break;
          scale *= 1.0 - 1e-7 * double(1 << std::min<int64_t>(shrink, 20));
        }
      }
    });
  }

  // ---- random numbers: element i is a pure function of (seed, stream, offset + i) ----
  void random(RandomKind kind, Tensor& out, uint64_t seed, uint64_t stream, uint64_t offset, double a,
              double b) override {
    const int64_t count = out.numel();
    if (kind == RandomKind::Randint) {
      int64_t* y = device_data<int64_t>(out);
      const int64_t low = int64_t(a);
      const uint64_t range = uint64_t(int64_t(b) - low);
      for (int64_t i = 0; i < count; ++i) y[i] = low + int64_t(Generator::below(seed, stream, offset + uint64_t(i), range));
      return;
    }
    dispatch_floating(out.dtype(), "random", [&](auto z) {
      using T = decltype(z);
      T* y = device_data<T>(out);
      for (int64_t i = 0; i < count; ++i) {
        const uint64_t index = offset + uint64_t(i);
        if (kind == RandomKind::Normal) {
          y[i] = T(a + b * Generator::normal(seed, stream, index));
        } else {
          // 24 random bits for float, 53 for double; scaled in double, then rounded to T.
          double u = std::is_same<T, float>::value ? double(Generator::uniform_float(seed, stream, index))
                                                   : Generator::uniform_double(seed, stream, index);
          y[i] = T(a + (b - a) * u);
        }
      }
    });
  }

 private:
  // Calls f(col, pix) for every entry of the im2col matrix: col is its flat position in cols, pix the flat
  // position in x of the pixel it reads, or -1 for padding.
  template <class F>
  static void for_each_tap(const Conv2dGeometry& g, F&& f) {
    const int64_t OH = g.out_h(), OW = g.out_w();
    int64_t col = 0;  // cols is visited in its own row-major order: (b, c, kh, kw, oh, ow)
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t c = 0; c < g.channels; ++c)
        for (int64_t kh = 0; kh < g.kernel_h; ++kh)
          for (int64_t kw = 0; kw < g.kernel_w; ++kw)
            for (int64_t oh = 0; oh < OH; ++oh)
              for (int64_t ow = 0; ow < OW; ++ow, ++col) {
                int64_t h = input_coord(oh, kh, g.stride_h, g.pad_h, g.dilation_h);
                int64_t w = input_coord(ow, kw, g.stride_w, g.pad_w, g.dilation_w);
                f(col, inside(h, w, g) ? ((b * g.channels + c) * g.height + h) * g.width + w : int64_t(-1));
              }
  }

  // Calls f(plane, o, pos) for every pooling window: plane is the flat offset of its (b, c) input plane,
  // o the flat position of its output, pos the in-plane positions h*width + w of the window's real
  // (non-padding) pixels in (kh, kw) order. Dilation is honoured as in im2col.
  template <class F>
  static void for_each_window(const Conv2dGeometry& g, F&& f) {
    const int64_t OH = g.out_h(), OW = g.out_w();
    std::vector<int64_t> pos;
    int64_t o = 0;
    for (int64_t bc = 0; bc < g.batch * g.channels; ++bc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow, ++o) {
          pos.clear();
          for (int64_t kh = 0; kh < g.kernel_h; ++kh)
            for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
              int64_t h = input_coord(oh, kh, g.stride_h, g.pad_h, g.dilation_h);
              int64_t w = input_coord(ow, kw, g.stride_w, g.pad_w, g.dilation_w);
              if (inside(h, w, g)) pos.push_back(h * g.width + w);
            }
          f(bc * g.height * g.width, o, pos);
        }
  }
};

}  // namespace

Backend& reference_backend() {
  static ReferenceBackend backend;
  return backend;
}

}  // namespace advgrad
