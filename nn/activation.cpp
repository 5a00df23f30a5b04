// Parameter-free layers that need more than one line: LeakyReLU's description, Normalize, Dropout.
#include "advgrad/nn/layers.h"

namespace advgrad {

std::string LeakyReLU::describe() const { return "LeakyReLU(negative_slope=" + std::to_string(slope_) + ")"; }

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
  if (mean_.empty() || mean_.size() != std_.size())
    throw ValueError("Normalize: mean and std need the same, non-zero number of channels");
  for (double s : std_)
    if (!(s > 0)) throw ValueError("Normalize: every std must be > 0");
}

Tensor Normalize::forward(const Tensor& x) {
  int64_t C = int64_t(mean_.size());
  if (x.dim() < 2 || x.size(1) != C)
    throw ShapeError("Normalize: input " + shape_str(x.shape()) + " does not have " + std::to_string(C) +
                     " channels in dim 1");
  Shape cs(size_t(x.dim()), 1);
  cs[1] = C;
  Tensor m = from_vector(mean_, cs, x.device()).to(x.dtype());
  Tensor s = from_vector(std_, cs, x.device()).to(x.dtype());
  return div(sub(x, m), s);
}

std::string Normalize::describe() const { return "Normalize(channels=" + std::to_string(mean_.size()) + ")"; }

Dropout::Dropout(double p, uint64_t seed) : p_(p), gen_(seed) {
  if (!(p >= 0 && p <= 1)) throw ValueError("Dropout: p must be in [0, 1], got " + std::to_string(p));
  register_generator("generator", gen_);  // its counter is checkpoint state (Module::named_generators)
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0) return x;
  if (p_ == 1) return mul(x, 0.0);
  Tensor keep = ge(rand(x.shape(), gen_, x.dtype(), x.device()), full({}, p_, x.dtype(), x.device()));
  return mul(x, mul(keep, 1.0 / (1.0 - p_)));
}

std::string Dropout::describe() const { return "Dropout(p=" + std::to_string(p_) + ")"; }

}  // namespace advgrad
