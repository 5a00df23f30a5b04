// Shape and movement ONNX ops (Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Slice, Gather, Pad,
// Expand) on floating data, and the shape arithmetic PyTorch writes around recurrent layers for a
// symbolic batch (Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Range, Constant) on integers.
#include <algorithm>
#include <cmath>
#include <limits>

#include "advgrad/onnx/op_table.h"

namespace advgrad::onnx_import {
namespace {

int64_t product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= dims[i];
  return n;
}

// An empty result: the loops over outer/inner blocks are skipped (their products could overflow when a
// 0 dim sits beside large ones).
bool has_zero_dim(const std::vector<int64_t>& dims) {
  return std::find(dims.begin(), dims.end(), 0) != dims.end();
}

const std::vector<int64_t>& dims_of(const Value& v, Shape& storage) {
  if (v.is_int) return v.ints.dims;
  storage = v.tensor.shape();
  return storage;
}

// Axes from an attribute (opsets before 13 for Squeeze/Unsqueeze/ReduceSum...) or from input `index`.
std::vector<int64_t> axes_from(const NodeInfo& node, const std::vector<const Value*>& in, size_t index,
                               int64_t first_input_opset) {
  if (node.opset < first_input_opset) return attr_ints(node, "axes", {});
  if (!has_input(in, index)) return {};
  return int_input(in, index, "axes").values;
}

// A 1-D integer value as a Shape; every entry must be >= `min_value`.
Shape shape_input(const std::vector<const Value*>& in, size_t i, const char* what, int64_t min_value) {
  const IntTensor& s = int_input(in, i, what);
  if (s.dims.size() != 1) throw NodeError(std::string(what) + " must be 1-D, has dims " + join(s.dims));
  for (int64_t d : s.values)
    if (d < min_value) throw NodeError(std::string(what) + " " + join(s.values) + " has an entry below " + std::to_string(min_value));
  return Shape(s.values.begin(), s.values.end());
}

// Integers picked along `axis`: out[..., j, ...] = t[..., picks[j], ...] (Slice, Gather, flips of pads).
IntTensor take_ints(const IntTensor& t, size_t axis, const std::vector<int64_t>& picks) {
  std::vector<int64_t> out_dims = t.dims;
  out_dims[axis] = int64_t(picks.size());
  check_created(out_dims, "integer result");
  if (has_zero_dim(out_dims) || has_zero_dim(t.dims)) return IntTensor{out_dims, {}};
  const int64_t outer = product(t.dims, 0, axis), dim = t.dims[axis], inner = product(t.dims, axis + 1, t.dims.size());
  IntTensor r;
  r.dims = t.dims;
  r.dims[axis] = int64_t(picks.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p : picks)
      for (int64_t i = 0; i < inner; ++i) r.values.push_back(t.values[size_t((o * dim + p) * inner + i)]);
  return r;
}

IntTensor permute_ints(const IntTensor& t, const std::vector<int64_t>& order) {
  const size_t rank = t.dims.size();
  if (has_zero_dim(t.dims)) {
    IntTensor r;
    for (size_t a = 0; a < rank; ++a) r.dims.push_back(t.dims[size_t(order[a])]);
    return r;
  }
  std::vector<int64_t> strides(rank, 1), out_dims(rank);
  for (size_t a = rank; a-- > 1;) strides[a - 1] = strides[a] * t.dims[a];
  for (size_t a = 0; a < rank; ++a) out_dims[a] = t.dims[size_t(order[a])];
  IntTensor r;
  r.dims = out_dims;
  const int64_t n = t.numel();
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rest = flat, src = 0;
    for (size_t a = rank; a-- > 0;) {
      src += (rest % out_dims[a]) * strides[size_t(order[a])];
      rest /= out_dims[a];
    }
    r.values.push_back(t.values[size_t(src)]);
  }
  return r;
}

