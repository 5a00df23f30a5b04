// Convolution as im2col + GEMM, and pooling, over NCHW tensors.
#include "advgrad/autograd/ops_util.h"

namespace advgrad {

using namespace detail;

namespace {

Conv2dGeometry geometry(const Tensor& x, int64_t kh, int64_t kw, Size2 stride, Size2 padding, Size2 dilation,
                        const char* op) {
  if (x.dim() != 4) throw ShapeError(std::string(op) + ": input " + shape_str(x.shape()) + " is not [N,C,H,W]");
  if (stride.h < 1 || stride.w < 1 || dilation.h < 1 || dilation.w < 1 || padding.h < 0 || padding.w < 0 || kh < 1 ||
      kw < 1)
    throw ValueError(std::string(op) + ": kernel, stride and dilation must be >= 1 and padding >= 0");
  Conv2dGeometry g;
  g.batch = x.size(0), g.channels = x.size(1), g.height = x.size(2), g.width = x.size(3);
  g.kernel_h = kh, g.kernel_w = kw;
  g.stride_h = stride.h, g.stride_w = stride.w, g.pad_h = padding.h, g.pad_w = padding.w;
  g.dilation_h = dilation.h, g.dilation_w = dilation.w;
  if (g.height + 2 * g.pad_h < g.dilation_h * (kh - 1) + 1 || g.width + 2 * g.pad_w < g.dilation_w * (kw - 1) + 1)
    throw ShapeError(std::string(op) + ": kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                     " larger than the padded input " + shape_str(x.shape()));
  return g;
}

// Pooling windows: stride 0 means "the kernel size" (PyTorch's default); padding at most half the kernel
// (PyTorch's rule, which also keeps every window, ceil_mode's last one included, on some real pixel).
Conv2dGeometry pool_geometry(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation,
                             bool ceil_mode, const char* op) {
  check_defined(x, op, "input");
  check_floating(x, op);
  if (stride.h == 0 && stride.w == 0) stride = kernel;
  Conv2dGeometry geo = geometry(x, kernel.h, kernel.w, stride, padding, dilation, op);
  if (padding.h * 2 > kernel.h || padding.w * 2 > kernel.w)
    throw ValueError(std::string(op) + ": padding (" + std::to_string(padding.h) + ", " + std::to_string(padding.w) +
                     ") must be at most half the kernel size (" + std::to_string(kernel.h) + ", " +
                     std::to_string(kernel.w) + ")");
  geo.ceil_mode = ceil_mode;
  return geo;
}

// The window of a traced conv or pool, from the geometry that ran (pooling's stride 0 already resolved).
std::vector<TraceAttribute> window_attributes(const Conv2dGeometry& g) {
  return {ints("kernel", {g.kernel_h, g.kernel_w}), ints("stride", {g.stride_h, g.stride_w}),
          ints("padding", {g.pad_h, g.pad_w}), ints("dilation", {g.dilation_h, g.dilation_w}), ints("groups", {g.groups}),
          ints("ceil_mode", {g.ceil_mode}), ints("count_include_pad", {g.count_include_pad})};
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding, Size2 dilation,
              int64_t groups) {
  check_compatible(x, weight, "conv2d");
  check_floating(x, "conv2d");
  if (groups < 1) throw ValueError("conv2d: groups must be >= 1, got " + std::to_string(groups));
  if (weight.dim() != 4 || x.dim() != 4)
    throw ShapeError("conv2d: input " + shape_str(x.shape()) + " and weight " + shape_str(weight.shape()) +
                     ": need [N,C,H,W] and [O,C/groups,KH,KW]");
  const int64_t C = x.size(1), O = weight.size(0);
  if (C % groups != 0 || O % groups != 0)
    throw ValueError("conv2d: groups " + std::to_string(groups) + " must divide both the input channels (" +
                     std::to_string(C) + ") and the output channels (" + std::to_string(O) + ")");
  if (weight.size(1) * groups != C)
    throw ShapeError("conv2d: input " + shape_str(x.shape()) + " and weight " + shape_str(weight.shape()) +
                     " with groups " + std::to_string(groups) + ": the weight's dim 1 must be C/groups = " +
                     std::to_string(C / groups));
  Conv2dGeometry geo = geometry(x, weight.size(2), weight.size(3), stride, padding, dilation, "conv2d");
  geo.groups = groups;
  if (bias.defined()) {
    check_compatible(x, bias, "conv2d");
    if (bias.shape() != Shape{O})
      throw ShapeError("conv2d: bias " + shape_str(bias.shape()) + " for " + std::to_string(O) + " output channels");
  }
  Tensor X = x.dense(), W = weight.dense(), b = bias.defined() ? bias.detach().dense() : Tensor();
  Tensor out = Tensor::empty({geo.batch, O, geo.out_h(), geo.out_w()}, x.dtype(), x.device());
  backend_of(x).conv2d(X, W, b, geo, out);
  if (Tracer* t = active_tracer()) t->record({"conv2d", {x, weight, bias}, {out}, window_attributes(geo)});
  if (!should_record({x, weight, bias})) return out;
  SavedTensor sx(X, "conv2d"), sw(W, "conv2d");
  return record("conv2d", {x, weight, bias}, out, [sx, sw, geo](const Tensor& g, const std::vector<bool>& need) {
    Tensor G = g.dense(), Wv = sw.unpack();
    Backend& be = backend_of(G);
    Tensor gx, gw, gb;
    if (need[0]) {
      gx = Tensor::empty({geo.batch, geo.channels, geo.height, geo.width}, G.dtype(), G.device());
      be.conv2d_backward_input(G, Wv, geo, gx);
    }
    if (need[1]) {
      gw = Tensor::empty(Wv.shape(), G.dtype(), G.device());
      be.conv2d_backward_weight(G, sx.unpack(), geo, gw);
    }
    if (need[2]) gb = sum(G, {0, 2, 3});
    return std::vector<Tensor>{gx, gw, gb};
  });
}

Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation, bool ceil_mode) {
  Conv2dGeometry geo = pool_geometry(x, kernel, stride, padding, dilation, ceil_mode, "max_pool2d");
  Tensor X = x.dense();
  Shape out_shape{geo.batch, geo.channels, geo.out_h(), geo.out_w()};
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor idx = Tensor::empty(out_shape, DType::I64, x.device());
  backend_of(x).max_pool2d(X, geo, out, idx);
  if (Tracer* t = active_tracer()) t->record({"max_pool2d", {x}, {out}, window_attributes(geo)});
  if (!should_record({x})) return out;
  return record("max_pool2d", {x}, out, [idx, geo](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::empty({geo.batch, geo.channels, geo.height, geo.width}, g.dtype(), g.device());
    backend_of(g).max_pool2d_backward(g.dense(), idx, geo, gx);
    return std::vector<Tensor>{gx};
  });
}

Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, bool ceil_mode,
                  bool count_include_pad) {
  Conv2dGeometry geo = pool_geometry(x, kernel, stride, padding, 1, ceil_mode, "avg_pool2d");
  geo.count_include_pad = count_include_pad;
  Tensor out = Tensor::empty({geo.batch, geo.channels, geo.out_h(), geo.out_w()}, x.dtype(), x.device());
  backend_of(x).avg_pool2d(x.dense(), geo, out);
  if (Tracer* t = active_tracer()) t->record({"avg_pool2d", {x}, {out}, window_attributes(geo)});
  if (!should_record({x})) return out;
  return record("avg_pool2d", {x}, out, [geo](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::empty({geo.batch, geo.channels, geo.height, geo.width}, g.dtype(), g.device());
    backend_of(g).avg_pool2d_backward(g.dense(), geo, gx);
    return std::vector<Tensor>{gx};
  });
}

}  // namespace advgrad
