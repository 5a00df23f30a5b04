// Conv2d and the pooling modules.
#include <cmath>

#include "nn/init.h"
#include "nn/layers.h"

namespace advgrad {

namespace {
std::string pair_str(Size2 s) { return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")"; }
}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel, Generator& gen, Size2 stride, Size2 padding,
               Size2 dilation, bool with_bias)
    : kernel_(kernel), stride_(stride), padding_(padding), dilation_(dilation) {
  if (in_channels < 1 || out_channels < 1 || kernel.h < 1 || kernel.w < 1)
    throw ValueError("Conv2d: channel counts and kernel size must be >= 1");
  Tensor w = zeros({out_channels, in_channels, kernel.h, kernel.w});
  init::kaiming_uniform_(w, std::sqrt(5.0), gen);  // = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
  weight = register_parameter("weight", w);
  if (with_bias) {
    double bound = 1.0 / std::sqrt(double(init::fan_in(w)));
    Tensor b = zeros({out_channels});
    bias = register_parameter("bias", init::uniform_(b, -bound, bound, gen));
  }
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride_, padding_, dilation_); }

std::string Conv2d::describe() const {
  return "Conv2d(" + std::to_string(weight.size(1)) + ", " + std::to_string(weight.size(0)) +
         ", kernel_size=" + pair_str(kernel_) + ", stride=" + pair_str(stride_) + ", padding=" + pair_str(padding_) +
         ", dilation=" + pair_str(dilation_) + ", bias=" + (bias.defined() ? "true" : "false") + ")";
}

std::string MaxPool2d::describe() const {
  return "MaxPool2d(kernel_size=" + pair_str(kernel_) + ", stride=" + pair_str(stride_.h ? stride_ : kernel_) +
         ", padding=" + pair_str(padding_) + ")";
}

std::string AvgPool2d::describe() const {
  return "AvgPool2d(kernel_size=" + pair_str(kernel_) + ", stride=" + pair_str(stride_.h ? stride_ : kernel_) +
         ", padding=" + pair_str(padding_) + ")";
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  if (x.dim() != 4) throw ShapeError("AdaptiveAvgPool2d: input " + shape_str(x.shape()) + " is not [N,C,H,W]");
  return mean(x, {2, 3}, true);
}

}  // namespace advgrad
