// cpu backend, max and average pooling over NCHW planes and their backward passes.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {
namespace {

// Max-pool's rule differs for NaN (PyTorch's CPU kernel: `val > maxval || isnan(val)`): the LAST NaN of a
// window wins, so max_pool2d's index (and its gradient) lands where PyTorch's does.
template <class T> bool beats_pool_max(T v, T m) { return v > m || is_nan(v); }

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
#if !defined(__x86_64__) || defined(__AVX2__)  // SSE-only x86: 8 lanes (int64 offsets: 64 bytes) would spill
      if (OW >= 8) return PoolLanes<8>::row(r0, r1, W, OW, base, out, idx);
#endif
      if (OW >= 4) return PoolLanes<4>::row(r0, r1, W, OW, base, out, idx);
    }
  }
#endif
  return pool_row_pair_plain(r0, r1, W, OW, base, out, idx);
}

template <class T>
void max_pool_2x2_typed(const T* x, const Conv2dGeometry& g, T* out, int64_t* idx) {
  const int64_t W = g.width, HW = g.height * g.width, OH = out_h(g), OW = out_w(g);
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
  // (Under ceil_mode an odd size has a last, partial window: the general path takes it.)
  if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0 &&
      g.dilation_h == 1 && g.dilation_w == 1 && 2 * out_h(g) <= g.height && 2 * out_w(g) <= g.width)
    return max_pool_2x2_typed(x, g, out, idx);
  const int64_t HW = g.height * g.width, OH = out_h(g), OW = out_w(g);
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
  const int64_t HW = g.height * g.width, P = out_h(g) * out_w(g);
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
  const int64_t HW = g.height * g.width, OH = out_h(g), OW = out_w(g);
  for_planes(g, OH * OW * g.kernel_h * g.kernel_w, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const T* xp = x + q * HW;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          T sum = T(0);
          for_window(g, oh, ow, [&](int64_t pos) { sum += xp[pos]; });
          out[q * OH * OW + oh * OW + ow] = sum / T(g.pool_divisor(oh, ow));
        }
    }
  });
}

template <class T>
void avg_pool_backward_typed(const T* grad_out, const Conv2dGeometry& g, T* grad_x) {
  const int64_t HW = g.height * g.width, OH = out_h(g), OW = out_w(g);
  for_planes(g, OH * OW * g.kernel_h * g.kernel_w, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      T* gx = grad_x + q * HW;
      std::fill(gx, gx + HW, T(0));
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T share = grad_out[q * OH * OW + oh * OW + ow] / T(g.pool_divisor(oh, ow));
          for_window(g, oh, ow, [&](int64_t pos) { gx[pos] += share; });
        }
    }
  });
}

}  // namespace

void CpuBackend::max_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out, Tensor& idx) {
  dispatch_floating(x.dtype(), "max_pool2d", [&](auto z) {
    using T = decltype(z);
    max_pool_typed<T>(x.data<T>(), g, out.data<T>(), idx.data<int64_t>());
  });
}

void CpuBackend::max_pool2d_backward(const Tensor& grad_out, const Tensor& idx, const Conv2dGeometry& g,
                                     Tensor& grad_x) {
  dispatch_floating(grad_x.dtype(), "max_pool2d_backward", [&](auto z) {
    using T = decltype(z);
    max_pool_backward_typed<T>(grad_out.data<T>(), idx.data<int64_t>(), g, grad_x.data<T>());
  });
}

void CpuBackend::avg_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out) {
  dispatch_floating(x.dtype(), "avg_pool2d", [&](auto z) {
    using T = decltype(z);
    avg_pool_typed<T>(x.data<T>(), g, out.data<T>());
  });
}

void CpuBackend::avg_pool2d_backward(const Tensor& grad_out, const Conv2dGeometry& g, Tensor& grad_x) {
  dispatch_floating(grad_x.dtype(), "avg_pool2d_backward", [&](auto z) {
    using T = decltype(z);
    avg_pool_backward_typed<T>(grad_out.data<T>(), g, grad_x.data<T>());
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
