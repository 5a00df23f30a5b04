// The kernel interface. Every computation on tensor data goes through one of these entry points; the
// device of the tensors picks the implementation (backend_for). Two implementations exist:
//   reference (core/backends/reference.cpp): plain loops, one thread, the executable specification;
//   cpu       (core/backends/cpu/, a file per op family): Eigen + OpenMP, tested against reference on every kernel.
//
// Conventions for all entry points:
// - Callers have checked shapes, dtypes and devices; kernels trust them (ops in autograd/ do the checks).
// - "view" arguments may have any strides (including 0 for broadcast dims) and an offset; "dense"
//   arguments are contiguous (Tensor::is_contiguous()). Outputs are written, never read, unless stated.
// - Float kernels exist for F32 and F64; entry points that accept I64 say so.
// - Determinism: results may not depend on the number of threads. Work is split by problem shape only;
//   no floating-point atomics, no OpenMP reductions on floats.
#pragma once
#include <algorithm>
#include <cstdint>

#include "advgrad/core/tensor.h"

namespace advgrad {

enum class UnaryOp {
  // Relu: x < 0 ? 0 : x -- NaN and -0 pass through unchanged, as PyTorch's relu. sign(0) = sign(NaN) = 0.
  Neg, Exp, Log, Sqrt, Abs, Tanh, Sigmoid, Relu, Sign,
  Square, Reciprocal,
  LeakyRelu,   // x > 0 ? x : a*x (NaN stays NaN)
  PowScalar,   // x^a
  Clamp,       // min(max(x, a), b); a NaN x stays NaN
  AddScalar,   // x + a
  MulScalar,   // x * a
  Affine,      // a*x + b
};

enum class BinaryOp {
  Add, Sub, Mul, Div, Pow,
  Minimum, Maximum,  // a NaN operand gives NaN; a tie returns the first operand
  // Comparisons write 1 or 0 in the output dtype (which equals the input dtype).
  Eq, Ne, Lt, Le, Gt, Ge,
  // b <= 0 ? 0 : a -- ReLU's backward in one pass (gradient a where the output b is not <= 0): a NaN
  // output passes the gradient, as PyTorch's threshold_backward(grad, result, 0).
  PassPositive,
};

enum class ReduceOp { Sum, Max, Min };

enum class RandomKind {
  Uniform,  // U[a, b)
  Normal,   // mean a, std b
  Randint,  // integers in [a, b), output I64
};

// Geometry of a 2-D convolution or pooling window over NCHW data.
struct Conv2dGeometry {
  int64_t batch, channels, height, width;  // input
  int64_t kernel_h, kernel_w;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  // Convolution only: input channels and output channels are split into `groups` equal blocks; output
  // block j sees only input block j (groups == channels: depthwise). The weight is [O, channels/groups, KH, KW].
  int64_t groups = 1;
  // Pooling only (PyTorch's options): ceil_mode rounds the output size up, keeping a last window only if
  // it starts inside the input or its left padding; count_include_pad = false divides an average by the
  // window's real pixels instead of its size (pool_divisor).
  bool ceil_mode = false, count_include_pad = true;
  int64_t out_h() const { return out_size(height, kernel_h, stride_h, pad_h, dilation_h); }
  int64_t out_w() const { return out_size(width, kernel_w, stride_w, pad_w, dilation_w); }
  int64_t channels_per_group() const { return channels / groups; }
  // The divisor of average pooling's window (oh, ow), as PyTorch: the window clipped to the padded input
  // (it can overhang it under ceil_mode), or to the input itself when count_include_pad is false.
  int64_t pool_divisor(int64_t oh, int64_t ow) const {
    return window_extent(oh, height, kernel_h, stride_h, pad_h) * window_extent(ow, width, kernel_w, stride_w, pad_w);
  }

