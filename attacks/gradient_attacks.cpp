#include "advgrad/attacks/gradient_attacks.h"

namespace advgrad {

namespace {
Shape column_shape(int64_t n, const Tensor& like) {
  Shape col(size_t(like.dim()), 1);
  col[0] = n;
  return col;
}
}  // namespace

Tensor step_direction(const Tensor& g, Norm norm) {
  NoGradGuard no_grad;
  if (norm == Norm::Linf) return sign(g);
  const int64_t N = g.size(0);
  Tensor l2 = reshape(sqrt(sum(square(reshape(g, {N, -1})), {1})), column_shape(N, g));
  return g / (l2 + 1e-12);
}

Tensor per_sample_column(const std::vector<double>& values, const Tensor& like) {
  return from_vector(values, column_shape(int64_t(values.size()), like), like.device()).to(like.dtype());
}

FreezeFooled::FreezeFooled(const Tensor& x) : frozen_(zeros(column_shape(x.size(0), x), x.dtype(), x.device())) {}

Tensor FreezeFooled::step(const Tensor& logits, const Tensor& labels, const Tensor& targets, bool targeted,
                          const Tensor& adv, const Tensor& next) {
  NoGradGuard no_grad;
  Tensor predicted = argmax(logits, 1);
  Tensor fooled = targeted ? eq(predicted, targets) : ne(predicted, labels);  // int64 0/1 [N]
  frozen_ = maximum(frozen_, reshape(fooled, frozen_.shape()).to(frozen_.dtype()));
  return where(frozen_, adv, next);
}

bool FreezeFooled::all_frozen() const { return sum(frozen_).item() == double(frozen_.size(0)); }

Tensor IteratedGradientAttack::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets,
                                           Generator& gen, AttackResult& counters) {
  const int64_t N = x.size(0);
  const double alpha = opt_.step_size;
  Tensor adv = opt_.random_start ? random_start(x, opt_.eps, opt_.norm, gen) : x.clone();
  FreezeFooled freeze(x);
  for (int s = 0; s < opt_.steps; ++s) {
    LossGradient lg = objective_gradient(model, adv, labels, targets, opt_.loss, opt_.targeted);
    counters.forward_samples += N;
    counters.gradient_samples += N;
    NoGradGuard no_grad;
    Tensor next = project(adv + alpha * step_direction(lg.grad, opt_.norm), x, opt_.eps, opt_.norm);
    if (opt_.early_stop) {
      next = freeze.step(lg.logits, labels, targets, opt_.targeted, adv, next);
      if (freeze.all_frozen()) break;  // every sample stays where it is
    }
    adv = next;
  }
  return adv;
}

}  // namespace advgrad
