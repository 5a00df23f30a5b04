// Neural-network ONNX ops over NCHW: Conv (grouped; asymmetric pads as an explicit pad), Gemm, MatMul, MaxPool,
// AveragePool, GlobalAveragePool, BatchNormalization (PyTorch's running-statistics update in training
// mode) and Dropout (identity in eval mode).
#include <cmath>

#include "advgrad/onnx/op_table.h"

namespace advgrad::onnx_import {
namespace {

// ONNX pads for 2-D: [top, left, bottom, right].
struct Pads2 {
  int64_t top = 0, left = 0, bottom = 0, right = 0;
  bool symmetric() const { return top == bottom && left == right; }
  bool zero() const { return top == 0 && left == 0 && bottom == 0 && right == 0; }
};

// The spatial attributes shared by Conv and the pools, checked for 2-D.
struct Window {
  int64_t kh = 0, kw = 0;
  Size2 stride{1}, dilation{1};
  Pads2 pads;
};

std::vector<int64_t> two_ints(const NodeInfo& node, const char* name, int64_t fallback) {
  std::vector<int64_t> v = attr_ints(node, name, {fallback, fallback});
  if (v.size() != 2) throw NodeError(std::string("attribute '") + name + "' = " + join(v) + ": only 2-D (two values) is supported");
  // Bounded above too: kernel * dilation and the output-size arithmetic stay far from int64 overflow.
  for (int64_t x : v)
    if (x < 1 || x > 65536) throw NodeError(std::string("attribute '") + name + "' = " + join(v) + " must be in [1, 65536]");
  return v;
}

Window read_window(const NodeInfo& node, bool needs_kernel_shape) {
  const std::string auto_pad = attr_string(node, "auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID")
    throw NodeError("attribute 'auto_pad' = " + auto_pad + " is not supported (NOTSET, VALID; write explicit pads)");
  Window w;
  if (needs_kernel_shape || has_attr(node, "kernel_shape")) {
    if (!has_attr(node, "kernel_shape")) throw NodeError("attribute 'kernel_shape' is required");
    auto k = two_ints(node, "kernel_shape", 1);
    w.kh = k[0], w.kw = k[1];
  }
  auto s = two_ints(node, "strides", 1), d = two_ints(node, "dilations", 1);
  w.stride = Size2(s[0], s[1]);
  w.dilation = Size2(d[0], d[1]);
  std::vector<int64_t> p = attr_ints(node, "pads", {0, 0, 0, 0});
  if (p.size() != 4) throw NodeError("attribute 'pads' = " + join(p) + ": only 2-D (four values) is supported");
  for (int64_t x : p)
    if (x < 0 || x > 65536) throw NodeError("attribute 'pads' = " + join(p) + " must be in [0, 65536]");
  w.pads = {p[0], p[1], p[2], p[3]};
  return w;
}

void check_nchw(const Tensor& x, const char* op) {
  if (x.dim() != 4) throw NodeError(std::string(op) + ": input " + shape_str(x.shape()) + " is not [N,C,H,W] (only 2-D is supported)");
}

// torch.nn.functional.pad order: {left, right, top, bottom} for the last two dims.
Tensor pad_explicitly(const Tensor& x, const Pads2& p, double value) {
  return pad(x, {p.left, p.right, p.top, p.bottom}, value);
}

Kernel conv_kernel(const NodeInfo& node) {
  const Window w = read_window(node, false);
  const int64_t groups = attr_int(node, "group", 1);
  if (groups < 1) throw NodeError("attribute 'group' = " + std::to_string(groups) + " must be >= 1");
  return unary([w, groups](const std::vector<const Value*>& in) {
    Tensor x = float_input(in, 0, "X");
    const Tensor& weight = float_input(in, 1, "W");
    const Tensor bias = has_input(in, 2) ? float_input(in, 2, "B") : Tensor();
    check_nchw(x, "Conv");
    if (weight.dim() != 4) throw NodeError("weight " + shape_str(weight.shape()) + " is not [O,C/group,KH,KW]");
    if ((w.kh && w.kh != weight.size(2)) || (w.kw && w.kw != weight.size(3)))
      throw NodeError("attribute 'kernel_shape' does not match the weight " + shape_str(weight.shape()));
    if (x.size(1) != weight.size(1) * groups || weight.size(0) % groups != 0)
      throw NodeError("input " + shape_str(x.shape()) + ", weight " + shape_str(weight.shape()) + " and group " +
                      std::to_string(groups) + " do not fit");
    Size2 padding(w.pads.top, w.pads.left);
    if (!w.pads.symmetric()) x = pad_explicitly(x, w.pads, 0.0), padding = Size2(0);
    return Value::of(conv2d(x, weight, bias, w.stride, padding, w.dilation, groups));
  });
}

// Extra bottom/right padding that makes floor-mode pooling give ceil_mode's output size (a window may start
// in the right/bottom padding only if it starts inside the input or the left padding, as ONNX and PyTorch).
int64_t ceil_extra(int64_t size, int64_t before, int64_t after, int64_t k, int64_t s) {
  const int64_t span = size + before + after - k;
  int64_t out = (span + s - 1) / s + 1;
  if ((out - 1) * s >= size + before) --out;
  return std::max<int64_t>(0, (out - 1) * s + k - (size + before + after));
}

// Padding the pooling kernels take themselves: the same on both sides and at most half the kernel (as
// PyTorch); other ONNX pads become an explicit pad op first.
bool kernel_pads(const Pads2& p, int64_t kh, int64_t kw) { return p.symmetric() && 2 * p.top <= kh && 2 * p.left <= kw; }

Kernel max_pool_kernel(const NodeInfo& node) {
  const Window w = read_window(node, true);
  const bool ceil_mode = attr_int(node, "ceil_mode", 0) != 0;
  if (attr_int(node, "storage_order", 0) != 0) throw NodeError("attribute 'storage_order' = 1 is not supported");
  if (node.outputs.size() > 1 && !node.outputs[1].empty()) throw NodeError("output 'Indices' is not supported");
  return unary([w, ceil_mode](const std::vector<const Value*>& in) {
    const Tensor& x = float_input(in, 0, "X");
    check_nchw(x, "MaxPool");
    const Size2 k(w.kh, w.kw);
    if (kernel_pads(w.pads, w.kh, w.kw))
      return Value::of(max_pool2d(x, k, w.stride, Size2(w.pads.top, w.pads.left), w.dilation, ceil_mode));
    // Explicit -inf padding never wins a max; ceil_mode becomes the extra bottom/right padding that gives
    // its output size in floor mode.
    Pads2 p = w.pads;
    if (ceil_mode) {
      p.bottom += ceil_extra(x.size(2), p.top, p.bottom, (w.kh - 1) * w.dilation.h + 1, w.stride.h);
      p.right += ceil_extra(x.size(3), p.left, p.right, (w.kw - 1) * w.dilation.w + 1, w.stride.w);
    }
    return Value::of(max_pool2d(pad_explicitly(x, p, -INFINITY), k, w.stride, 0, w.dilation));
  });
}

Kernel average_pool_kernel(const NodeInfo& node) {
  const Window w = read_window(node, true);
  const bool ceil_mode = attr_int(node, "ceil_mode", 0) != 0;
  const bool count_include_pad = attr_int(node, "count_include_pad", 0) != 0;
  if (ceil_mode && !kernel_pads(w.pads, w.kh, w.kw))
    throw NodeError("attribute 'ceil_mode' = 1 with asymmetric pads or pads over half the kernel is not supported");
  return unary([w, ceil_mode, count_include_pad](const std::vector<const Value*>& in) {
    Tensor x = float_input(in, 0, "X");
    check_nchw(x, "AveragePool");
    const Size2 k(w.kh, w.kw);
    if (kernel_pads(w.pads, w.kh, w.kw))
      return Value::of(avg_pool2d(x, k, w.stride, Size2(w.pads.top, w.pads.left), ceil_mode, count_include_pad));
    x = pad_explicitly(x, w.pads, 0.0);
    Tensor y = avg_pool2d(x, k, w.stride, 0);  // divides by kh*kw: the explicit padding counted
    if (count_include_pad) return Value::of(y);
    // Divide by the real pixels instead: the same pooling of the padded ones gives each window's real fraction.
    Tensor real = pad_explicitly(ones({1, 1, x.size(2) - w.pads.top - w.pads.bottom, x.size(3) - w.pads.left - w.pads.right}, x.dtype()),
                                 w.pads, 0.0);
    return Value::of(y / avg_pool2d(real, k, w.stride, 0));
  });
}

Kernel gemm_kernel(const NodeInfo& node) {
  const double alpha = attr_float(node, "alpha", 1.0), beta = attr_float(node, "beta", 1.0);
  const bool trans_a = attr_int(node, "transA", 0) != 0, trans_b = attr_int(node, "transB", 0) != 0;
  return unary([=](const std::vector<const Value*>& in) {
    Tensor a = float_input(in, 0, "A"), b = float_input(in, 1, "B");
    if (a.dim() != 2 || b.dim() != 2) throw NodeError("A " + shape_str(a.shape()) + " and B " + shape_str(b.shape()) + " must be 2-D");
    const Tensor c = has_input(in, 2) ? float_input(in, 2, "C") : Tensor();
    // The Linear layer's form, one GEMM each way: y = x W^T + b.
    if (!trans_a && trans_b && alpha == 1.0 && (!c.defined() || (beta == 1.0 && c.dim() == 1 && c.size(0) == b.size(0))))
      return Value::of(linear(a, b, c));
    if (trans_a) a = transpose(a, 0, 1);
    if (trans_b) b = transpose(b, 0, 1);
    Tensor y = matmul(a, b);
    if (alpha != 1.0) y = y * alpha;
    if (c.defined()) y = y + (beta == 1.0 ? c : c * beta);
    return Value::of(y);
  });
}

// BatchNormalization: eval mode uses the running statistics; training mode (the module's train()) the
// batch's, and updates the buffers as PyTorch: running = m * running + (1 - m) * batch, with the unbiased
// variance (ONNX's momentum m is 1 - PyTorch's).
Kernel batch_norm_kernel(const NodeInfo& node) {
  const double eps = attr_float(node, "epsilon", 1e-5), momentum = attr_float(node, "momentum", 0.9);
  for (size_t i = 1; i < node.outputs.size(); ++i)
    if (!node.outputs[i].empty() && i > 2) throw NodeError("outputs beyond running_mean/running_var are not supported");
  return [eps, momentum](const std::vector<const Value*>& in, RunContext& ctx) {
    const Tensor& x = float_input(in, 0, "X");
    const Tensor &scale = float_input(in, 1, "scale"), &bias = float_input(in, 2, "B");
    Tensor running_mean = float_input(in, 3, "input_mean"), running_var = float_input(in, 4, "input_var");
    if (x.dim() < 2) throw NodeError("input " + shape_str(x.shape()) + " has no channel axis");
    const int64_t C = x.size(1);
    for (const Tensor* t : {&scale, &bias, static_cast<const Tensor*>(&running_mean), static_cast<const Tensor*>(&running_var)})
      if (t->dim() != 1 || t->size(0) != C) throw NodeError("a per-channel input is " + shape_str(t->shape()) + ", expected [" + std::to_string(C) + "]");
    Shape channel(size_t(x.dim()), 1);
    channel[1] = C;
    std::vector<int64_t> axes{0};
    for (int64_t a = 2; a < x.dim(); ++a) axes.push_back(a);
    const Tensor w = reshape(scale, channel), b = reshape(bias, channel);
    if (!ctx.training) {
      Tensor y = (x - reshape(running_mean, channel)) / sqrt(reshape(running_var, channel) + eps) * w + b;
      return std::vector<Value>{Value::of(y), Value::of(running_mean), Value::of(running_var)};
    }
    const int64_t count = x.numel() / C;
    if (count < 2) throw NodeError("training needs more than one value per channel, got input " + shape_str(x.shape()));
    Tensor mu = mean(x, axes, true);
    Tensor centered = x - mu;
    Tensor var = mean(square(centered), axes, true);  // biased: normalises
    Tensor y = centered / sqrt(var + eps) * w + b;
    {
      NoGradGuard no_grad;
      Tensor unbiased = var * (double(count) / double(count - 1));
      running_mean.mul_(momentum).add_(reshape(mu.detach(), {C}), 1.0 - momentum);
      running_var.mul_(momentum).add_(reshape(unbiased.detach(), {C}), 1.0 - momentum);
    }
    return std::vector<Value>{Value::of(y), Value::of(running_mean), Value::of(running_var)};
  };
}

// Dropout: ratio is an attribute in opset 11 and an optional input since 12 (with training_mode, which
// advgrad replaces by the module's train()/eval()). The mask is drawn from the model's generator.
Kernel dropout_kernel(const NodeInfo& node) {
  const double attr_ratio = attr_float(node, "ratio", 0.5);
  const bool ratio_is_input = node.opset >= 12;
  return [attr_ratio, ratio_is_input](const std::vector<const Value*>& in, RunContext& ctx) {
    const Tensor& x = float_input(in, 0, "data");
    const double p = ratio_is_input && has_input(in, 1) ? scalar_input(in, 1, "ratio") : (ratio_is_input ? 0.5 : attr_ratio);
    if (!(p >= 0 && p < 1)) throw NodeError("ratio " + std::to_string(p) + " is outside [0, 1)");
    // The mask output is given only in training (PyTorch's exports never read it); eval allocates nothing.
    if (!ctx.training || p == 0) return std::vector<Value>{Value::of(x), Value()};
    Tensor keep = ge(rand(x.shape(), *ctx.dropout_generator, x.dtype(), x.device()), full({}, p, x.dtype(), x.device()));
    return std::vector<Value>{Value::of(x * (keep * (1.0 / (1.0 - p)))), Value::of(keep)};
  };
}

}  // namespace

void add_nn_ops(OpTable& t) {
  t["Conv"] = {11, 17, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
               [](const NodeInfo& n, const std::vector<const Value*>&) { return conv_kernel(n); }};
  t["MaxPool"] = {11, 17, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"},
                  [](const NodeInfo& n, const std::vector<const Value*>&) { return max_pool_kernel(n); }};
  t["AveragePool"] = {11, 17, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"},
                      [](const NodeInfo& n, const std::vector<const Value*>&) { return average_pool_kernel(n); }};
  t["GlobalAveragePool"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      const Tensor& x = float_input(in, 0, "X");
      if (x.dim() < 3) throw NodeError("input " + shape_str(x.shape()) + " has no spatial axes");
      std::vector<int64_t> axes;
      for (int64_t a = 2; a < x.dim(); ++a) axes.push_back(a);
      return Value::of(mean(x, axes, true));
    });
  };
  t["Gemm"] = {11, 17, {"alpha", "beta", "transA", "transB"},
               [](const NodeInfo& n, const std::vector<const Value*>&) { return gemm_kernel(n); }};
  t["MatMul"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      const Tensor &a = float_input(in, 0, "A"), &b = float_input(in, 1, "B");
      if (a.dim() < 2 || b.dim() < 2) throw NodeError("1-D operands " + shape_str(a.shape()) + " x " + shape_str(b.shape()) + " are not supported");
      return Value::of(matmul(a, b));
    });
  };
  t["BatchNormalization"] = {11, 17, {"epsilon", "momentum", "training_mode"},
                             [](const NodeInfo& n, const std::vector<const Value*>&) { return batch_norm_kernel(n); }};
  OpSpec dropout{11, 17, {"ratio", "seed"}, [](const NodeInfo& n, const std::vector<const Value*>&) { return dropout_kernel(n); }};
  dropout.foldable = false;
  t["Dropout"] = dropout;
}

}  // namespace advgrad::onnx_import