 private:
  int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) const {
    const int64_t span = in + 2 * p - d * (k - 1) - 1;  // >= 0, checked by the ops
    int64_t out = (ceil_mode ? span + s - 1 : span) / s + 1;
    if (ceil_mode && (out - 1) * s >= in + p) --out;  // the last window would start in the right padding
    return out;
  }
  int64_t window_extent(int64_t o, int64_t in, int64_t k, int64_t s, int64_t p) const {
    int64_t start = o * s - p, end = std::min(start + k, in + p);
    if (!count_include_pad) start = std::max<int64_t>(start, 0), end = std::min(end, in);
    return end - start;
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- element-wise ----
  // out (view, any dtype incl. I64) = value.
  virtual void fill(Tensor& out, double value) = 0;
  // dst (view) = src (view of the same shape); converts dtype (F32/F64/I64 both ways).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  // dst (view) = op(src (view, same shape)); scalars a, b as documented in UnaryOp. dst may alias src.
  virtual void unary(UnaryOp op, const Tensor& src, Tensor& dst, double a = 0, double b = 0) = 0;
  // dst (view) = op(a, b): a, b, dst share one shape (callers expand broadcast inputs with 0 strides)
  // and one dtype; I64 is accepted. dst may alias a or b element for element.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& dst) = 0;
  // dst (view) = cond != 0 ? a : b, all four of one shape; cond has the dtype of a and b.
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& dst) = 0;

