// A state dict: tensors by hierarchical name ("0.weight", "lstm.weight_ih_l0"), as PyTorch's state_dict().
// Sorted by name, so iterating it is deterministic.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include "core/tensor.h"

namespace advgrad {

using StateDict = std::map<std::string, Tensor>;

// "" when every value of t is finite (always, for int64); otherwise a description of the non-finite
// values for an error message: "3 non-finite values (the first, NaN, at flat index 5)". Loaders refuse
// such weights and optimizer state unless told otherwise: a NaN there is silent (relu and max-pool
// propagate it into every output, a momentum buffer into every later step).
inline std::string non_finite_summary(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) return "";
  const Tensor d = t.dense();
  int64_t count = 0, first = -1;
  double first_value = 0;
  auto scan = [&](const auto* p) {
    for (int64_t i = 0, n = d.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) {
        if (count++ == 0) first = i, first_value = double(p[i]);
      }
  };
  if (d.dtype() == DType::F32) scan(d.data<float>());
  else scan(d.data<double>());
  if (count == 0) return "";
  const char* what = std::isnan(first_value) ? "NaN" : first_value > 0 ? "+inf" : "-inf";
  return std::to_string(count) + " non-finite value" + (count > 1 ? "s" : "") + " (the first, " + what +
         ", at flat index " + std::to_string(first) + ")";
}

}  // namespace advgrad
