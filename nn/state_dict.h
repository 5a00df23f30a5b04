// A state dict: tensors by hierarchical name ("0.weight", "lstm.weight_ih_l0"), as PyTorch's state_dict().
// Sorted by name, so iterating it is deterministic.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"
#include "advgrad/core/tensor.h"

namespace advgrad {

using StateDict = std::map<std::string, Tensor>;

// "" when every value of t is finite (always, for int64); otherwise a description of the non-finite
// values for an error message: "3 non-finite values (the first, NaN, at flat index 5)". Loaders refuse
// such weights and optimizer state unless told otherwise: a NaN there is silent (relu and max-pool
// propagate it into every output, a momentum buffer into every later step).
// The values of a float tensor that a 0/1 mask of the same shape marks as bad: how many, and the first
// (row-major) with its flat index. Computed with tensor ops on the tensor's device; one value is copied out.
struct BadValues {
  int64_t count = 0, first = -1;
  double first_value = 0;
};
inline BadValues find_bad_values(const Tensor& t, const Tensor& bad_mask) {
  NoGradGuard no_grad;
  BadValues r;
  Tensor flat = reshape(bad_mask.to(DType::F64), {-1});
  r.count = int64_t(sum(flat).item());
  if (r.count == 0) return r;
  r.first = int64_t(argmax(flat, 0).item());  // the first 1
  r.first_value = reshape(t, {-1}).at({r.first});
  return r;
}

inline std::string non_finite_summary(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) return "";
  NoGradGuard no_grad;
  // |v| < inf is false exactly for NaN and +-inf.
  const Tensor infinity = scalar_tensor(INFINITY, t.dtype(), t.device());
  const BadValues b = find_bad_values(t, 1.0 - lt(abs(t), infinity));
  if (b.count == 0) return "";
  const char* what = std::isnan(b.first_value) ? "NaN" : b.first_value > 0 ? "+inf" : "-inf";
  return std::to_string(b.count) + " non-finite value" + (b.count > 1 ? "s" : "") + " (the first, " + what +
         ", at flat index " + std::to_string(b.first) + ")";
}

// "" unless `value` is floating point and `destination` an integer dtype and some value is not a whole
// number in int64's range (NaN, inf, 2.5, 1e30: converting those is undefined behaviour or silently
// wrong); then a description for an error message: "2 values that are not whole numbers in int64's range
// (the first, nan, at flat index 0)". Used by load_safetensors_into and Module::load_state_dict before an
// integer buffer (BatchNorm's num_batches_tracked) takes a float tensor from a file.
inline std::string non_integral_summary(const Tensor& value, DType destination) {
  if (!value.defined() || !is_floating(value.dtype()) || is_floating(destination) || value.numel() == 0) return "";
  // [-2^63, 2^63) holds exactly the doubles int64 can take; NaN fails every comparison. Only values in that
  // range are converted (converting the others is the undefined behaviour this guards against); a value is
  // whole when truncating it to int64 gives it back.
  NoGradGuard no_grad;
  const Tensor v = value.to(DType::F64);
  const Tensor in_range = ge(v, scalar_tensor(-9223372036854775808.0, DType::F64, v.device())) *
                          lt(v, scalar_tensor(9223372036854775808.0, DType::F64, v.device()));
  const Tensor safe = where(in_range, v, zeros_like(v));
  const Tensor whole = eq(safe.to(DType::I64).to(DType::F64), safe);
  const BadValues b = find_bad_values(value, 1.0 - in_range * whole);
  if (b.count == 0) return "";
  char shown[32];
  std::snprintf(shown, sizeof shown, "%g", b.first_value);
  return std::to_string(b.count) + (b.count > 1 ? " values that are" : " value that is") +
         " not a whole number in int64's range (the first, " + shown + ", at flat index " + std::to_string(b.first) +
         ")";
}

}  // namespace advgrad
