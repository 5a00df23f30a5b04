#include "advgrad/nn/losses.h"

#include <limits>

namespace advgrad {

namespace {

Tensor reduce(const Tensor& per_sample, Reduction r) {
  if (r == Reduction::Mean) return mean(per_sample);
  if (r == Reduction::Sum) return sum(per_sample);
  return per_sample;
}

void check_logits(const Tensor& logits, const Tensor& labels, const char* op, int64_t min_classes) {
  if (!logits.defined() || logits.dim() != 2)
    throw ShapeError(std::string(op) + ": logits " + (logits.defined() ? shape_str(logits.shape()) : "undefined") +
                     " are not [N, C]");
  if (logits.size(1) < min_classes)
    throw ShapeError(std::string(op) + ": needs at least " + std::to_string(min_classes) + " classes, got " +
                     std::to_string(logits.size(1)));
  if (!labels.defined() || labels.dtype() != DType::I64 || labels.shape() != Shape{logits.size(0)})
    throw ShapeError(std::string(op) + ": labels must be int64 [" + std::to_string(logits.size(0)) + "]");
}

// logits with the label's entry replaced by -inf, so that max() finds the best other class.
Tensor mask_label(const Tensor& logits, const Tensor& labels) {
  Tensor is_label = one_hot(labels, logits.size(1), logits.dtype()).to(logits.device());
  Tensor minus_inf = full({}, -std::numeric_limits<double>::infinity(), logits.dtype(), logits.device());
  return where(is_label, minus_inf, logits);
}

Tensor label_logit(const Tensor& logits, const Tensor& labels) {
  return reshape(gather(logits, 1, reshape(labels, {-1, 1})), {-1});
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction, double eps) {
  if (!(eps >= 0 && eps <= 1)) throw ValueError("cross_entropy: label_smoothing must be in [0, 1]");
  if (eps == 0) return cross_entropy(logits, target, reduction);
  check_logits(logits, target, "cross_entropy", 1);
  Tensor logp = log_softmax(logits, 1);
  Tensor nll = neg(label_logit(logp, target));
  Tensor smooth = neg(mean(logp, {1}));
  return reduce(add(mul(nll, 1.0 - eps), mul(smooth, eps)), reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, KLReduction reduction) {
  if (!input.defined() || !target.defined() || input.shape() != target.shape())
    throw ShapeError("kl_div: input and target must have the same shape");
  // target * log(target) with 0 * log 0 = 0. The target is differentiated too (d/dt = log t + 1 - input),
  // as PyTorch does: TRADES's training loss sends gradient through the clean prediction it uses as target.
  Tensor t = target;
  Tensor zero = zeros({}, t.dtype(), t.device());
  Tensor positive = gt(t.detach(), zero);
  Tensor t_log_t = where(positive, mul(t, log(where(positive, t, ones({}, t.dtype(), t.device())))), zero);
  Tensor pointwise = sub(t_log_t, mul(t, input));
  switch (reduction) {
    case KLReduction::BatchMean: return div(sum(pointwise), double(input.dim() ? input.size(0) : 1));
    case KLReduction::Sum: return sum(pointwise);
    case KLReduction::Mean: return mean(pointwise);
    default: return pointwise;
  }
}

Tensor cw_margin_loss(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  check_logits(logits, labels, "cw_margin_loss", 2);
  Tensor best_other = reshape(max(mask_label(logits, labels), {1}), {-1});
  return reduce(sub(best_other, label_logit(logits, labels)), reduction);
}

Tensor top_values(const Tensor& logits, int64_t k) {
  if (logits.dim() != 2 || k < 1 || k > logits.size(1))
    throw ShapeError("top_values: need [N, C] logits and 1 <= k <= C, got " + shape_str(logits.shape()) +
                     " and k = " + std::to_string(k));
  std::vector<Tensor> tops;
  Tensor rest = logits;
  for (int64_t i = 0; i < k; ++i) {
    Tensor idx = argmax(rest, 1);
    tops.push_back(gather(rest, 1, reshape(idx, {-1, 1})));
    if (i + 1 < k) rest = mask_label(rest, idx);  // remove the one just taken
  }
  return concat(tops, 1);
}

Tensor dlr_loss(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  check_logits(logits, labels, "dlr_loss", 3);
  Tensor top = top_values(logits, 3);
  Tensor margin = sub(label_logit(logits, labels), reshape(max(mask_label(logits, labels), {1}), {-1}));
  Tensor scale = add(sub(reshape(slice(top, 1, 0, 1), {-1}), reshape(slice(top, 1, 2, 3), {-1})), 1e-12);
  return reduce(neg(div(margin, scale)), reduction);
}

Tensor dlr_targeted_loss(const Tensor& logits, const Tensor& labels, const Tensor& targets, Reduction reduction) {
  check_logits(logits, labels, "dlr_targeted_loss", 4);
  check_logits(logits, targets, "dlr_targeted_loss", 4);
  Tensor top = top_values(logits, 4);
  Tensor margin = sub(label_logit(logits, labels), label_logit(logits, targets));
  auto column = [&](int64_t i) { return reshape(slice(top, 1, i, i + 1), {-1}); };
  Tensor scale = add(sub(column(0), mul(add(column(2), column(3)), 0.5)), 1e-12);
  return reduce(neg(div(margin, scale)), reduction);
}

}  // namespace advgrad
