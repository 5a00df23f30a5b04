// Shape and movement ops. Where the layout allows, the result is a view sharing x's storage.
#include <algorithm>

#include "advgrad/autograd/ops_util.h"

namespace advgrad {

using namespace detail;

namespace {
// Copies src into the region of `dst` described by a view (graph-free).
void copy_into(const Tensor& src, const Tensor& dst_view) {
  Tensor d = dst_view;
  backend_of(src).copy(src, d);
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape_in) {
  check_defined(x, "reshape", "input");
  Shape shape = shape_in;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ValueError("reshape: more than one -1 in " + shape_str(shape_in));
      infer = int64_t(i);
    } else if (shape[i] < 0) {
      throw ValueError("reshape: negative dim in " + shape_str(shape_in));
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw ShapeError("reshape: cannot view " + shape_str(x.shape()) + " as " + shape_str(shape_in));
    shape[size_t(infer)] = x.numel() / known;
  }
  if (shape_numel(shape) != x.numel())
    throw ShapeError("reshape: " + shape_str(x.shape()) + " (" + std::to_string(x.numel()) + " elements) cannot be " +
                     shape_str(shape_in));
  Tensor xd = x.dense();  // a view when x is already dense, a copy otherwise
  Tensor out = xd.as_strided(shape, dense_strides(shape), xd.offset());
  if (Tracer* t = active_tracer()) t->record({"reshape", {x}, {out}, {ints("shape", shape)}});
  if (!should_record({x})) return out;
  Shape xs = x.shape();
  return record("reshape", {x}, out, [xs](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{reshape(g, xs)};
  });
}

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  check_defined(x, "flatten", "input");
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = normalize_axis(start_axis, x.dim(), "flatten"), e = normalize_axis(end_axis, x.dim(), "flatten");
  if (s > e) throw ValueError("flatten: start axis after end axis");
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int64_t i = s; i <= e; ++i) n *= x.shape()[size_t(i)];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  check_defined(x, "unsqueeze", "input");
  int64_t a = normalize_axis(axis, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + a, 1);
  TraceComposite composite;  // exported as Unsqueeze, not as a reshape that would name every dim
  Tensor out = reshape(x, shape);
  if (Tracer* t = composite.tracer()) t->record({"unsqueeze", {x}, {out}, {ints("axis", {a})}});
  return out;
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  check_defined(x, "squeeze", "input");
  int64_t a = normalize_axis(axis, x.dim(), "squeeze");
  if (x.shape()[size_t(a)] != 1)
    throw ShapeError("squeeze: axis " + std::to_string(axis) + " of " + shape_str(x.shape()) + " is not 1");
  Shape shape = x.shape();
  shape.erase(shape.begin() + a);
  TraceComposite composite;  // exported as Squeeze (see unsqueeze)
  Tensor out = reshape(x, shape);
  if (Tracer* t = composite.tracer()) t->record({"squeeze", {x}, {out}, {ints("axis", {a})}});
  return out;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& order) {
  check_defined(x, "permute", "input");
  if (int64_t(order.size()) != x.dim())
    throw ShapeError("permute: order of " + std::to_string(order.size()) + " axes for shape " + shape_str(x.shape()));
  std::vector<int64_t> norm, inverse(order.size());
  std::vector<bool> seen(order.size(), false);
  Shape shape, strides;
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t a = normalize_axis(order[i], x.dim(), "permute");
    if (seen[size_t(a)]) throw ValueError("permute: axis " + std::to_string(a) + " repeated");
    seen[size_t(a)] = true;
    norm.push_back(a);
    inverse[size_t(a)] = int64_t(i);
    shape.push_back(x.shape()[size_t(a)]);
    strides.push_back(x.strides()[size_t(a)]);
  }
  Tensor out = x.as_strided(shape, strides, x.offset());
  if (Tracer* t = active_tracer()) t->record({"permute", {x}, {out}, {ints("order", norm)}});
  if (!should_record({x})) return out;
  return record("permute", {x}, out, [inverse](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{permute(g, inverse)};
  });
}

Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1) {
  check_defined(x, "transpose", "input");
  std::vector<int64_t> order(size_t(x.dim()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  std::swap(order[size_t(normalize_axis(axis0, x.dim(), "transpose"))],
            order[size_t(normalize_axis(axis1, x.dim(), "transpose"))]);
  return permute(x, order);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined(x, "expand", "input");
  Tensor out = broadcast_view(x, shape, "expand");
  if (Tracer* t = active_tracer()) t->record({"expand", {x}, {out}, {ints("shape", shape)}});
  if (!should_record({x})) return out;
  Shape xs = x.shape();
  return record("expand", {x}, out, [xs](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{sum_to(g, xs)};
  });
}

Tensor contiguous(const Tensor& x) {
  check_defined(x, "contiguous", "input");
  if (x.is_contiguous()) return x;
  Tensor out = x.clone();
  if (Tracer* t = active_tracer()) t->record({"contiguous", {x}, {out}, {}});
  if (!should_record({x})) return out;
  return record("contiguous", {x}, out, [](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g};
  });
}

Tensor slice(const Tensor& x, int64_t axis_in, int64_t start, int64_t end, int64_t step) {
  check_defined(x, "slice", "input");
  int64_t axis = normalize_axis(axis_in, x.dim(), "slice");
  if (step < 1) throw ValueError("slice: step must be >= 1, got " + std::to_string(step));
  int64_t n = x.shape()[size_t(axis)];
  const int64_t start_arg = start, end_arg = end;  // as given: an exporter keeps "to the end" batch-agnostic
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  start = clampi(start);
  end = std::max(clampi(end), start);
  Shape shape = x.shape(), strides = x.strides();
  shape[size_t(axis)] = (end - start + step - 1) / step;
  strides[size_t(axis)] *= step;
  Tensor out = x.as_strided(shape, strides, x.offset() + start * x.strides()[size_t(axis)]);
  if (Tracer* t = active_tracer())
    t->record({"slice", {x}, {out}, {ints("axis", {axis}), ints("start", {start_arg}), ints("end", {end_arg}),
                                     ints("step", {step})}});
  if (!should_record({x})) return out;
  Shape xs = x.shape();
  return record("slice", {x}, out, [xs, axis, start, end, step](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = zeros(xs, g.dtype(), g.device());
    copy_into(g, slice(gx, axis, start, end, step));
    return std::vector<Tensor>{gx};
  });
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  check_defined(x, "pad", "input");
  if (pads.size() % 2 != 0 || int64_t(pads.size() / 2) > x.dim())
    throw ValueError("pad: " + std::to_string(pads.size()) + " pad values for a tensor of rank " +
                     std::to_string(x.dim()) + " (need pairs, at most 2 per dim)");
  Shape shape = x.shape();
  std::vector<int64_t> before(shape.size(), 0);
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    size_t axis = shape.size() - 1 - k;
    if (pads[2 * k] < 0 || pads[2 * k + 1] < 0) throw ValueError("pad: negative padding is not supported");
    before[axis] = pads[2 * k];
    shape[axis] += pads[2 * k] + pads[2 * k + 1];
  }
  Tensor out = full(shape, value, x.dtype(), x.device());
  // The interior of `out` as a view with x's shape.
  auto interior = [xs = x.shape(), before](const Tensor& t) {
    int64_t off = t.offset();
    for (size_t i = 0; i < before.size(); ++i) off += before[i] * t.strides()[i];
    return t.as_strided(xs, t.strides(), off);
  };
  copy_into(x, interior(out));
  if (Tracer* t = active_tracer()) t->record({"pad", {x}, {out}, {ints("pads", pads), real("value", value)}});
  if (!should_record({x})) return out;
  return record("pad", {x}, out, [interior](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{interior(g).clone()};
  });
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis_in) {
  if (xs.empty()) throw ValueError("concat: no tensors given");
  for (const auto& t : xs) check_compatible(xs[0], t, "concat");
  int64_t axis = normalize_axis(axis_in, xs[0].dim(), "concat");
  Shape shape = xs[0].shape();
  shape[size_t(axis)] = 0;
  std::vector<int64_t> sizes;
  for (const auto& t : xs) {
    Shape a = t.shape(), b = xs[0].shape();
    bool ok = a.size() == b.size();
    for (size_t i = 0; ok && i < a.size(); ++i) ok = int64_t(i) == axis || a[i] == b[i];
    if (!ok)
      throw ShapeError("concat: " + shape_str(t.shape()) + " and " + shape_str(xs[0].shape()) +
                       " differ outside axis " + std::to_string(axis));
    sizes.push_back(t.shape()[size_t(axis)]);
    shape[size_t(axis)] += sizes.back();
  }
  Tensor out = Tensor::empty(shape, xs[0].dtype(), xs[0].device());
  int64_t at = 0;
  for (const auto& t : xs) {
    copy_into(t, slice(out, axis, at, at + t.shape()[size_t(axis)]));
    at += t.shape()[size_t(axis)];
  }
  if (Tracer* t = active_tracer()) t->record({"concat", xs, {out}, {ints("axis", {axis})}});
  if (!should_record(xs)) return out;
  return record("concat", xs, out, [axis, sizes](const Tensor& g, const std::vector<bool>& need) {
    std::vector<Tensor> gs;
    int64_t pos = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      gs.push_back(need[i] ? slice(g, axis, pos, pos + sizes[i]).clone() : Tensor());
      pos += sizes[i];
    }
    return gs;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) throw ValueError("stack: no tensors given");
  int64_t a = normalize_axis(axis, xs[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (const auto& t : xs) {
    if (t.shape() != xs[0].shape())
      throw ShapeError("stack: shapes " + shape_str(t.shape()) + " and " + shape_str(xs[0].shape()) + " differ");
    expanded.push_back(unsqueeze(t, a));
  }
  return concat(expanded, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis_in) {
  check_defined(x, "split", "input");
  int64_t axis = normalize_axis(axis_in, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw ValueError("split: negative size");
    total += s;
  }
  if (total != x.shape()[size_t(axis)])
    throw ShapeError("split: sizes sum to " + std::to_string(total) + " but axis " + std::to_string(axis) + " of " +
                     shape_str(x.shape()) + " has " + std::to_string(x.shape()[size_t(axis)]));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, axis, at, at + s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t axis_in) {
  check_defined(x, "split", "input");
  if (size < 1) throw ValueError("split: size must be >= 1");
  int64_t n = x.shape()[size_t(normalize_axis(axis_in, x.dim(), "split"))];
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += size) sizes.push_back(std::min(size, n - at));
  return split(x, sizes, axis_in);
}

}  // namespace advgrad