Value reshape_value(const Value& v, const Shape& target) {
  if (!v.is_int) return Value::of(reshape(v.tensor, target));
  if (shape_numel(target) != v.ints.numel()) throw NodeError("cannot reshape integers " + join(v.ints.dims) + " to " + join(target));
  IntTensor r = v.ints;
  r.dims = target;
  return Value::of_ints(r);
}

Value do_unsqueeze(const Value& v, std::vector<int64_t> axes) {
  Shape storage;
  const std::vector<int64_t>& dims = dims_of(v, storage);
  const int64_t out_rank = int64_t(dims.size() + axes.size());
  for (auto& a : axes) a = normalize_axis(a, out_rank, "axis");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) throw NodeError("axes " + join(axes) + " repeat an axis");
  Shape out;
  size_t next = 0;
  for (int64_t i = 0; i < out_rank; ++i) {
    if (std::binary_search(axes.begin(), axes.end(), i)) out.push_back(1);
    else out.push_back(dims[next++]);
  }
  return reshape_value(v, out);
}

Value do_squeeze(const Value& v, std::vector<int64_t> axes) {
  Shape storage;
  const std::vector<int64_t>& dims = dims_of(v, storage);
  const int64_t rank = int64_t(dims.size());
  for (auto& a : axes) a = normalize_axis(a, rank, "axis");
  Shape out;
  for (int64_t i = 0; i < rank; ++i) {
    const bool listed = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (listed && dims[size_t(i)] != 1) throw NodeError("axis " + std::to_string(i) + " of " + join(dims) + " is not 1");
    if (listed || (axes.empty() && dims[size_t(i)] == 1)) continue;
    out.push_back(dims[size_t(i)]);
  }
  return reshape_value(v, out);
}

// ONNX's clamping of Slice bounds (INT_MAX means "to the end"): negative values count from the end; then
// for a positive step start and end are clamped to [0, dim], for a negative step start to [0, dim-1] and
// end to [-1, dim-1]. Called with dim >= 1.
int64_t clamp_bound(int64_t b, int64_t dim, int64_t step, bool is_start) {
  if (b < 0) b = b < -dim ? -dim - 1 : b + dim;  // no overflow for b near INT64_MIN
  if (step > 0) return std::clamp<int64_t>(b, 0, dim);
  return std::clamp<int64_t>(b, is_start ? 0 : -1, dim - 1);
}

Kernel slice_kernel(const NodeInfo& node) {
  if (node.opset < 11) throw NodeError("opsets before 11 are not supported");
  return unary([](const std::vector<const Value*>& in) {
    if (!has_input(in, 0)) throw NodeError("input 0 is missing");
    const Value& v = *in[0];
    const std::vector<int64_t> starts = int_input(in, 1, "starts").values, ends = int_input(in, 2, "ends").values;
    Shape storage;
    const int64_t rank = int64_t(dims_of(v, storage).size());
    std::vector<int64_t> axes = has_input(in, 3) ? int_input(in, 3, "axes").values : std::vector<int64_t>();
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
    std::vector<int64_t> steps = has_input(in, 4) ? int_input(in, 4, "steps").values : std::vector<int64_t>(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      throw NodeError("starts, ends, axes and steps differ in length");
    Value out = v;
    std::vector<bool> seen(size_t(rank), false);
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t axis = normalize_axis(axes[i], rank, "axis");
      if (seen[size_t(axis)]) throw NodeError("axis " + std::to_string(axes[i]) + " is repeated in axes " + join(axes));
      seen[size_t(axis)] = true;
      Shape now;
      const int64_t dim = dims_of(out, now)[size_t(axis)];
      if (steps[i] == 0) throw NodeError("step 0 is not allowed");
      // A step beyond the dim takes the same elements as a step of the dim (and cannot overflow k below).
      const int64_t step = std::clamp<int64_t>(steps[i], -std::max<int64_t>(dim, 1), std::max<int64_t>(dim, 1));
      std::vector<int64_t> picks;  // the elements taken, in order (a negative step walks backwards: torch.flip)
      int64_t begin = 0, end = 0;
      if (dim > 0) {
        begin = clamp_bound(starts[i], dim, step, true), end = clamp_bound(ends[i], dim, step, false);
        if (out.is_int || step < 0)  // floats with a positive step are one strided view, no list needed
          for (int64_t k = begin; step > 0 ? k < end : k > end; k += step) picks.push_back(k);
      }
      if (!out.is_int) {
        if (step > 0) {
          out.tensor = slice(out.tensor, axis, begin, std::max(begin, end), step);
          continue;
        }
        if (picks.empty()) throw NodeError("an empty backwards slice is not supported");
        std::vector<Tensor> pieces;
        for (int64_t k : picks) pieces.push_back(slice(out.tensor, axis, k, k + 1));
        out.tensor = pieces.size() == 1 ? pieces[0] : concat(pieces, axis);
        continue;
      }
      out.ints = take_ints(out.ints, size_t(axis), picks);
    }
    return out;
  });
}

