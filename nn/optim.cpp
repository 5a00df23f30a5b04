// Optimizers. The arithmetic follows PyTorch's single-tensor code paths operation by operation (same
// order of multiplications and additions), so float64 results agree with PyTorch to rounding.
#include "advgrad/nn/optim.h"

#include <cmath>
#include <set>

#include "advgrad/core/backend.h"
#include "advgrad/core/grad_mode.h"

namespace advgrad {

namespace {

void check_hyper(bool ok, const std::string& opt, const char* what, double value) {
  if (!ok) throw ValueError(opt + ": invalid " + what + " " + std::to_string(value));
}

// "12" -> 12; -1 for anything that is not a plain decimal index.
int64_t parse_index(const std::string& s) {
  if (s.empty() || s.size() > 12) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A step count stored as a one-element tensor: a non-negative integer value (PyTorch keeps it as float).
int64_t read_count(const std::string& opt, const std::string& key, const Tensor& t) {
  if (t.numel() != 1) throw ValueError(opt + ".load_state: '" + key + "' has shape " + shape_str(t.shape()) +
                                       "; expected a single step count");
  double v = t.item();
  if (!(v >= 0) || v != std::floor(v) || v > 9.0e15)
    throw ValueError(opt + ".load_state: '" + key + "' = " + std::to_string(v) + " is not a step count");
  return int64_t(v);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Optimizer

Optimizer::Optimizer(std::string name, std::vector<Tensor> params, double lr, std::vector<std::string> buffer_names,
                     bool per_param_steps)
    : name_(std::move(name)), params_(std::move(params)), lr_(0), buffer_names_(std::move(buffer_names)),
      per_param_steps_(per_param_steps) {
  set_lr(lr);
  std::set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) throw ValueError(name_ + ": parameter " + std::to_string(i) + " is undefined");
    if (!is_floating(p.dtype()))
      throw ValueError(name_ + ": parameter " + std::to_string(i) + " is " + p.describe() + "; expected floating");
    // The same tensor twice would be updated twice per step.
    if (!seen.insert(&p.impl()).second)
      throw ValueError(name_ + ": parameter " + std::to_string(i) + " appears more than once");
  }
  buffers_.assign(params_.size(), std::vector<Tensor>(buffer_names_.size()));
  param_steps_.assign(params_.size(), 0);
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) { check_hyper(lr >= 0 && std::isfinite(lr), name_, "learning rate", lr); lr_ = lr; }

bool Optimizer::set_schedule_momentum(double) { return false; }

Tensor Optimizer::grad_of(size_t i) const {
  const Tensor& p = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  if (g.shape() != p.shape())
    throw ShapeError(name_ + ": gradient " + shape_str(g.shape()) + " of parameter " + std::to_string(i) + " " +
                     shape_str(p.shape()) + " has another shape");
  if (g.dtype() != p.dtype() || g.device() != p.device())
    throw TypeError(name_ + ": gradient " + g.describe() + " of parameter " + std::to_string(i) + " " + p.describe() +
                    " has another dtype or device");
  return g;
}

Tensor Optimizer::scratch(int slot, const Tensor& like) {
  std::vector<Tensor>& pool = scratch_[slot];
  Tensor* buf = nullptr;
  for (Tensor& t : pool)
    if (t.dtype() == like.dtype() && t.device() == like.device()) buf = &t;
  if (!buf) {
    pool.emplace_back();
    buf = &pool.back();
  }
  if (!buf->defined() || buf->numel() < like.numel()) *buf = Tensor::empty({like.numel()}, like.dtype(), like.device());
  return buf->as_strided(like.shape(), dense_strides(like.shape()), 0);
}

StateDict Optimizer::state() const {
  StateDict out;
  out["step"] = scalar_tensor(double(step_count_), DType::I64);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!buffers_[i].empty() && !buffers_[i][0].defined()) continue;  // not updated yet: no state (lazy)
    std::string prefix = std::to_string(i) + ".";
    for (size_t k = 0; k < buffer_names_.size(); ++k) out[prefix + buffer_names_[k]] = buffers_[i][k].clone();
    if (per_param_steps_) out[prefix + "step"] = scalar_tensor(double(param_steps_[i]), DType::I64);
  }
  return out;
}

