#include "advgrad/nn/init.h"

#include <cmath>

#include "advgrad/core/grad_mode.h"

namespace advgrad::init {

namespace {
int64_t receptive_field(const Tensor& t) {
  if (t.dim() < 2)
    throw ShapeError("init: fan in/out need a tensor of rank >= 2, got " + shape_str(t.shape()));
  int64_t r = 1;
  for (int64_t i = 2; i < t.dim(); ++i) r *= t.size(i);
  return r;
}
Tensor& assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
  return t;
}
}  // namespace

int64_t fan_in(const Tensor& t) { return t.size(1) * receptive_field(t); }
int64_t fan_out(const Tensor& t) { return t.size(0) * receptive_field(t); }

Tensor& uniform_(Tensor& t, double lo, double hi, Generator& gen) {
  return assign(t, uniform(t.shape(), lo, hi, gen, t.dtype(), t.device()));
}

Tensor& normal_(Tensor& t, double mean, double std, Generator& gen) {
  Tensor n = randn(t.shape(), gen, t.dtype(), t.device());
  NoGradGuard no_grad;
  n.mul_(std);
  n.add_(full({}, mean, t.dtype(), t.device()));
  return assign(t, n);
}

Tensor& constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}

Tensor& kaiming_uniform_(Tensor& t, double a, Generator& gen) {
  double bound = std::sqrt(3.0) * std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(double(fan_in(t)));
  return uniform_(t, -bound, bound, gen);
}

Tensor& kaiming_normal_(Tensor& t, double a, Generator& gen) {
  return normal_(t, 0.0, std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(double(fan_in(t))), gen);
}

Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain) {
  double bound = std::sqrt(3.0) * gain * std::sqrt(2.0 / double(fan_in(t) + fan_out(t)));
  return uniform_(t, -bound, bound, gen);
}

Tensor& xavier_normal_(Tensor& t, Generator& gen, double gain) {
  return normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in(t) + fan_out(t))), gen);
}

}  // namespace advgrad::init