Kernel gather_kernel(const NodeInfo& node) {
  const int64_t attr_axis = attr_int(node, "axis", 0);
  return unary([attr_axis](const std::vector<const Value*>& in) {
    if (!has_input(in, 0)) throw NodeError("input 0 (data) is missing");
    const Value& data = *in[0];
    const IntTensor& indices = int_input(in, 1, "indices");
    Shape storage;
    const std::vector<int64_t> dims = dims_of(data, storage);
    const int64_t axis = normalize_axis(attr_axis, int64_t(dims.size()), "axis");
    const int64_t dim = dims[size_t(axis)];
    std::vector<int64_t> picks;
    for (int64_t i : indices.values) {
      if (i < -dim || i >= dim) throw NodeError("index " + std::to_string(i) + " is outside [" + std::to_string(-dim) + ", " + std::to_string(dim) + ")");
      picks.push_back(i < 0 ? i + dim : i);
    }
    Shape out(dims.begin(), dims.begin() + axis);
    out.insert(out.end(), indices.dims.begin(), indices.dims.end());
    out.insert(out.end(), dims.begin() + axis + 1, dims.end());
    check_created(out, "Gather's result");
    if (data.is_int) {
      IntTensor r = take_ints(data.ints, size_t(axis), picks);
      r.dims = out;
      return Value::of_ints(r);
    }
    // Floating data (e.g. picking a time step): the picked slices side by side, then the output's shape.
    std::vector<Tensor> pieces;
    for (int64_t p : picks) pieces.push_back(slice(data.tensor, axis, p, p + 1));
    if (pieces.empty()) throw NodeError("empty indices are not supported");
    Tensor picked = pieces.size() == 1 ? pieces[0] : concat(pieces, axis);
    return Value::of(reshape(picked, out));
  });
}

