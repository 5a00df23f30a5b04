// Losses beyond the fused ones in autograd/ops.h (cross_entropy, nll_loss, mse_loss): label smoothing,
// KL divergence as TRADES uses it, and the margin losses that attacks maximise (CW, DLR).
// All take logits [N, C] and int64 labels [N] unless stated.
#pragma once
#include "advgrad/autograd/ops.h"

namespace advgrad {

// Cross-entropy with label smoothing eps (PyTorch's label_smoothing): the target is (1 - eps) on the
// label plus eps / C on every class. eps = 0 is the fused cross_entropy.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction, double label_smoothing);

// KL(target || exp(input)) pointwise = target * (log target - input), 0 where target == 0, as
// torch.nn.functional.kl_div(input, target) with log-probabilities `input` and probabilities `target`;
// both receive gradients.
enum class KLReduction { BatchMean, Sum, Mean, None };
Tensor kl_div(const Tensor& input_log_probs, const Tensor& target_probs, KLReduction reduction = KLReduction::BatchMean);

// Carlini-Wagner margin per sample: max_{j != y} z_j - z_y (positive once misclassified). Attacks ascend
// it like cross-entropy. With a target t (targeted attacks) pass it as `y` and negate.
Tensor cw_margin_loss(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::Mean);

// Difference of Logits Ratio (Croce & Hein 2020), per sample:
//   -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12), z_pi sorted in decreasing order.
// Invariant to shifting and scaling the logits. Needs C >= 3.
Tensor dlr_loss(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::Mean);
// Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12). Needs C >= 4.
Tensor dlr_targeted_loss(const Tensor& logits, const Tensor& labels, const Tensor& targets,
                         Reduction reduction = Reduction::Mean);

// The k largest values of each row of [N, C], as [N, k] in decreasing order (gradient to the chosen
// entries; ties resolved to the first index).
Tensor top_values(const Tensor& logits, int64_t k);

}  // namespace advgrad