  // ---- reductions; src dense, viewed as [outer, n, inner], reduced over n ----
  // dst dense [outer, inner]. Sum accepts I64. n == 0 gives 0 for Sum and is never asked for Max/Min.
  virtual void reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& dst) = 0;
  // idx dense I64 [outer, inner]: position in [0, n) of the first maximum (Max) or minimum (Min); a NaN
  // counts as the extremum and the first NaN is chosen (torch.argmax / torch.max(dim)).
  virtual void arg_reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& idx) = 0;
  // dst[o, i] = src[o, idx[o, i], i]; src dense [outer, n, inner], idx dense I64 [outer, inner] (values in [0, n)).
  virtual void gather(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner, Tensor& dst) = 0;
  // dst[o, idx[o, i], i] += src[o, i]; dst dense [outer, n, inner] (read and written), src dense [outer, inner].
  virtual void scatter_add(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                           Tensor& dst) = 0;
  // Softmax (or log-softmax if log) over n of src dense [outer, n, inner] into dst dense of the same shape.
  // Numerically stable (max subtracted), finite for inputs of magnitude 1e4.
  virtual void softmax(const Tensor& src, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& dst) = 0;

  // ---- linear algebra ----
  // For b in [0, batch): C_b = alpha * op(A_b) * op(B_b) + beta * C_b, with op(X) = X^T when trans is set.
  // A_b starts at element b*batch_stride_a of A (0 = the same matrix for every b), likewise B and C.
  // op(A_b) is M x K, op(B_b) is K x N, C_b is M x N; all row-major and dense. beta = 0 ignores C's old
  // contents (NaN included).
  virtual void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                    const Tensor& A, int64_t batch_stride_a, const Tensor& B, int64_t batch_stride_b, double beta,
                    Tensor& C, int64_t batch_stride_c) = 0;

  // ---- convolution and pooling over NCHW ----
  // cols dense [batch, channels*kernel_h*kernel_w, out_h*out_w] from x dense [batch, channels, height, width];
  // row (c, kh, kw) in that order; positions outside the input (padding) are 0.
  virtual void im2col(const Tensor& x, const Conv2dGeometry& g, Tensor& cols) = 0;
  // The adjoint: x (dense, overwritten) = sum of cols entries into the pixels they were read from.
  virtual void col2im(const Tensor& cols, const Conv2dGeometry& g, Tensor& x) = 0;
  // A whole convolution, so a backend can block it (the cpu backend builds each sample's columns in a buffer
  // that stays in cache). The defaults (core/backend.cpp) are the plain composition of im2col and gemm over
  // the whole batch; the reference backend uses them. w dense [O, channels/groups, kernel_h, kernel_w].
  // out dense [batch, O, out_h, out_w] = bias[o] (when defined: dense [O]) + W * cols(x_n), per sample n and
  // per group j: output rows j*O/groups.. take weight rows j*O/groups.. times the group's block of cols rows,
  // j*channels/groups*KH*KW.. (rows are (c, kh, kw) c-major, so a group's rows are contiguous).
  virtual void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& g, Tensor& out);
  // grad_x dense (overwritten) = col2im(W^T grad_out_n), per sample n (and per group as in conv2d).
  virtual void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Conv2dGeometry& g,
                                     Tensor& grad_x);
  // grad_w dense [O, channels/groups, kernel_h, kernel_w] (overwritten) = sum over n of grad_out_n cols(x_n)^T,
  // per group as in conv2d.
  // The order of that sum over samples is fixed by the batch size alone (backends may group samples).
  virtual void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g,
                                      Tensor& grad_w);
  // out dense [batch, channels, out_h, out_w]; idx dense I64 same shape, holding the flat h*width+w input
  // position of the first maximum in the window (padding counts as -inf and is never chosen). A NaN beats
  // everything, and a later NaN beats an earlier one: the LAST NaN of the window in (kh, kw) order is
  // chosen, as PyTorch's CPU max_pool2d (`val > maxval || isnan(val)`), so the gradient goes where its does.
  virtual void max_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out, Tensor& idx) = 0;
  // grad_x (dense, overwritten) = grad_out routed to the positions in idx (summed where windows overlap).
  virtual void max_pool2d_backward(const Tensor& grad_out, const Tensor& idx, const Conv2dGeometry& g,
                                   Tensor& grad_x) = 0;
  // Average over the window's real pixels, divided by g.pool_divisor(oh, ow) (kernel_h*kernel_w with
  // padding included, PyTorch's default, unless ceil_mode's last window overhangs or count_include_pad is off).
  virtual void avg_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out) = 0;
  virtual void avg_pool2d_backward(const Tensor& grad_out, const Conv2dGeometry& g, Tensor& grad_x) = 0;

  // ---- fused recurrent cell (the LSTM's element-wise work per time step, in one pass) ----
  // One LSTM step for `rows` = c_prev.size(0) sequences of hidden size H = c_prev.size(1), gate order i, f,
  // g, o (PyTorch's). gates dense [rows, 4H] holds the pre-activations on entry and is overwritten with the
  // activations sigmoid(i), sigmoid(f), tanh(g), sigmoid(o). c = f*c_prev + i*g and h = o*tanh(c) are
  // written to c and h, dense [rows, H]. c_prev, c, h do not overlap gates or each other.
  virtual void lstm_cell(Tensor& gates, const Tensor& c_prev, Tensor& c, Tensor& h) = 0;
  // Its adjoint: act (the activations lstm_cell left in gates), c_prev and c as in lstm_cell, dh and dc the
  // gradients flowing into h and c (dense [rows, H]). Writes dgates (dense [rows, 4H], gradient of the
  // pre-activations) and dc_prev (dense [rows, H], gradient of c_prev). Outputs may not alias inputs.
  virtual void lstm_cell_backward(const Tensor& act, const Tensor& c_prev, const Tensor& c, const Tensor& dh,
                                  const Tensor& dc, Tensor& dgates, Tensor& dc_prev) = 0;

  // ---- the attacks' threat model: exact projections (attacks/threat_model.h) ----
  // Defaults (core/backends/host_projection.cpp) work on host memory, one sample per task in parallel; the
  // reference backend has its own sequential version. adv, x and out are dense of one shape, F32 or F64.
  // out = the point of {z : |z - x| <= eps, 0 <= z <= 1} nearest adv, element by element, computed in double
  // and rounded to the dtype toward x so the rounding cannot leave the interval; a NaN in adv gives x.
  virtual void project_linf(const Tensor& adv, const Tensor& x, double eps, Tensor& out);
  // Per sample (the first `samples` rows, each numel / samples elements): d = adv - x (NaN counted as 0)
  // scaled by eps / ||d||_2 when that is > eps, then x + d clipped to [0,1] and rounded toward x; while the
  // rounded point is still outside the ball, the scale shrinks by 1e-7 * 2^min(k, 20) relative (k = 0, 1,
  // ..., at most 61 tries).
  virtual void project_l2(const Tensor& adv, const Tensor& x, int64_t samples, double eps, Tensor& out);

  // ---- random numbers ----
  // out dense; element i gets the value for counter index offset + i of (seed, stream) -- see Generator.
  // Uniform/Normal for F32/F64; Randint writes I64 in [a, b).
  virtual void random(RandomKind kind, Tensor& out, uint64_t seed, uint64_t stream, uint64_t offset, double a,
                      double b) = 0;
};

// The backend that runs kernels for tensors on `device`.
Backend& backend_for(Device device);
Backend& reference_backend();
Backend& cpu_backend();

}  // namespace advgrad