Kernel concat_kernel(const NodeInfo& node) {
  if (!has_attr(node, "axis")) throw NodeError("attribute 'axis' is required");
  const int64_t attr_axis = attr_int(node, "axis", 0);
  return unary([attr_axis](const std::vector<const Value*>& in) {
    bool all_int = true;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!has_input(in, i)) throw NodeError("input " + std::to_string(i) + " is missing");
      all_int = all_int && in[i]->is_int;
    }
    if (in.empty()) throw NodeError("needs at least one input");
    if (all_int) {
      // Integers: blocks of every input in turn, for each index before the axis.
      const int64_t rank = int64_t(in[0]->ints.dims.size());
      const size_t axis = size_t(normalize_axis(attr_axis, rank, "axis"));
      IntTensor r;
      r.dims = in[0]->ints.dims;
      r.dims[axis] = 0;
      for (const Value* v : in) {
        if (int64_t(v->ints.dims.size()) != rank) throw NodeError("integer inputs differ in rank");
        for (size_t a = 0; a < size_t(rank); ++a)
          if (a != axis && v->ints.dims[a] != r.dims[a]) throw NodeError("integer inputs " + join(v->ints.dims) + " and " + join(in[0]->ints.dims) + " differ off the axis");
        r.dims[axis] += v->ints.dims[axis];
      }
      check_created(r.dims, "integer concatenation");
      const int64_t outer = has_zero_dim(r.dims) ? 0 : product(r.dims, 0, axis);
      for (int64_t o = 0; o < outer && !has_zero_dim(r.dims); ++o)
        for (const Value* v : in) {
          const int64_t block = product(v->ints.dims, axis, v->ints.dims.size());
          r.values.insert(r.values.end(), v->ints.values.begin() + o * block, v->ints.values.begin() + (o + 1) * block);
        }
      return Value::of_ints(r);
    }
    std::vector<Tensor> xs;
    DType dt = DType::F32;
    for (const Value* v : in)
      if (!v->is_int) dt = v->tensor.dtype();
    for (const Value* v : in) xs.push_back(v->is_int ? ints_to_tensor(v->ints, dt) : v->tensor);
    return Value::of(concat(xs, normalize_axis(attr_axis, xs[0].dim(), "axis")));
  });
}

Kernel pad_kernel(const NodeInfo& node) {
  const std::string mode = attr_string(node, "mode", "constant");
  if (mode != "constant") throw NodeError("attribute 'mode' = " + mode + " is not supported (only constant)");
  return unary([](const std::vector<const Value*>& in) {
    const Tensor& x = float_input(in, 0, "data");
    if (has_input(in, 3)) throw NodeError("input 'axes' is not supported");
    const std::vector<int64_t> p = int_input(in, 1, "pads").values;
    const int64_t rank = x.dim();
    if (int64_t(p.size()) != 2 * rank) throw NodeError("pads " + join(p) + " do not have 2 x rank " + std::to_string(rank) + " values");
    const double value = has_input(in, 2) ? scalar_input(in, 2, "constant_value") : 0.0;
    // ONNX: [x1_begin, x2_begin, ..., x1_end, x2_end, ...]; advgrad's pad: {last_begin, last_end, ...}.
    std::vector<int64_t> torch_order;
    Shape out = x.shape();
    for (int64_t a = rank - 1; a >= 0; --a) {
      const int64_t before = p[size_t(a)], after = p[size_t(a + rank)];
      if (before < 0 || after < 0) throw NodeError("negative pads " + join(p) + " are not supported");
      if (before > kMaxCreatedElements || after > kMaxCreatedElements) throw NodeError("pads " + join(p) + " are too large");
      torch_order.push_back(before);
      torch_order.push_back(after);
      out[size_t(a)] += before + after;
    }
    check_created(out, "padded shape");
    return Value::of(pad(x, torch_order, value));
  });
}

Kernel constant_of_shape_kernel(const NodeInfo& node) {
  Value fill = Value::of(zeros({1}));
  auto it = node.attributes.find("value");
  if (it != node.attributes.end()) {
    if (it->second.kind != Attribute::Kind::Tensor) throw NodeError("attribute 'value' is not a tensor");
    fill = it->second.tensor;
    const int64_t n = fill.is_int ? fill.ints.numel() : fill.tensor.numel();
    if (n != 1) throw NodeError("attribute 'value' must hold one element, has " + std::to_string(n));
  }
  return unary([fill](const std::vector<const Value*>& in) {
    const Shape shape = shape_input(in, 0, "input", 0);
    check_created(shape, "shape");
    if (fill.is_int) {
      IntTensor r;
      r.dims = shape;
      r.values.assign(size_t(shape_numel(shape)), fill.ints.values[0]);
      return Value::of_ints(r);
    }
    return Value::of(full(shape, fill.tensor.item(), fill.tensor.dtype()));
  });
}

}  // namespace

