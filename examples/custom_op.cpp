// Defining your own differentiable op: softplus(x) = log(1 + e^x), with its derivative sigmoid(x).
//
// The recipe (autograd/function.h): run the forward with any tensor code, then record() the result with
// a backward function that maps the output's gradient to one gradient per input. Tensors the backward
// needs are captured as SavedTensor, which detects in-place modification. gradcheck then compares your
// backward against finite differences.
#include <iostream>

#include "advgrad/autograd/function.h"
#include "advgrad/autograd/gradcheck.h"
#include "advgrad/autograd/ops.h"

using namespace advgrad;

Tensor softplus(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_graph;  // the forward's own ops must not be recorded: record() adds the one node
    // Stable form: max(x, 0) + log(1 + e^-|x|).
    y = add(relu(x), log(add(exp(neg(abs(x))), 1.0)));
  }
  if (!should_record({x})) return y;
  SavedTensor saved_x(x, "softplus");
  return record("softplus", {x}, y, [saved_x](const Tensor& grad_y, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(grad_y, sigmoid(saved_x.unpack()))};
  });
}

int main() {
  Generator gen(0);
  Tensor x = mul(randn({2, 3}, gen, DType::F64), 3.0);
  std::cout << "x = " << x << "\nsoftplus(x) = " << softplus(x) << "\n";

  auto result = gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0]); }, {x});
  std::cout << result.to_string() << "\n";
  return result.ok ? 0 : 1;
}
