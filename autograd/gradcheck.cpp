#include "advgrad/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"

namespace advgrad {

std::string GradcheckResult::to_string() const {
  std::ostringstream os;
  os << (ok ? "gradcheck passed" : "gradcheck FAILED") << ", max abs error " << max_abs_error;
  if (!worst.empty()) os << " (" << worst << ")";
  return os.str();
}

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs_in,
                          const GradcheckOptions& opt) {
  // Private leaf copies, so perturbing them cannot disturb the caller's tensors.
  std::vector<Tensor> inputs;
  std::vector<size_t> checked;
  bool any_marked = false;
  for (const auto& t : inputs_in) any_marked = any_marked || (t.defined() && t.requires_grad());
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    const Tensor& t = inputs_in[i];
    if (!t.defined() || !is_floating(t.dtype())) {
      inputs.push_back(t);
      continue;
    }
    if (t.dtype() != DType::F64) throw TypeError("gradcheck: input " + std::to_string(i) + " is " + t.describe() +
                                                 "; use float64 so that finite differences are exact enough");
    Tensor c = t.clone();
    if (any_marked ? t.requires_grad() : true) {
      c.requires_grad_(true);
      checked.push_back(i);
    }
    inputs.push_back(c);
  }

  Tensor out = f(inputs);
  if (!out.requires_grad()) throw AutogradError("gradcheck: the output does not depend on any checked input");
  const int64_t n_out = out.numel();
  std::vector<Tensor> diff_inputs;
  for (size_t i : checked) diff_inputs.push_back(inputs[i]);

  // analytic[k][j * n_in + e]: d out[j] / d input_k[e], one backward per output element.
  std::vector<std::vector<double>> analytic(checked.size());
  for (size_t k = 0; k < checked.size(); ++k) analytic[k].assign(size_t(n_out * inputs[checked[k]].numel()), 0.0);
  for (int64_t j = 0; j < n_out; ++j) {
    Tensor seed = zeros(out.shape(), out.dtype(), out.device());
    reshape(seed, {-1}).set({j}, 1.0);  // a view of the dense seed: sets output element j
    std::vector<Tensor> g = grad({out}, diff_inputs, {seed}, /*allow_unused=*/true);
    for (size_t k = 0; k < checked.size(); ++k) {
      if (!g[k].defined()) continue;
      auto v = g[k].to_vector<double>();
      for (size_t e = 0; e < v.size(); ++e) analytic[k][size_t(j) * v.size() + e] = v[e];
    }
  }

  GradcheckResult res;
  NoGradGuard no_grad;
  for (size_t k = 0; k < checked.size(); ++k) {
    Tensor x = inputs[checked[k]];
    const int64_t n_in = x.numel();
    Tensor flat = reshape(x, {-1});  // a view of the dense input: element e is moved through it
    for (int64_t e = 0; e < n_in; ++e) {
      const double saved = flat.at({e});
      flat.set({e}, saved + opt.eps);
      auto plus = f(inputs).to_vector<double>();
      flat.set({e}, saved - opt.eps);
      auto minus = f(inputs).to_vector<double>();
      flat.set({e}, saved);
      for (int64_t j = 0; j < n_out; ++j) {
        double numeric = (plus[size_t(j)] - minus[size_t(j)]) / (2 * opt.eps);
        double a = analytic[k][size_t(j * n_in + e)];
        double err = std::fabs(a - numeric);
        bool bad = !(err <= opt.atol + opt.rtol * std::fabs(numeric));
        if (err > res.max_abs_error || (bad && res.ok) || std::isnan(err)) {
          res.max_abs_error = std::isnan(err) ? INFINITY : std::max(res.max_abs_error, err);
          std::ostringstream os;
          os << "input " << checked[k] << ", element " << e << ", output element " << j << ": analytic " << a
             << ", numeric " << numeric;
          res.worst = os.str();
        }
        if (bad) res.ok = false;
      }
    }
  }
  return res;
}

}  // namespace advgrad
