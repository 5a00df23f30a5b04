// RNN (tanh) and GRU, unrolled over time with the graph ops: the input projection of all steps is one GEMM,
// then one GEMM with the recurrent weights per step. LSTM runs as one fused op per layer (lstm_sequence,
// autograd/ops_rnn.cpp).
#include <cmath>

#include "advgrad/autograd/ops.h"
#include "advgrad/autograd/trace.h"
#include "advgrad/nn/init.h"
#include "advgrad/nn/layers.h"

namespace advgrad {

namespace {
int64_t gate_count(RecurrentBase::Kind k) {
  return k == RecurrentBase::Kind::LSTM ? 4 : k == RecurrentBase::Kind::GRU ? 3 : 1;
}
const char* kind_name(RecurrentBase::Kind k) {
  return k == RecurrentBase::Kind::LSTM ? "LSTM" : k == RecurrentBase::Kind::GRU ? "GRU" : "RNN";
}
}  // namespace

RecurrentBase::RecurrentBase(Kind kind, int64_t input_size, int64_t hidden_size, int64_t num_layers, Generator& gen,
                             bool bias)
    : kind_(kind), input_(input_size), hidden_(hidden_size), layers_(num_layers), bias_(bias) {
  if (input_size < 1 || hidden_size < 1 || num_layers < 1)
    throw ValueError(std::string(kind_name(kind)) + ": sizes and num_layers must be >= 1");
  const int64_t G = gate_count(kind);
  const double bound = 1.0 / std::sqrt(double(hidden_size));
  auto make = [&](const std::string& name, Shape shape) {
    Tensor t = zeros(shape);
    return register_parameter(name, init::uniform_(t, -bound, bound, gen));
  };
  for (int64_t k = 0; k < num_layers; ++k) {
    std::string s = "_l" + std::to_string(k);
    w_ih_.push_back(make("weight_ih" + s, {G * hidden_size, k == 0 ? input_size : hidden_size}));
    w_hh_.push_back(make("weight_hh" + s, {G * hidden_size, hidden_size}));
    if (bias) {
      b_ih_.push_back(make("bias_ih" + s, {G * hidden_size}));
      b_hh_.push_back(make("bias_hh" + s, {G * hidden_size}));
    } else {
      b_ih_.emplace_back();
      b_hh_.emplace_back();
    }
  }
}

std::string RecurrentBase::describe() const {
  return std::string(kind_name(kind_)) + "(" + std::to_string(input_) + ", " + std::to_string(hidden_) +
         ", num_layers=" + std::to_string(layers_) + ", batch_first=true)";
}

RecurrentOutput RecurrentBase::forward_sequence(const Tensor& x, const RecurrentState& initial) {
  const char* name = kind_name(kind_);
  if (x.dim() != 3 || x.size(2) != input_)
    throw ShapeError(std::string(name) + ": input " + shape_str(x.shape()) + " is not [N, T, " +
                     std::to_string(input_) + "]");
  const int64_t N = x.size(0), T = x.size(1), H = hidden_;
  const Shape state_shape{layers_, N, H};
  auto check_state = [&](const Tensor& s, const char* what) {
    if (s.defined() && s.shape() != state_shape)
      throw ShapeError(std::string(name) + ": initial " + what + " " + shape_str(s.shape()) + ", expected " +
                       shape_str(state_shape));
  };
  check_state(initial.h, "h");
  check_state(initial.c, "c");
  // Traced as one op (an exporter writes ONNX LSTM/GRU/RNN nodes), not as the steps below.
  TraceComposite composite;

  Tensor layer_input = x;
  std::vector<Tensor> final_h, final_c;
  for (int64_t k = 0; k < layers_; ++k) {
    auto initial_of = [&](const Tensor& s) {
      return s.defined() ? reshape(slice(s, 0, k, k + 1), {N, H}) : zeros({N, H}, x.dtype(), x.device());
    };
    Tensor h = initial_of(initial.h), c = initial_of(initial.c);
    if (kind_ == Kind::LSTM) {  // one fused op per layer, time-major inside
      Tensor y = lstm_sequence(permute(layer_input, {1, 0, 2}), h, c, w_ih_[size_t(k)], w_hh_[size_t(k)],
                               b_ih_[size_t(k)], b_hh_[size_t(k)]);
      Tensor hs = reshape(slice(y, 0, 0, 1), {T, N, H}), cs = reshape(slice(y, 0, 1, 2), {T, N, H});
      layer_input = permute(hs, {1, 0, 2});
      final_h.push_back(reshape(slice(hs, 0, T - 1, T), {N, H}));
      final_c.push_back(reshape(slice(cs, 0, T - 1, T), {N, H}));
      continue;
    }
    Tensor xproj = linear(layer_input, w_ih_[size_t(k)], b_ih_[size_t(k)]);  // [N, T, G*H], all steps at once
    std::vector<Tensor> outputs;
    for (int64_t t = 0; t < T; ++t) {
      Tensor xt = reshape(slice(xproj, 1, t, t + 1), {N, -1});
      Tensor hh = linear(h, w_hh_[size_t(k)], b_hh_[size_t(k)]);
      if (kind_ == Kind::GRU) {
        auto gx = split(xt, H, 1), gh = split(hh, H, 1);  // r, z, n
        Tensor r = sigmoid(add(gx[0], gh[0]));
        Tensor z = sigmoid(add(gx[1], gh[1]));
        Tensor n = tanh(add(gx[2], mul(r, gh[2])));
        h = add(mul(rsub(1.0, z), n), mul(z, h));  // (1 - z) * n + z * h
      } else {
        h = tanh(add(xt, hh));
      }
      outputs.push_back(h);
    }
    layer_input = stack(outputs, 1);
    final_h.push_back(h);
  }
  RecurrentOutput out;
  out.output = layer_input;
  out.state.h = stack(final_h, 0);
  if (kind_ == Kind::LSTM) out.state.c = stack(final_c, 0);
  if (Tracer* t = composite.tracer()) {
    // Inputs: x, initial h and c (undefined: zeros), then per layer weight_ih, weight_hh, bias_ih, bias_hh.
    std::vector<Tensor> inputs{x, initial.h, initial.c};
    for (int64_t k = 0; k < layers_; ++k)
      for (const auto* w : {&w_ih_, &w_hh_, &b_ih_, &b_hh_}) inputs.push_back((*w)[size_t(k)]);
    t->record({"recurrent", inputs, {out.output, out.state.h, out.state.c},
               {ints("kind", {int64_t(kind_)}), ints("layers", {layers_}), ints("hidden_size", {hidden_})}});
  }
  return out;
}

}  // namespace advgrad
