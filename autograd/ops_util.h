// Helpers shared by the op implementations (not part of the public API).
#pragma once
#include <string>

#include "advgrad/autograd/function.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/autograd/trace.h"
#include "advgrad/core/backend.h"

namespace advgrad::detail {

inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }
inline Tensor empty_like_shape(const Shape& shape, const Tensor& like) {
  return Tensor::empty(shape, like.dtype(), like.device());
}
// TypeError naming `op` unless a and b share dtype and device.
void check_compatible(const Tensor& a, const Tensor& b, const char* op);
void check_defined(const Tensor& t, const char* op, const char* what);
void check_floating(const Tensor& t, const char* op);
// A graph-free view of t broadcast to `shape` (stride 0 on broadcast dims).
Tensor broadcast_view(const Tensor& t, const Shape& shape, const char* op);
// Sums g over the dims that broadcasting added or stretched, giving a tensor of `shape`.
Tensor sum_to(const Tensor& g, const Shape& shape);
// Sizes of the [outer, n, inner] view of a dense tensor around `axis`.
struct AxisSplit {
  int64_t outer, n, inner;
};
AxisSplit split_at(const Shape& shape, int64_t axis);
// Shape with the given (normalised, sorted) axes set to 1 or removed.
Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& axes, bool keepdim);
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, const char* op);
// The flat position of the first value of an int64 tensor outside [0, n), or -1 if there is none. With
// tensor ops on the tensor's device (labels and indices are checked without reading device memory).
int64_t first_index_outside(const Tensor& index, int64_t n);

}  // namespace advgrad::detail
