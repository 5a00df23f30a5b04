#include "advgrad/attacks/trades_kl.h"

#include "advgrad/nn/losses.h"

namespace advgrad {

Tensor kl_to_clean(const Tensor& logits, const Tensor& clean_probs) {
  return sum(kl_div(log_softmax(logits, 1), clean_probs, KLReduction::None), {1});
}

TradesKL::TradesKL(const AttackOptions& options) : Attack(options) {
  if (opt_.step_size == 0) opt_.step_size = PGD::default_step_size(opt_.eps, opt_.steps);
}

Tensor TradesKL::attack_once(Module& model, const Tensor& x, const Tensor&, const Tensor&, Generator& gen,
                             AttackResult& counters) {
  if (opt_.norm != Norm::Linf) throw ValueError("trades-kl: only the L-inf threat model is supported");
  const int64_t N = x.size(0);
  const Tensor clean_probs = softmax(predict(model, x), 1);
  counters.forward_samples += N;
  NoGradGuard no_grad;
  Tensor x_adv = project(x + randn(x.shape(), gen, x.dtype(), x.device()) * 0.001, x, opt_.eps, Norm::Linf);
  for (int k = 0; k < opt_.steps; ++k) {
    LossGradient at = objective_gradient(model, x_adv, [&](const Tensor& logits) { return kl_to_clean(logits, clean_probs); });
    counters.forward_samples += N, counters.gradient_samples += N;
    x_adv = project(x_adv + sign(at.grad) * opt_.step_size, x, opt_.eps, Norm::Linf);
  }
  return x_adv;
}

}  // namespace advgrad
