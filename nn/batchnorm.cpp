#include "advgrad/autograd/trace.h"
#include "advgrad/nn/layers.h"

namespace advgrad {

BatchNorm::BatchNorm(int64_t num_features, int spatial_dims, double eps, double momentum)
    : features_(num_features), spatial_dims_(spatial_dims), eps_(eps), momentum_(momentum) {
  if (num_features < 1) throw ValueError("BatchNorm: num_features must be >= 1");
  weight = register_parameter("weight", ones({num_features}));
  bias = register_parameter("bias", zeros({num_features}));
  running_mean = register_buffer("running_mean", zeros({num_features}));
  running_var = register_buffer("running_var", ones({num_features}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::I64));
}

std::string BatchNorm::describe() const {
  return std::string(spatial_dims_ == 2 ? "BatchNorm2d(" : "BatchNorm1d(") + std::to_string(features_) +
         ", eps=" + std::to_string(eps_) + ", momentum=" + std::to_string(momentum_) + ")";
}

Tensor BatchNorm::forward(const Tensor& x) {
  bool ok = spatial_dims_ == 2 ? x.dim() == 4 : (x.dim() == 2 || x.dim() == 3);
  if (!ok || x.size(1) != features_)
    throw ShapeError(std::string(spatial_dims_ == 2 ? "BatchNorm2d" : "BatchNorm1d") + "(" +
                     std::to_string(features_) + "): input " + shape_str(x.shape()) +
                     (spatial_dims_ == 2 ? " is not [N,C,H,W]" : " is not [N,C] or [N,C,L]") + " with C = " +
                     std::to_string(features_));
  // Traced as one op (an exporter writes BatchNormalization with the running statistics, so a re-imported
  // model still fine-tunes as BatchNorm), not as the arithmetic below.
  TraceComposite composite;
  Tensor y = normalize(x);
  if (Tracer* t = composite.tracer())
    t->record({"batch_norm", {x, weight, bias, running_mean, running_var}, {y},
               {real("epsilon", eps_), real("momentum", momentum_), ints("training", {is_training()})}});
  return y;
}

Tensor BatchNorm::normalize(const Tensor& x) {
  // Per-channel statistics over every axis but 1; [1,C,1,...] shapes broadcast against x.
  std::vector<int64_t> axes{0};
  Shape channel_shape(size_t(x.dim()), 1);
  channel_shape[1] = features_;
  for (int64_t a = 2; a < x.dim(); ++a) axes.push_back(a);
  Tensor w = reshape(weight, channel_shape), b = reshape(bias, channel_shape);
  Tensor rm = reshape(running_mean, channel_shape), rv = reshape(running_var, channel_shape);
  if (x.dtype() != weight.dtype()) {
    w = w.to(x.dtype()), b = b.to(x.dtype()), rm = rm.to(x.dtype()), rv = rv.to(x.dtype());
  }
  if (!is_training()) return add(mul(div(sub(x, rm), sqrt(add(rv, eps_))), w), b);

  const int64_t count = x.numel() / features_;
  if (count < 2)
    throw ValueError("BatchNorm: training needs more than one value per channel, got input " + shape_str(x.shape()));
  Tensor mu = mean(x, axes, true);
  Tensor centered = sub(x, mu);
  Tensor var = mean(square(centered), axes, true);  // biased, used to normalise
  Tensor y = add(mul(div(centered, sqrt(add(var, eps_))), w), b);
  {
    NoGradGuard no_grad;
    // running = (1 - momentum) * running + momentum * batch statistic (unbiased variance), as PyTorch.
    Tensor unbiased = mul(var, double(count) / double(count - 1));
    running_mean.mul_(1.0 - momentum_).add_(reshape(mu.detach(), {features_}).to(running_mean.dtype()), momentum_);
    running_var.mul_(1.0 - momentum_).add_(reshape(unbiased.detach(), {features_}).to(running_var.dtype()), momentum_);
    num_batches_tracked.add_(ones({}, DType::I64));
  }
  return y;
}

}  // namespace advgrad
