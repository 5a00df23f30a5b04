// Shapes and strides are plain vectors of int64 (any rank); these helpers keep the arithmetic in one place.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace advgrad {

using Shape = std::vector<int64_t>;

// Product of the dims; 1 for a 0-d (scalar) shape. Throws ValueError on a negative dim or overflow.
int64_t shape_numel(const Shape& s);
// Row-major strides of a dense tensor of shape s.
Shape dense_strides(const Shape& s);
// "[2,3,4]"
std::string shape_str(const Shape& s);
// NumPy broadcasting of two shapes; ShapeError names `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Maps a possibly negative axis into [0, ndim); ValueError names `op` when out of range.
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op);

}  // namespace advgrad
