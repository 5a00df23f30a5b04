// cpu backend, convolution: im2col/col2im and the whole convolutions (forward with the bias, input
// gradient, weight gradient), one sample at a time with its columns in a cached buffer.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "advgrad/core/backends/conv_gemm_kernel.h"
#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/backends/cpu/eigen.h"
#include "advgrad/core/parallel.h"
#include "advgrad/core/storage.h"

namespace advgrad::ADVGRAD_CPU_NS {
namespace {

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
  const int64_t H = g.height, W = g.width, OH = out_h(g), OW = out_w(g), P = OH * OW;
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
  const int64_t H = g.height, W = g.width, OH = out_h(g), OW = out_w(g), P = OH * OW;
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
//
// Grouped convolution (g.groups = G): one GEMM per channel group on that group's block of a sample's
// columns. Columns are (c, kh, kw) c-major, so group j's rows CgKK*j .. are contiguous, as are its weight
// rows Og*j .. and its output channels: every operand is a plain offset, nothing is copied. Depthwise
// (C = O = G) makes these 1 x L x KK products, taken as they come: a 3x3 depthwise convolution of
// [128,32,28,28] costs about a third of the dense 32 -> 32 one, and a direct kernel from the padded planes
// measured no faster (the work is bound by reading the input and writing the output).

struct ConvSizes {
  int64_t O, CKK, L, CHW;
  int64_t G, Og, CgKK;  // groups, output channels and columns rows per group
  Conv2dGeometry one;   // the geometry of a single sample
  int64_t macs() const { return O * CgKK * L; }      // multiply-adds per sample and direction
  int64_t weight_numel() const { return O * CgKK; }
};

ConvSizes conv_sizes(const Conv2dGeometry& g, int64_t O) {
  const int64_t KK = g.kernel_h * g.kernel_w;
  ConvSizes z{O, g.channels * KK, out_h(g) * out_w(g), g.channels * g.height * g.width,
              g.groups, O / g.groups, g.channels_per_group() * KK, g};
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
  // Each group's weights transposed ([CgKK, Og], groups one after another) for the float kernel (see
  // column_product); double has none (no offset from a null pointer: UBSan).
  constexpr bool f32 = std::is_same_v<T, float>;
  const int64_t WG = z.Og * z.CgKK;  // weights per group
  Scratch<T> wt(f32 ? z.weight_numel() : 0);
  if (f32)
    for (int64_t j = 0; j < z.G; ++j)
      for (int64_t o = 0; o < z.Og; ++o)
        for (int64_t k = 0; k < z.CgKK; ++k) wt.p[j * WG + k * z.Og + o] = w[j * WG + o * z.CgKK + k];
  parallel_for(g.batch, grain_for(z.macs(), kConvSampleWork), [&](int64_t n0, int64_t n1) {
    Scratch<T> cols(z.CKK * z.L + conv_gemm::kSlack);
    for (int64_t n = n0; n < n1; ++n) {
      im2col_typed(x + n * z.CHW, z.one, cols.p);
      T* o = out + n * z.O * z.L;
      if (bias)  // start from the bias; the GEMM accumulates onto it
        for (int64_t c = 0; c < z.O; ++c) std::fill(o + c * z.L, o + (c + 1) * z.L, bias[c]);
      for (int64_t j = 0; j < z.G; ++j)
        column_product<T>(z.Og, z.L, z.CgKK, f32 ? wt.p + j * WG : nullptr, false, w + j * WG, cols.p + j * z.CgKK * z.L,
                          o + j * z.Og * z.L, bias != nullptr);
    }
  });
}

template <class T>
void conv2d_backward_input_typed(const T* gout, const T* w, const Conv2dGeometry& g, int64_t O, T* gx) {
  const ConvSizes z = conv_sizes(g, O);
  const int64_t KW = g.kernel_w, KK = g.kernel_h * KW, ldp = g.width + 2 * g.pad_w;
  const int64_t OH = out_h(g), OW = out_w(g), H = g.height, W = g.width, Lp = OH * ldp;
  // Unit stride and dilation (the zoo's convolutions): the gradient goes into the GEMM with each output row
  // widened to the padded row length (zeros in the extra columns), so every tap's columns land on the
  // padded plane as one contiguous run of OH * ldp elements instead of OH short rows. The extra terms are
  // exact zeros (x + 0 == x: sums start at +0 and are never -0), so each pixel gets the same terms in the
  // same (kh, kw) order as col2im. An infinite or NaN weight would turn those zeros into NaN: then the
  // general path below is taken, as it is when the widened GEMM would cost more than col2im saves (many
  // output channels over a narrow image: madry_cnn's second convolution measured no faster).
  // (Per group the widened GEMM does Og * (Lp - L) extra multiply-adds per cols row.)
  const int64_t WG = z.Og * z.CgKK;  // weights per group
  bool unit = g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 &&
              z.Og * (Lp - z.L) <= kConvWideRatio * z.L;
  for (int64_t i = 0; unit && i < z.weight_numel(); ++i) unit = std::isfinite(w[i]);
  if (!unit) {
    parallel_for(g.batch, grain_for(z.macs(), kConvSampleWork), [&](int64_t n0, int64_t n1) {
      Scratch<T> dcols(z.CKK * z.L), gn(z.O * z.L + conv_gemm::kSlack);
      for (int64_t n = n0; n < n1; ++n) {
        const T* go = gout + n * z.O * z.L;
        std::copy(go, go + z.O * z.L, gn.p);  // into a buffer with the kernel's slack
        // W_j^T dout_n,j per group; A = W_j^T transposed is w's group block as stored
        for (int64_t j = 0; j < z.G; ++j)
          column_product<T>(z.CgKK, z.L, z.Og, w + j * WG, true, w + j * WG, gn.p + j * z.Og * z.L,
                            dcols.p + j * z.CgKK * z.L, false);
        col2im_typed(dcols.p, z.one, gx + n * z.CHW);
      }
    });
    return;
  }
  parallel_for(g.batch, grain_for(z.macs() / z.L * Lp, kConvSampleWork), [&](int64_t n0, int64_t n1) {
    Scratch<T> wide(z.O * Lp + conv_gemm::kSlack), dcols(z.CKK * Lp);
    PaddedPlane<T> plane(z.one, KW);  // slack: the last tap's run overhangs the padded plane by KW - 2
    std::fill(wide.p, wide.p + z.O * Lp, T(0));  // the extra columns stay 0
    for (int64_t n = n0; n < n1; ++n) {
      const T* gn = gout + n * z.O * z.L;
      for (int64_t r = 0; r < z.O * OH; ++r) copy_row(wide.p + r * ldp, gn + r * OW, OW);
      for (int64_t j = 0; j < z.G; ++j)  // W_j^T dout_n,j, widened
        column_product<T>(z.CgKK, Lp, z.Og, w + j * WG, true, w + j * WG, wide.p + j * z.Og * Lp,
                          dcols.p + j * z.CgKK * Lp, false);
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
  const int64_t sample_groups = (g.batch + kConvWeightGroup - 1) / kConvWeightGroup, WN = z.weight_numel();
  const int64_t WG = z.Og * z.CgKK;  // weights per channel group
  // One sample group writes straight into gw; several write partial sums, added below in group order.
  Scratch<T> partial(sample_groups > 1 ? sample_groups * WN : 0);
  parallel_for(sample_groups, 1, [&](int64_t q0, int64_t q1) {
    Scratch<T> cols(z.CKK * z.L);
    for (int64_t q = q0; q < q1; ++q) {
      T* acc = sample_groups > 1 ? partial.p + q * WN : gw;
      const int64_t n_end = std::min(g.batch, (q + 1) * kConvWeightGroup);
      for (int64_t n = q * kConvWeightGroup; n < n_end; ++n) {
        im2col_typed(x + n * z.CHW, z.one, cols.p);
        const T beta = n == q * kConvWeightGroup ? T(0) : T(1);
        for (int64_t j = 0; j < z.G; ++j)  // dout_n,j cols_n,j^T per channel group
          gemm_single<T>(false, true, z.Og, z.CgKK, z.L, T(1), gout + n * z.O * z.L + j * z.Og * z.L,
                         cols.p + j * z.CgKK * z.L, beta, acc + j * WG);
      }
    }
  });
  if (sample_groups > 1)
    parallel_for(WN, kElemGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T s = partial.p[i];
        for (int64_t q = 1; q < sample_groups; ++q) s += partial.p[q * WN + i];
        gw[i] = s;
      }
    });
}

}  // namespace

void CpuBackend::im2col(const Tensor& x, const Conv2dGeometry& g, Tensor& cols) {
  dispatch_floating(x.dtype(), "im2col", [&](auto z) {
    using T = decltype(z);
    im2col_typed<T>(x.data<T>(), g, cols.data<T>());
  });
}

void CpuBackend::col2im(const Tensor& cols, const Conv2dGeometry& g, Tensor& x) {
  dispatch_floating(x.dtype(), "col2im", [&](auto z) {
    using T = decltype(z);
    col2im_typed<T>(cols.data<T>(), g, x.data<T>());
  });
}

void CpuBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& g, Tensor& out) {
  dispatch_floating(x.dtype(), "conv2d", [&](auto z) {
    using T = decltype(z);
    conv2d_typed<T>(x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr, g, w.size(0), out.data<T>());
  });
}

void CpuBackend::conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Conv2dGeometry& g,
                                       Tensor& grad_x) {
  dispatch_floating(grad_x.dtype(), "conv2d_backward_input", [&](auto z) {
    using T = decltype(z);
    conv2d_backward_input_typed<T>(grad_out.data<T>(), w.data<T>(), g, w.size(0), grad_x.data<T>());
  });
}

void CpuBackend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g,
                                        Tensor& grad_w) {
  dispatch_floating(grad_w.dtype(), "conv2d_backward_weight", [&](auto z) {
    using T = decltype(z);
    conv2d_backward_weight_typed<T>(grad_out.data<T>(), x.data<T>(), g, grad_w.size(0), grad_w.data<T>());
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
