// Softmax family and losses.
#include <limits>

#include "advgrad/autograd/ops_util.h"

namespace advgrad {

using namespace detail;

namespace {

Tensor softmax_forward(const Tensor& x, int64_t axis, bool log_space, const char* op) {
  check_defined(x, op, "input");
  check_floating(x, op);
  Tensor xd = x.dense();
  AxisSplit s = split_at(xd.shape(), axis);
  Tensor out = empty_like_shape(xd.shape(), xd);
  backend_of(xd).softmax(xd, s.outer, s.n, s.inner, log_space, out);
  return out;
}

// Checks target: int64 [N] with values in [0, C) for logits/log-probs [N, C].
void check_target(const Tensor& input, const Tensor& target, const char* op) {
  check_defined(input, op, "input");
  check_defined(target, op, "target");
  if (input.dim() != 2) throw ShapeError(std::string(op) + ": input " + shape_str(input.shape()) + " is not [N, C]");
  if (target.dtype() != DType::I64) throw TypeError(std::string(op) + ": target must be int64, got " + target.describe());
  if (target.shape() != Shape{input.size(0)})
    throw ShapeError(std::string(op) + ": target " + shape_str(target.shape()) + " for input " +
                     shape_str(input.shape()) + " (need [N])");
  if (int64_t i = first_index_outside(target, input.size(1)); i >= 0)
    throw ValueError(std::string(op) + ": target " + std::to_string(int64_t(target.at({i}))) + " at position " +
                     std::to_string(i) + " is outside [0, " + std::to_string(input.size(1)) + ")");
}

// -input[i, target[i]] for each row, then reduced (no graph).
Tensor pick_negated(const Tensor& input_dense, const Tensor& target, Reduction reduction) {
  int64_t N = input_dense.size(0), C = input_dense.size(1);
  Tensor picked = Tensor::empty({N}, input_dense.dtype(), input_dense.device());
  backend_of(input_dense).gather(input_dense, target.dense(), N, C, 1, picked);
  Tensor loss = neg(picked);
  if (reduction == Reduction::Sum) return sum(loss);
  if (reduction == Reduction::Mean) return N ? mean(loss) : full({}, std::numeric_limits<double>::quiet_NaN(), loss.dtype(), loss.device());
  return loss;
}

// The gradient of the per-row losses, g as given for the reduction, shaped [N, 1] to scale rows.
Tensor row_scale(const Tensor& g, int64_t N, Reduction reduction) {
  if (reduction == Reduction::None) return reshape(g, {N, 1});
  Tensor s = reduction == Reduction::Mean ? div(g, double(std::max<int64_t>(N, 1))) : g;
  return reshape(s, {1, 1});
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis_in) {
  int64_t axis = normalize_axis(axis_in, x.dim(), "softmax");
  Tensor out = softmax_forward(x, axis, false, "softmax");
  if (Tracer* t = active_tracer()) t->record({"softmax", {x}, {out}, {ints("axis", {axis})}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "softmax");
  return record("softmax", {x}, out, [so, axis](const Tensor& g, const std::vector<bool>&) {
    Tensor y = so.unpack();
    return std::vector<Tensor>{mul(y, sub(g, sum(mul(g, y), {axis}, true)))};
  });
}

Tensor log_softmax(const Tensor& x, int64_t axis_in) {
  int64_t axis = normalize_axis(axis_in, x.dim(), "log_softmax");
  Tensor out = softmax_forward(x, axis, true, "log_softmax");
  if (Tracer* t = active_tracer()) t->record({"log_softmax", {x}, {out}, {ints("axis", {axis})}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "log_softmax");
  return record("log_softmax", {x}, out, [so, axis](const Tensor& g, const std::vector<bool>&) {
    Tensor y = so.unpack();
    return std::vector<Tensor>{sub(g, mul(exp(y), sum(g, {axis}, true)))};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  check_target(logits, target, "cross_entropy");
  check_floating(logits, "cross_entropy");
  TraceComposite composite;  // a loss has no ONNX rule: the exporter must refuse it, not its inner ops
  Tensor logp = softmax_forward(logits, 1, true, "cross_entropy");
  Tensor loss = pick_negated(logp, target, reduction);
  if (Tracer* t = composite.tracer()) t->record({"cross_entropy", {logits, target}, {loss}, {}});
  if (!should_record({logits})) return loss;
  SavedTensor slogp(logp, "cross_entropy");
  Tensor tgt = target.dense().clone();
  return record("cross_entropy", {logits}, loss, [slogp, tgt, reduction](const Tensor& g, const std::vector<bool>&) {
    // d/dlogits = softmax - one_hot(target), scaled per row.
    Tensor lp = slogp.unpack();
    int64_t N = lp.size(0), C = lp.size(1);
    Tensor grad = exp(lp);
    Tensor minus_one = full({N}, -1.0, lp.dtype(), lp.device());
    backend_of(lp).scatter_add(minus_one, tgt, N, C, 1, grad);
    return std::vector<Tensor>{mul(grad, row_scale(g, N, reduction))};
  });
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction) {
  check_target(log_probs, target, "nll_loss");
  check_floating(log_probs, "nll_loss");
  TraceComposite composite;  // see cross_entropy
  Tensor loss = pick_negated(log_probs.dense(), target, reduction);
  if (Tracer* t = composite.tracer()) t->record({"nll_loss", {log_probs, target}, {loss}, {}});
  if (!should_record({log_probs})) return loss;
  Tensor tgt = target.dense().clone();
  int64_t C = log_probs.size(1);
  return record("nll_loss", {log_probs}, loss, [tgt, C, reduction](const Tensor& g, const std::vector<bool>&) {
    // d/dlog_probs[i, target[i]] = -(row i's share of g); every other entry 0.
    int64_t N = tgt.size(0);
    Tensor per_row = neg(contiguous(reshape(expand(row_scale(g, N, reduction), {N, 1}), {N})));
    Tensor gx = zeros({N, C}, g.dtype(), g.device());
    backend_of(g).scatter_add(per_row, tgt, N, C, 1, gx);
    return std::vector<Tensor>{gx};
  });
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_compatible(input, target, "mse_loss");
  if (input.shape() != target.shape())
    throw ShapeError("mse_loss: input " + shape_str(input.shape()) + " and target " + shape_str(target.shape()) +
                     " differ");
  Tensor sq = square(sub(input, target));
  if (reduction == Reduction::Sum) return sum(sq);
  if (reduction == Reduction::Mean) return mean(sq);
  return sq;
}

}  // namespace advgrad