void Optimizer::load_state(const StateDict& state, bool allow_non_finite) {
  const std::string where = name_ + ".load_state";
  // Pass 1: validate every entry and collect the new state; nothing changes if anything is wrong.
  auto new_buffers = std::vector<std::vector<Tensor>>(params_.size(), std::vector<Tensor>(buffer_names_.size()));
  std::vector<int64_t> new_steps(params_.size(), 0);
  std::vector<bool> has_step(params_.size(), false);
  bool has_global = false;
  int64_t new_count = 0;
  for (const auto& [key, t] : state) {
    if (!t.defined()) throw ValueError(where + ": '" + key + "' is an undefined tensor");
    if (key == "step") {
      new_count = read_count(name_, key, t);
      has_global = true;
      continue;
    }
    size_t dot = key.find('.');
    int64_t i = dot == std::string::npos ? -1 : parse_index(key.substr(0, dot));
    std::string field = dot == std::string::npos ? "" : key.substr(dot + 1);
    if (i < 0) throw ValueError(where + ": unknown entry '" + key + "'");
    if (i >= int64_t(params_.size()))
      throw ValueError(where + ": '" + key + "' refers to parameter " + std::to_string(i) + " but there are " +
                       std::to_string(params_.size()));
    const Tensor& p = params_[size_t(i)];
    if (per_param_steps_ && field == "step") {
      new_steps[size_t(i)] = read_count(name_, key, t);
      has_step[size_t(i)] = true;
      continue;
    }
    size_t k = 0;
    while (k < buffer_names_.size() && buffer_names_[k] != field) ++k;
    if (k == buffer_names_.size()) throw ValueError(where + ": unknown entry '" + key + "'");
    if (t.shape() != p.shape())
      throw ValueError(where + ": '" + key + "' has shape " + shape_str(t.shape()) + " but parameter " +
                       std::to_string(i) + " has shape " + shape_str(p.shape()));
    if (t.dtype() != p.dtype())
      throw ValueError(where + ": '" + key + "' is " + dtype_name(t.dtype()) + " but parameter " + std::to_string(i) +
                       " is " + dtype_name(p.dtype()));
    if (!allow_non_finite) {
      const std::string bad = non_finite_summary(t);
      if (!bad.empty())
        throw ValueError(where + ": '" + key + "' (buffer of parameter " + std::to_string(i) + ") holds " + bad +
                         "; NaN/inf optimizer state is refused unless allow_non_finite is set");
    }
    new_buffers[size_t(i)][k] = t.to(p.device()).clone();  // a private copy: training must not edit the dict
  }
  if (!has_global) throw ValueError(where + ": missing 'step'");
  // A parameter has either its complete state (it was updated before) or none at all.
  for (size_t i = 0; i < params_.size(); ++i) {
    std::string present, missing;
    auto note = [&](bool have, const std::string& n) { (have ? present : missing) = std::to_string(i) + "." + n; };
    for (size_t k = 0; k < buffer_names_.size(); ++k) note(new_buffers[i][k].defined(), buffer_names_[k]);
    if (per_param_steps_) note(has_step[i], "step");
    if (!present.empty() && !missing.empty())
      throw ValueError(where + ": '" + present + "' is given without '" + missing + "'");
  }
  // Pass 2: commit.
  buffers_ = std::move(new_buffers);
  param_steps_ = std::move(new_steps);
  step_count_ = new_count;
}

// ---------------------------------------------------------------------------------------------------------
// SGD

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double dampening, double weight_decay, bool nesterov)
    : Optimizer("SGD", std::move(params), lr, {"momentum_buffer"}, false),
      momentum_(0), dampening_(dampening), weight_decay_(weight_decay), nesterov_(nesterov) {
  set_momentum(momentum);
  check_hyper(weight_decay >= 0 && std::isfinite(weight_decay), name_, "weight_decay", weight_decay);
  check_hyper(std::isfinite(dampening), name_, "dampening", dampening);
  if (nesterov && (momentum <= 0 || dampening != 0))
    throw ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening");
}

void SGD::set_momentum(double momentum) {
  check_hyper(momentum >= 0 && std::isfinite(momentum), name_, "momentum", momentum);
  momentum_ = momentum;
}

bool SGD::set_schedule_momentum(double value) {
  set_momentum(value);
  return true;
}

