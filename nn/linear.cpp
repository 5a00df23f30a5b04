#include <cmath>

#include "advgrad/nn/init.h"
#include "advgrad/nn/layers.h"

namespace advgrad {

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool with_bias) {
  if (in_features < 1 || out_features < 1) throw ValueError("Linear: feature counts must be >= 1");
  // PyTorch: kaiming_uniform_(a=sqrt(5)) for the weight = U(-1/sqrt(in), 1/sqrt(in)); the bias the same.
  Tensor w = zeros({out_features, in_features});
  init::kaiming_uniform_(w, std::sqrt(5.0), gen);
  weight = register_parameter("weight", w);
  if (with_bias) {
    double bound = 1.0 / std::sqrt(double(in_features));
    Tensor b = zeros({out_features});
    bias = register_parameter("bias", init::uniform_(b, -bound, bound, gen));
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::describe() const {
  return "Linear(in_features=" + std::to_string(weight.size(1)) + ", out_features=" + std::to_string(weight.size(0)) +
         ", bias=" + (bias.defined() ? "true" : "false") + ")";
}

}  // namespace advgrad
