// Reductions over axes: Backend::reduce over an [outer, n, inner] view, one axis at a time.
#include "advgrad/autograd/ops_util.h"

namespace advgrad {

using namespace detail;

namespace {

// Reduces dense x over one axis, keeping it as size 1 (no graph).
Tensor reduce_axis(ReduceOp op, const Tensor& x, int64_t axis) {
  Tensor xd = x.dense();
  AxisSplit s = split_at(xd.shape(), axis);
  Shape out_shape = xd.shape();
  out_shape[size_t(axis)] = 1;
  Tensor out = empty_like_shape(out_shape, xd);
  backend_of(xd).reduce(op, xd, s.outer, s.n, s.inner, out);
  return out;
}

// Max over one axis, kept as size 1, with gradient routed to the first maximum.
Tensor max_axis(const Tensor& x, int64_t axis) {
  if (x.shape()[size_t(axis)] == 0)
    throw ValueError("max: cannot reduce over an empty axis of shape " + shape_str(x.shape()));
  Tensor xd = x.dense();
  AxisSplit s = split_at(xd.shape(), axis);
  Shape kept = reduced_shape(xd.shape(), {axis}, true);
  Tensor out = empty_like_shape(kept, xd);
  backend_of(xd).reduce(ReduceOp::Max, xd, s.outer, s.n, s.inner, out);
  if (!should_record({x})) return out;
  Tensor idx = Tensor::empty({s.outer, s.inner}, DType::I64, xd.device());
  backend_of(xd).arg_reduce(ReduceOp::Max, xd, s.outer, s.n, s.inner, idx);
  Shape xs = x.shape();
  return record("max", {x}, out, [idx, xs, s](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = zeros(xs, g.dtype(), g.device());
    backend_of(g).scatter_add(g.dense(), idx, s.outer, s.n, s.inner, gx);
    return std::vector<Tensor>{gx};
  });
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  check_defined(x, "sum", "input");
  std::vector<int64_t> axes = normalize_axes(axes_in, x.dim(), "sum");
  Tensor out = x;
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) out = reduce_axis(ReduceOp::Sum, out, *it);
  if (axes.empty()) out = x.clone();
  Shape final_shape = reduced_shape(x.shape(), axes, keepdim);
  out = out.as_strided(final_shape, dense_strides(final_shape), out.offset());
  if (Tracer* t = active_tracer()) t->record({"sum", {x}, {out}, {ints("axes", axes), ints("keepdim", {keepdim})}});
  if (!should_record({x})) return out;
  Shape xs = x.shape(), kept = reduced_shape(x.shape(), axes, true);
  return record("sum", {x}, out, [xs, kept](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{contiguous(expand(reshape(g, kept), xs))};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  check_defined(x, "mean", "input");
  check_floating(x, "mean");
  std::vector<int64_t> axes = normalize_axes(axes_in, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t a : axes) count *= x.shape()[size_t(a)];
  TraceComposite composite;  // exported as one ReduceMean
  Tensor out = div(sum(x, axes, keepdim), double(count));
  if (Tracer* t = composite.tracer()) t->record({"mean", {x}, {out}, {ints("axes", axes), ints("keepdim", {keepdim})}});
  return out;
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  check_defined(x, "max", "input");
  std::vector<int64_t> axes = normalize_axes(axes_in, x.dim(), "max");
  TraceComposite composite;  // exported as one ReduceMax
  Tensor out = x;
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) out = max_axis(out, *it);
  if (!keepdim) out = reshape(out, reduced_shape(x.shape(), axes, false));
  if (Tracer* t = composite.tracer()) t->record({"max", {x}, {out}, {ints("axes", axes), ints("keepdim", {keepdim})}});
  return out;
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  check_defined(x, "logsumexp", "input");
  check_floating(x, "logsumexp");
  std::vector<int64_t> axes = normalize_axes(axes_in, x.dim(), "logsumexp");
  // log sum exp(x) = m + log sum exp(x - m) with m the max held constant: stable, and since the
  // identity holds for any m, the gradient through x alone is exact.
  TraceComposite composite;  // exported as one ReduceLogSumExp
  Tensor m = max(x.detach(), axes, true);
  Tensor out = add(log(sum(exp(sub(x, m)), axes, true)), m);
  if (!keepdim) out = reshape(out, reduced_shape(x.shape(), axes, false));
  if (Tracer* t = composite.tracer())
    t->record({"logsumexp", {x}, {out}, {ints("axes", axes), ints("keepdim", {keepdim})}});
  return out;
}

Tensor argmax(const Tensor& x, int64_t axis_in, bool keepdim) {
  check_defined(x, "argmax", "input");
  int64_t axis = normalize_axis(axis_in, x.dim(), "argmax");
  if (x.shape()[size_t(axis)] == 0) throw ValueError("argmax: empty axis in shape " + shape_str(x.shape()));
  Tensor xd = x.dense();
  AxisSplit s = split_at(xd.shape(), axis);
  Shape out_shape = reduced_shape(xd.shape(), {axis}, keepdim);
  Tensor idx = Tensor::empty(out_shape, DType::I64, xd.device());
  backend_of(xd).arg_reduce(ReduceOp::Max, xd, s.outer, s.n, s.inner, idx);
  if (Tracer* t = active_tracer()) t->record({"argmax", {x}, {idx}, {ints("axis", {axis}), ints("keepdim", {keepdim})}});
  return idx;
}

Tensor one_hot(const Tensor& labels, int64_t num_classes, DType dtype) {
  check_defined(labels, "one_hot", "labels");
  if (labels.dtype() != DType::I64) throw TypeError("one_hot: labels must be int64, got " + labels.describe());
  if (num_classes < 1) throw ValueError("one_hot: num_classes must be >= 1");
  Tensor ld = labels.dense();
  if (int64_t i = first_index_outside(ld, num_classes); i >= 0)
    throw ValueError("one_hot: label " + std::to_string(int64_t(reshape(ld, {-1}).at({i}))) + " at position " +
                     std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
  Shape shape = labels.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, dtype, labels.device());
  Tensor ones_src = ones(labels.shape(), dtype, labels.device());
  backend_for(labels.device()).scatter_add(ones_src, ld, ld.numel(), num_classes, 1, out);
  if (Tracer* t = active_tracer()) t->record({"one_hot", {labels}, {out}, {ints("num_classes", {num_classes})}});
  return out;
}

}  // namespace advgrad

namespace advgrad {

using namespace detail;

Tensor gather(const Tensor& x, int64_t axis_in, const Tensor& index) {
  check_defined(x, "gather", "input");
  check_defined(index, "gather", "index");
  int64_t axis = normalize_axis(axis_in, x.dim(), "gather");
  Shape expected = x.shape();
  expected[size_t(axis)] = 1;
  if (index.dtype() != DType::I64) throw TypeError("gather: index must be int64, got " + index.describe());
  if (index.shape() != expected)
    throw ShapeError("gather: index " + shape_str(index.shape()) + " for input " + shape_str(x.shape()) + " (need " +
                     shape_str(expected) + ")");
  if (index.device() != x.device()) throw TypeError("gather: index and input on different devices");
  Tensor idx = index.dense().clone();  // private copy: checked once, immune to later changes
  AxisSplit s = split_at(x.shape(), axis);
  if (int64_t i = first_index_outside(idx, s.n); i >= 0)
    throw ValueError("gather: index " + std::to_string(int64_t(reshape(idx, {-1}).at({i}))) + " out of range [0, " +
                     std::to_string(s.n) + ")");
  Tensor xd = x.dense();
  Tensor out = empty_like_shape(expected, xd);
  backend_of(xd).gather(xd, idx, s.outer, s.n, s.inner, out);
  if (Tracer* t = active_tracer()) t->record({"gather", {x, index}, {out}, {ints("axis", {axis})}});
  if (!should_record({x})) return out;
  Shape xs = x.shape();
  return record("gather", {x}, out, [idx, xs, s](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = zeros(xs, g.dtype(), g.device());
    backend_of(g).scatter_add(g.dense(), idx, s.outer, s.n, s.inner, gx);
    return std::vector<Tensor>{gx};
  });
}

}  // namespace advgrad
