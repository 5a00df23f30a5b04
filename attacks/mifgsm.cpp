#include "advgrad/attacks/mifgsm.h"

namespace advgrad {

Tensor MIFGSM::attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator&,
                           AttackResult& counters) {
  const int64_t N = x.size(0);
  const double alpha = opt_.step_size, mu = opt_.momentum;
  Shape col(size_t(x.dim()), 1);
  col[0] = N;
  Tensor adv = x.clone();
  Tensor g = zeros_like(x);  // the accumulated direction
  FreezeFooled freeze(x);
  for (int s = 0; s < opt_.steps; ++s) {
    LossGradient lg = objective_gradient(model, adv, labels, targets, opt_.loss, opt_.targeted);
    counters.forward_samples += N;
    counters.gradient_samples += N;
    NoGradGuard no_grad;
    Tensor l1 = reshape(mean(abs(reshape(lg.grad, {N, -1})), {1}), col);  // per-sample mean |grad|
    g = g * mu + lg.grad / (l1 + 1e-12);
    Tensor next = project(adv + alpha * step_direction(g, opt_.norm), x, opt_.eps, opt_.norm);
    if (opt_.early_stop) {
      next = freeze.step(lg.logits, labels, targets, opt_.targeted, adv, next);
      if (freeze.all_frozen()) break;
    }
    adv = next;
  }
  return adv;
}

}  // namespace advgrad
