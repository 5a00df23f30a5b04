// This project's own "core/tensor.h", named like advgrad's on purpose: advgrad's headers include theirs as
// "advgrad/core/tensor.h", so this one is never mistaken for it. Checks on adversarial examples.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <advgrad/core/tensor.h>

namespace consumer {

// True when every element of x_adv lies in [0, 1] and within eps of x (max norm), with float rounding slack.
inline bool in_threat_model(const advgrad::Tensor& x, const advgrad::Tensor& x_adv, double eps) {
  const std::vector<float> a = x.to_vector<float>(), b = x_adv.to_vector<float>();
  if (a.size() != b.size()) return false;
  double worst_distance = 0, lowest = 1, highest = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst_distance = std::max(worst_distance, std::abs(double(b[i]) - double(a[i])));
    lowest = std::min(lowest, double(b[i]));
    highest = std::max(highest, double(b[i]));
  }
  std::printf("largest perturbation %.6f (eps %.6f), values in [%.6f, %.6f]\n", worst_distance, eps, lowest, highest);
  return worst_distance <= eps + 1e-6 && lowest >= 0 && highest <= 1;
}

}  // namespace consumer
