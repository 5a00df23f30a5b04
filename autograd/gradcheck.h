// gradcheck: compares the gradients autograd computes with central finite differences in float64.
// A library utility (as in tiny-dnn and dlib), used by the tests of every op and available to users who
// write their own ops.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "advgrad/core/tensor.h"

namespace advgrad {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;  // worst |analytic - numeric| over all Jacobian entries
  std::string worst;         // where the worst entry is: "input 1, element 7, output element 3: analytic .. numeric .."
  std::string to_string() const;
};

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // an entry passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
};

// f maps inputs to one output tensor. Every input must be float64; those with requires_grad are checked
// (if none has it, all floating inputs are). The full Jacobian is compared: one backward pass per output
// element, two forward passes per input element, so keep tensors small.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace advgrad