void add_shape_ops(OpTable& t) {
  t["Flatten"].attributes = {"axis"};
  t["Flatten"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const int64_t attr_axis = attr_int(node, "axis", 1);
    return unary([attr_axis](const std::vector<const Value*>& in) {
      const Tensor& x = float_input(in, 0, "input");
      const int64_t axis = attr_axis < 0 ? attr_axis + x.dim() : attr_axis;
      if (axis < 0 || axis > x.dim()) throw NodeError("axis " + std::to_string(attr_axis) + " is outside [-rank, rank]");
      const Shape& s = x.shape();
      return Value::of(reshape(x, {product(s, 0, size_t(axis)), product(s, size_t(axis), s.size())}));
    });
  };

  t["Reshape"].attributes = {"allowzero"};
  t["Reshape"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    if (attr_int(node, "allowzero", 0) != 0) throw NodeError("attribute 'allowzero' = 1 is not supported");
    return unary([](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      Shape storage;
      const std::vector<int64_t> dims = dims_of(*in[0], storage);
      Shape target = shape_input(in, 1, "shape", -1);
      if (std::count(target.begin(), target.end(), -1) > 1) throw NodeError("shape " + join(target) + " has more than one -1");
      for (size_t i = 0; i < target.size(); ++i)
        if (target[i] == 0) {  // 0 copies the input's dim
          if (i >= dims.size()) throw NodeError("shape " + join(target) + " copies dim " + std::to_string(i) + " of a rank-" + std::to_string(dims.size()) + " input");
          target[i] = dims[i];
        }
      if (in[0]->is_int && std::count(target.begin(), target.end(), -1) == 1) {
        int64_t known = 1;
        for (int64_t d : target)
          if (d != -1) known *= d;
        for (auto& d : target)
          if (d == -1) d = known ? in[0]->ints.numel() / known : 0;
      }
      return reshape_value(*in[0], target);
    });
  };

  t["Transpose"].attributes = {"perm"};
  t["Transpose"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const std::vector<int64_t> perm = attr_ints(node, "perm", {});
    return unary([perm](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      Shape storage;
      const std::vector<int64_t> dims = dims_of(*in[0], storage);
      std::vector<int64_t> order = perm;
      if (order.empty())
        for (int64_t a = int64_t(dims.size()) - 1; a >= 0; --a) order.push_back(a);
      std::vector<int64_t> sorted = order;
      std::sort(sorted.begin(), sorted.end());
      for (size_t a = 0; a < sorted.size(); ++a)
        if (sorted[a] != int64_t(a) || sorted.size() != dims.size())
          throw NodeError("perm " + join(order) + " is not a permutation of the input's " + std::to_string(dims.size()) + " axes");
      if (in[0]->is_int) return Value::of_ints(permute_ints(in[0]->ints, order));
      return Value::of(permute(in[0]->tensor, order));
    });
  };

  // Squeeze/Unsqueeze: axes are an attribute before opset 13, an input since.
  t["Squeeze"].attributes = {"axes"};
  t["Squeeze"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    return unary([node](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      return do_squeeze(*in[0], axes_from(node, in, 1, 13));
    });
  };
  t["Unsqueeze"].attributes = {"axes"};
  t["Unsqueeze"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    if (node.opset < 13 && !has_attr(node, "axes")) throw NodeError("attribute 'axes' is required");
    return unary([node](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      const std::vector<int64_t> axes = axes_from(node, in, 1, 13);
      if (axes.empty()) throw NodeError("axes are missing");
      return do_unsqueeze(*in[0], axes);
    });
  };

  t["Concat"] = {11, 17, {"axis"}, [](const NodeInfo& n, const std::vector<const Value*>&) { return concat_kernel(n); }};
  t["Slice"] = {11, 17, {}, [](const NodeInfo& n, const std::vector<const Value*>&) { return slice_kernel(n); }};
  t["Gather"] = {11, 17, {"axis"}, [](const NodeInfo& n, const std::vector<const Value*>&) { return gather_kernel(n); }};
  t["Pad"] = {11, 17, {"mode"}, [](const NodeInfo& n, const std::vector<const Value*>&) { return pad_kernel(n); }};
  t["ConstantOfShape"] = {11, 17, {"value"}, [](const NodeInfo& n, const std::vector<const Value*>&) { return constant_of_shape_kernel(n); }};

  t["Expand"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      const Tensor& x = float_input(in, 0, "input");
      const Shape target = shape_input(in, 1, "shape", 1);
      const Shape out = broadcast_shapes(x.shape(), target, "Expand");
      check_created(out, "output shape");
      return Value::of(expand(x, out));
    });
  };

  // Shape (opset 15 adds start/end): the dims of a value, as integers.
  t["Shape"].attributes = {"start", "end"};
  t["Shape"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const int64_t start = attr_int(node, "start", 0), end = attr_int(node, "end", std::numeric_limits<int64_t>::max());
    return unary([start, end](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      Shape storage;
      const std::vector<int64_t> dims = dims_of(*in[0], storage);
      const int64_t r = int64_t(dims.size());
      const int64_t b = std::clamp<int64_t>(start < 0 ? start + r : start, 0, r);
      const int64_t e = std::clamp<int64_t>(end < 0 ? end + r : end, 0, r);
      IntTensor s;
      s.values.assign(dims.begin() + b, dims.begin() + std::max(b, e));
      s.dims = {s.numel()};
      return Value::of_ints(s);
    });
  };

  t["Range"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      const double start = scalar_input(in, 0, "start"), limit = scalar_input(in, 1, "limit"), delta = scalar_input(in, 2, "delta");
      if (delta == 0) throw NodeError("delta is 0");
      const double count = std::ceil((limit - start) / delta);
      if (!(count <= double(int64_t(1) << 24))) throw NodeError("a Range of " + std::to_string(count) + " values is too long");
      if (!in[0]->is_int) return Value::of(arange(start, limit, delta, in[0]->tensor.dtype()));
      // Integers: from the integer inputs themselves (a double loses exactness above 2^53), checked.
      const int64_t first = int_input(in, 0, "start").values.at(0), step = int_input(in, 2, "delta").values.at(0);
      const int64_t n = count > 0 ? int64_t(count) : 0;  // count may be -1e300: no cast of that to int64
      IntTensor r;
      int64_t value = first;
      for (int64_t i = 0; i < n; ++i) {
        r.values.push_back(value);
        if (i + 1 < n && __builtin_add_overflow(value, step, &value)) throw NodeError("Range overflows int64");
      }
      r.dims = {n};
      return Value::of_ints(r);
    });
  };

  // Constant: its value is converted (and checked) at load; value_float(s)/value_int(s) are the short forms.
  t["Constant"].attributes = {"value", "value_float", "value_floats", "value_int", "value_ints"};
  t["Constant"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    if (node.attributes.size() != 1) throw NodeError("needs exactly one value attribute");
    const auto& [name, a] = *node.attributes.begin();
    Value v;
    if (name == "value" && a.kind == Attribute::Kind::Tensor) v = a.tensor;
    else if (name == "value_float" && a.kind == Attribute::Kind::Float) v = Value::of(scalar_tensor(a.f));
    else if (name == "value_floats" && a.kind == Attribute::Kind::Floats) v = Value::of(from_vector(a.floats, {int64_t(a.floats.size())}).to(DType::F32));
    else if (name == "value_int" && a.kind == Attribute::Kind::Int) v = Value::of_ints({{}, {a.i}});
    else if (name == "value_ints" && a.kind == Attribute::Kind::Ints) v = Value::of_ints({{int64_t(a.ints.size())}, a.ints});
    else throw NodeError("attribute '" + name + "' has the wrong type");
    return unary([v](const std::vector<const Value*>&) { return v; });
  };
}

}  // namespace advgrad::onnx_import
