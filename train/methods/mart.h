// MART's loss (Wang et al., ICLR 2020, "Improving adversarial robustness requires revisiting
// misclassified examples"), given the clean and the adversarial logits, as in the authors' mart.py:
//   BCE(p', y) = CE(p', y) - log(1.0001 - max_{k != y} p'_k + 1e-12)      (boosted cross-entropy)
//   loss = mean BCE + beta * mean_i [ KL(p_i || p'_i) * (1.0000001 - p_i,y) ]
// with p = softmax(clean logits), p' = softmax(adversarial logits), KL over log(p' + 1e-12); the small
// constants are the authors' guards against log(0). Exposed for its test (tests/test_methods.cpp).
#pragma once
#include "advgrad/core/tensor.h"

namespace advgrad {

Tensor mart_loss(const Tensor& clean_logits, const Tensor& adv_logits, const Tensor& labels, double beta);

}  // namespace advgrad
