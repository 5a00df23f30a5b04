// Conv2d and the pooling modules.
#include <cmath>

#include "advgrad/nn/init.h"
#include "advgrad/nn/layers.h"

namespace advgrad {

namespace {
std::string pair_str(Size2 s) { return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")"; }
}  // namespace

Conv2d::Conv2d(const Conv2dOptions& options, Generator& gen) : options_(options) {
  const int64_t in = options.in_channels(), out = options.out_channels(), groups = options.groups();
  const Size2 kernel = options.kernel();
  if (in < 1 || out < 1 || kernel.h < 1 || kernel.w < 1)
    throw ValueError("Conv2d: channel counts and kernel size must be >= 1");
  if (groups < 1 || in % groups != 0 || out % groups != 0)
    throw ValueError("Conv2d: groups " + std::to_string(groups) + " must be >= 1 and divide both in_channels (" +
                     std::to_string(in) + ") and out_channels (" + std::to_string(out) + ")");
  Tensor w = zeros({out, in / groups, kernel.h, kernel.w});
  init::kaiming_uniform_(w, std::sqrt(5.0), gen);  // = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
  weight = register_parameter("weight", w);
  if (options.bias()) {
    double bound = 1.0 / std::sqrt(double(init::fan_in(w)));
    Tensor b = zeros({out});
    bias = register_parameter("bias", init::uniform_(b, -bound, bound, gen));
  }
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel, Generator& gen, Size2 stride, Size2 padding,
               Size2 dilation, bool with_bias)
    : Conv2d(Conv2dOptions(in_channels, out_channels, kernel)
                 .stride(stride)
                 .padding(padding)
                 .dilation(dilation)
                 .bias(with_bias),
             gen) {}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options_.stride(), options_.padding(), options_.dilation(), options_.groups());
}

std::string Conv2d::describe() const {
  const Conv2dOptions& o = options_;
  return "Conv2d(" + std::to_string(o.in_channels()) + ", " + std::to_string(o.out_channels()) +
         ", kernel_size=" + pair_str(o.kernel()) + ", stride=" + pair_str(o.stride()) +
         ", padding=" + pair_str(o.padding()) + ", dilation=" + pair_str(o.dilation()) +
         (o.groups() != 1 ? ", groups=" + std::to_string(o.groups()) : std::string()) +
         ", bias=" + (bias.defined() ? "true" : "false") + ")";
}

namespace {
std::string pool_stride_str(Size2 stride, Size2 kernel) { return pair_str(stride.h ? stride : kernel); }
}  // namespace

std::string MaxPool2d::describe() const {
  const MaxPool2dOptions& o = options_;
  return "MaxPool2d(kernel_size=" + pair_str(o.kernel()) + ", stride=" + pool_stride_str(o.stride(), o.kernel()) +
         ", padding=" + pair_str(o.padding()) + ", dilation=" + pair_str(o.dilation()) +
         ", ceil_mode=" + (o.ceil_mode() ? "true" : "false") + ")";
}

std::string AvgPool2d::describe() const {
  const AvgPool2dOptions& o = options_;
  return "AvgPool2d(kernel_size=" + pair_str(o.kernel()) + ", stride=" + pool_stride_str(o.stride(), o.kernel()) +
         ", padding=" + pair_str(o.padding()) + ", ceil_mode=" + (o.ceil_mode() ? "true" : "false") +
         ", count_include_pad=" + (o.count_include_pad() ? "true" : "false") + ")";
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  if (x.dim() != 4) throw ShapeError("AdaptiveAvgPool2d: input " + shape_str(x.shape()) + " is not [N,C,H,W]");
  return mean(x, {2, 3}, true);
}

}  // namespace advgrad
