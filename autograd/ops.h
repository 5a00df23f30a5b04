// Differentiable operations on tensors. Each records a graph node when grad mode is on and an input
// requires grad (autograd/function.h). Inputs of a binary op must share dtype and device; shapes
// broadcast as in NumPy. Errors name the op and the shapes involved.
#pragma once
#include <string>
#include <vector>

#include "advgrad/core/grad_mode.h"
#include "advgrad/core/tensor.h"

namespace advgrad {

// ---- element-wise, differentiable ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);  // d/db uses log(a); 0 where a == 0
Tensor minimum(const Tensor& a, const Tensor& b);  // ties split the gradient equally (as PyTorch)
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);       // d/dx = sign(x), 0 at 0
Tensor square(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);      // d/dx = 1 where x > 0
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor clamp(const Tensor& x, double lo, double hi);  // gradient passes where lo <= x <= hi
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond != 0 ? a : b; cond not differentiated

// ---- element-wise, not differentiable (results never require grad) ----
Tensor sign(const Tensor& x);  // -1, 0, 1
// Comparisons return 1/0 in the inputs' dtype (int64 labels compare to int64 results).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);  // int64, first maximum
Tensor one_hot(const Tensor& labels, int64_t num_classes, DType dtype = DType::F32);  // labels int64 -> [..., C]

// ---- reductions (empty axes = all axes; negative axes count from the end) ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);  // grad to the first max
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);

// out[..., 0, ...] = x[..., index[..., 0, ...], ...] along `axis`: index is int64 with x's shape except 1
// at `axis` (e.g. the logit of each sample's label: gather(logits [N,C], 1, labels [N,1]) -> [N,1]).
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);

// ---- shape and movement (views share storage where the layout allows) ----
Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1
Tensor flatten(const Tensor& x, int64_t start_axis = 0, int64_t end_axis = -1);
Tensor unsqueeze(const Tensor& x, int64_t axis);
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor permute(const Tensor& x, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast view; gradient sums back
Tensor contiguous(const Tensor& x);  // x itself if dense, else a dense copy (differentiable)
// Elements start, start+step, ... below end along axis (Python slicing: negative bounds count from the
// end and are clamped; step >= 1).
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
// Constant padding as torch.nn.functional.pad: pads = {before_last, after_last, before_2nd_last, ...}, >= 0.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis);
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t axis);                 // pieces of `size` (last may be smaller)
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);  // sizes must sum to the dim

// ---- linear algebra ----
// [M,K] x [K,N], or batched [...,M,K] x [...,K,N] with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
// y = x W^T + b for x [..., in], weight [out, in], bias [out] (may be undefined) -- one GEMM each way.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- convolution and pooling over NCHW ----
struct Size2 {
  int64_t h, w;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit so that 3 means {3,3}
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};
// x [N,C,H,W], weight [O,C/groups,KH,KW], bias [O] or undefined -> [N,O,OH,OW]. groups splits the channels
// into blocks convolved separately (groups == C == O: depthwise); it must divide C and O.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
              Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);
// stride 0 means stride = kernel (PyTorch's default); padding at most half the kernel. Padding counts as
// -inf for max, as 0 for avg. ceil_mode rounds the output size up (a last window is kept if it starts
// inside the input or its left padding). avg's divisor is the window clipped to the padded input
// (kernel_h*kernel_w except ceil_mode's overhanging windows), or its real pixels if !count_include_pad.
// All as PyTorch's max_pool2d / avg_pool2d.
Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0, Size2 dilation = 1,
                  bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride = 0, Size2 padding = 0, bool ceil_mode = false,
                  bool count_include_pad = true);

// ---- softmax family and losses ----
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
enum class Reduction { Mean, Sum, None };
// logits [N,C], target int64 [N] with values in [0,C). Fused with log_softmax: finite for logits of 1e4.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean);
// log_probs [N,C], target int64 [N].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// ---- recurrent (autograd/ops_rnn.cpp) ----
// The LSTM layer over a whole sequence, fused: x [T, N, I] (time-major, any strides), h0, c0 [N, H],
// w_ih [4H, I], w_hh [4H, H], b_ih and b_hh [4H] (both defined or both undefined); gate order i, f, g, o
// as PyTorch. Returns [2, T, N, H]: [0] holds the hidden states h_1..h_T, [1] the cell states c_1..c_T.
Tensor lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                     const Tensor& b_ih, const Tensor& b_hh);
// The same result from graph ops (linear, split, sigmoid, tanh, mul, add per step): the readable reference.
Tensor lstm_sequence_composite(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh);

// ---- operators ----
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }

}  // namespace advgrad
