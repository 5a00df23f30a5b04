// TRADES' inner maximisation (Zhang et al. 2019) as an ordinary attack: find x' in the eps-ball that
// maximises KL(f(x) || f(x')), the divergence of the prediction at x' from the clean one. It needs no
// labels (they are only checked). Start x + 0.001 N(0,1), then `steps` signed-gradient steps of
// step_size (default 2.5 eps / steps), each projected to the L-inf eps-ball and [0,1].
#pragma once
#include "advgrad/attacks/pgd.h"

namespace advgrad {

class TradesKL : public Attack {
 public:
  // The step size is resolved here, once: options().step_size, or 2.5 eps / steps (as PGD).
  explicit TradesKL(const AttackOptions& options);
  std::string name() const override { return "trades-kl"; }

 protected:
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

// Per sample: KL(softmax(clean_logits) || softmax(logits)), summed over classes ([N, C] -> [N]).
Tensor kl_to_clean(const Tensor& logits, const Tensor& clean_probs);

}  // namespace advgrad
