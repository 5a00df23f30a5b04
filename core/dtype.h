// Element types. float32 is for compute, float64 makes gradient checks exact, int64 holds labels/indices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace advgrad {

enum class DType { F32, F64, I64 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
  }
  return "?";
}
inline bool is_floating(DType t) { return t != DType::I64; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };

// Calls f(T{}) with T the C++ type of `t`: one switch instead of one per kernel.
template <class F> auto dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f(float{});
    case DType::F64: return f(double{});
    default: return f(int64_t{});
  }
}
// Same, for kernels that exist only for floating types; int64 raises a TypeError naming `op`.
void throw_not_floating(const char* op);
template <class F> auto dispatch_floating(DType t, const char* op, F&& f) {
  if (t == DType::F32) return f(float{});
  if (t != DType::F64) throw_not_floating(op);
  return f(double{});
}

}  // namespace advgrad
