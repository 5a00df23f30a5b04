#include "advgrad/autograd/ops_util.h"

#include <algorithm>

namespace advgrad::detail {

void check_defined(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw ValueError(std::string(op) + ": " + what + " is an undefined tensor");
}

void check_compatible(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op, "first input");
  check_defined(b, op, "second input");
  if (a.dtype() != b.dtype())
    throw TypeError(std::string(op) + ": dtypes differ (" + a.describe() + " vs " + b.describe() + ")");
  if (a.device() != b.device())
    throw TypeError(std::string(op) + ": devices differ (" + a.describe() + " vs " + b.describe() + ")");
}

void check_floating(const Tensor& t, const char* op) {
  if (!is_floating(t.dtype())) throw TypeError(std::string(op) + ": needs a floating tensor, got " + t.describe());
}

Tensor broadcast_view(const Tensor& t, const Shape& shape, const char* op) {
  if (t.shape() == shape) return t.detach();
  if (broadcast_shapes(t.shape(), shape, op) != shape)
    throw ShapeError(std::string(op) + ": " + shape_str(t.shape()) + " does not broadcast to " + shape_str(shape));
  Shape st(shape.size(), 0);
  size_t lead = shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i) st[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return t.as_strided(shape, st, t.offset());
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  size_t lead = g.shape().size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < g.shape().size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(int64_t(i));
  Tensor s = axes.empty() ? g : sum(g, axes, true);
  return reshape(s, shape);
}

AxisSplit split_at(const Shape& shape, int64_t axis) {
  AxisSplit s{1, shape[size_t(axis)], 1};
  for (int64_t i = 0; i < axis; ++i) s.outer *= shape[size_t(i)];
  for (size_t i = size_t(axis) + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (axes.empty()) {
    for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : axes) out.push_back(normalize_axis(a, ndim, op));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw ValueError(std::string(op) + ": an axis is repeated");
  return out;
}

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& axes, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < shape.size(); ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), int64_t(i)) != axes.end();
    if (!reduced) out.push_back(shape[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

int64_t first_index_outside(const Tensor& index, int64_t n) {
  if (index.numel() == 0) return -1;
  NoGradGuard no_grad;
  Tensor flat = reshape(index, {-1});
  Tensor outside = add(lt(flat, scalar_tensor(0.0, DType::I64, flat.device())),
                       ge(flat, scalar_tensor(double(n), DType::I64, flat.device())));
  if (sum(outside).item() == 0) return -1;
  return int64_t(argmax(outside.to(DType::F64), 0).item());  // the first 1 (argmax takes floats)
}

}  // namespace advgrad::detail