void SGD::step() {
  NoGradGuard no_grad;
  ++step_count_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Backend& be = backend_for(p.device());
    if (weight_decay_ != 0) {  // L2 penalty folded into the gradient (the .grad itself is left alone)
      Tensor t = scratch(0, p);
      be.unary(UnaryOp::MulScalar, p, t, weight_decay_);
      be.binary(BinaryOp::Add, g, t, t);
      g = t;
    }
    Tensor d = g;  // the direction
    if (momentum_ != 0) {
      Tensor& buf = buffer(i, 0);
      if (!buf.defined()) {  // first momentum step: the buffer starts as the gradient itself
        buf = Tensor::empty(p.shape(), p.dtype(), p.device());
        be.copy(g, buf);
      } else {
        be.unary(UnaryOp::MulScalar, buf, buf, momentum_);
        if (dampening_ != 0) {
          Tensor t = scratch(1, p);
          be.unary(UnaryOp::MulScalar, g, t, 1 - dampening_);
          be.binary(BinaryOp::Add, buf, t, buf);
        } else {
          be.binary(BinaryOp::Add, buf, g, buf);
        }
      }
      if (nesterov_) {  // look ahead: g + momentum * buf
        Tensor t = scratch(1, p);
        be.unary(UnaryOp::MulScalar, buf, t, momentum_);
        be.binary(BinaryOp::Add, g, t, t);
        d = t;
      } else {
        d = buf;
      }
    }
    Tensor t = scratch(1, p);  // may be d itself: the kernels allow element-for-element aliasing
    be.unary(UnaryOp::MulScalar, d, t, -lr_);
    be.binary(BinaryOp::Add, p, t, p);
    p.bump_version();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Adam / AdamW

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam("Adam", std::move(params), lr, beta1, beta2, eps, weight_decay, false) {}

Adam::Adam(std::string name, std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled)
    : Optimizer(std::move(name), std::move(params), lr, {"exp_avg", "exp_avg_sq"}, true),
      beta1_(0), beta2_(beta2), eps_(eps), weight_decay_(weight_decay), decoupled_(decoupled) {
  set_beta1(beta1);
  check_hyper(beta2 >= 0 && beta2 < 1, name_, "beta2", beta2);
  check_hyper(eps >= 0 && std::isfinite(eps), name_, "eps", eps);
  check_hyper(weight_decay >= 0 && std::isfinite(weight_decay), name_, "weight_decay", weight_decay);
}

void Adam::set_beta1(double beta1) {
  check_hyper(beta1 >= 0 && beta1 < 1, name_, "beta1", beta1);
  beta1_ = beta1;
}

bool Adam::set_schedule_momentum(double value) {
  set_beta1(value);
  return true;
}

void Adam::step() {
  NoGradGuard no_grad;
  ++step_count_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Backend& be = backend_for(p.device());
    Tensor& m = buffer(i, 0);
    Tensor& v = buffer(i, 1);
    if (!m.defined()) {  // state is created on the parameter's first update, as in PyTorch
      m = zeros(p.shape(), p.dtype(), p.device());
      v = zeros(p.shape(), p.dtype(), p.device());
    }
    const int64_t t = ++param_steps(i);  // per parameter: a skipped parameter's bias correction lags

    if (weight_decay_ != 0) {
      if (decoupled_) {  // AdamW: shrink the weights directly; the moments never see the decay
        be.unary(UnaryOp::MulScalar, p, p, 1 - lr_ * weight_decay_);
      } else {  // Adam: L2 penalty added to the gradient
        Tensor a = scratch(0, p);
        be.unary(UnaryOp::MulScalar, p, a, weight_decay_);
        be.binary(BinaryOp::Add, g, a, a);
        g = a;
      }
    }
    Tensor b = scratch(1, p);
    // m = beta1 * m + (1 - beta1) * g
    be.unary(UnaryOp::MulScalar, m, m, beta1_);
    be.unary(UnaryOp::MulScalar, g, b, 1 - beta1_);
    be.binary(BinaryOp::Add, m, b, m);
    // v = beta2 * v + ((1 - beta2) * g) * g   (addcmul's order)
    be.unary(UnaryOp::MulScalar, v, v, beta2_);
    be.unary(UnaryOp::MulScalar, g, b, 1 - beta2_);
    be.binary(BinaryOp::Mul, b, g, b);
    be.binary(BinaryOp::Add, v, b, v);
    // p += -step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps)
    const double bias_correction1 = 1 - std::pow(beta1_, double(t));
    const double bias_correction2 = 1 - std::pow(beta2_, double(t));
    const double step_size = lr_ / bias_correction1;
    be.unary(UnaryOp::Sqrt, v, b);
    be.unary(UnaryOp::Affine, b, b, 1 / std::sqrt(bias_correction2), eps_);
    be.binary(BinaryOp::Div, m, b, b);
    be.unary(UnaryOp::MulScalar, b, b, -step_size);
    be.binary(BinaryOp::Add, p, b, p);
    p.bump_version();
  }
}

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam("AdamW", std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}

// ---------------------------------------------------------------------------------------------------------
// Gradient clipping

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  if (!(max_norm >= 0)) throw ValueError("clip_grad_norm: invalid max_norm " + std::to_string(max_norm));
  // Squares summed in float64 per parameter (a reduction fixed by the shape), then over the parameters in
  // order: the norm is the same at any thread count.
  double sum_sq = 0;
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!is_floating(g.dtype())) throw TypeError("clip_grad_norm: needs float gradients, got " + g.describe());
    sum_sq += sum(square(g.to(DType::F64))).item();
  }
  const double norm = std::sqrt(sum_sq);
  const double coef = max_norm / (norm + 1e-6);
  if (!(coef >= 1.0)) {  // PyTorch clamps the factor at 1; a NaN factor propagates as there
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.mul_(coef);
    }
  }
  return norm;
}

}  // namespace advgrad
