// ONNX's LSTM, GRU and RNN (onnx/recurrent.h).
//  1. gradcheck in float64 of every kind and direction (X, W, R, B and the initial states all checked), on
//     Device::CPU and Device::Reference.
//  2. Agreement with advgrad's nn LSTM/GRU/RNN (PyTorch's layout, checked against PyTorch in
//     test_nn_golden) after converting the weights between the layouts here, by hand: forward, reverse
//     (= the nn layer over the time-reversed sequence) and bidirectional (two nn layers).
//  3. GRU's linear_before_reset = 0 (which PyTorch has no layer for) against ONNX's formulas evaluated on
//     scalars; the fused LSTM against its composite; argument errors.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/gradcheck.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/nn/layers.h"
#include "advgrad/onnx/recurrent.h"

using namespace advgrad;

namespace {

enum class Kind { LSTM, LSTMComposite, GRU, RNN };
const Kind kKinds[] = {Kind::LSTM, Kind::LSTMComposite, Kind::GRU, Kind::RNN};
const OnnxDirection kDirections[] = {OnnxDirection::Forward, OnnxDirection::Reverse, OnnxDirection::Bidirectional};

std::string kind_str(Kind k) {
  return k == Kind::LSTM ? "onnx_lstm" : k == Kind::LSTMComposite ? "onnx_lstm_composite" : k == Kind::GRU ? "onnx_gru" : "onnx_rnn";
}
std::string dir_str(OnnxDirection d) {
  return d == OnnxDirection::Forward ? "forward" : d == OnnxDirection::Reverse ? "reverse" : "bidirectional";
}
int64_t gates(Kind k) { return k == Kind::GRU ? 3 : k == Kind::RNN ? 1 : 4; }
int64_t dirs(OnnxDirection d) { return d == OnnxDirection::Bidirectional ? 2 : 1; }

OnnxRecurrentResult run(Kind k, const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B, const Tensor& h0,
                        const Tensor& c0, OnnxDirection dir, int64_t H, bool linear_before_reset = true) {
  switch (k) {
    case Kind::LSTM: return onnx_lstm(X, W, R, B, h0, c0, dir, H);
    case Kind::LSTMComposite: return onnx_lstm_composite(X, W, R, B, h0, c0, dir, H);
    case Kind::GRU: return onnx_gru(X, W, R, B, h0, dir, H, linear_before_reset);
    case Kind::RNN: return onnx_rnn(X, W, R, B, h0, dir, H);
  }
  return {};
}

// max |a - b|, a NaN counting as infinitely far (shapes must agree).
double worst_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const double d = max_abs_diff(a, b);
  return std::isnan(d) ? INFINITY : d;
}

// t with axis `axis` reversed, written out step by step (the test's own reversal).
Tensor reversed(const Tensor& t, int64_t axis) {
  std::vector<Tensor> steps;
  for (int64_t k = t.size(axis) - 1; k >= 0; --k) steps.push_back(slice(t, axis, k, k + 1));
  return concat(steps, axis);
}

// The blocks of H rows of t (a [G*H, ...] weight or [G*H] bias) in the given order of PyTorch's blocks.
Tensor blocks(const Tensor& t, int64_t H, const std::vector<int64_t>& order) {
  std::vector<Tensor> parts;
  for (int64_t b : order) parts.push_back(slice(t, 0, b * H, (b + 1) * H));
  return concat(parts, 0);
}

// ONNX's gate order written as PyTorch's block indices. LSTM: PyTorch i, f, g, o -> ONNX i, o, f, c (= g).
// GRU: PyTorch r, z, n -> ONNX z, r, h (PyTorch's n is ONNX's h with linear_before_reset = 1).
std::vector<int64_t> onnx_order(Kind k) {
  if (k == Kind::GRU) return {1, 0, 2};
  if (k == Kind::RNN) return {0};
  return {0, 3, 1, 2};
}

// One nn layer (1 layer, float64) per direction, and the ONNX tensors W, R, B made from their weights.
struct Converted {
  std::vector<std::shared_ptr<RecurrentBase>> layers;
  Tensor W, R, B;
};
Converted convert(Kind k, OnnxDirection dir, int64_t I, int64_t H, bool bias, uint64_t seed) {
  Converted c;
  std::vector<Tensor> W, R, B;
  for (int64_t d = 0; d < dirs(dir); ++d) {
    Generator gen(seed + uint64_t(d));
    std::shared_ptr<RecurrentBase> layer;
    if (k == Kind::GRU)
      layer = std::make_shared<GRU>(I, H, gen, 1, bias);
    else if (k == Kind::RNN)
      layer = std::make_shared<RNN>(I, H, gen, 1, bias);
    else
      layer = std::make_shared<LSTM>(I, H, gen, 1, bias);
    layer->to(DType::F64);
    StateDict sd = layer->state_dict();
    W.push_back(blocks(sd.at("weight_ih_l0"), H, onnx_order(k)));
    R.push_back(blocks(sd.at("weight_hh_l0"), H, onnx_order(k)));
    if (bias)
      B.push_back(concat({blocks(sd.at("bias_ih_l0"), H, onnx_order(k)), blocks(sd.at("bias_hh_l0"), H, onnx_order(k))}, 0));
    c.layers.push_back(layer);
  }
  c.W = stack(W, 0), c.R = stack(R, 0);
  if (bias) c.B = stack(B, 0);
  return c;
}

}  // namespace

TEST_CASE("gradcheck: onnx_lstm, onnx_lstm_composite, onnx_gru (both linear_before_reset), onnx_rnn, every direction") {
  const int64_t T = 3, N = 2, I = 3, H = 2;
  for (Device dev : {Device::CPU, Device::Reference})
    for (Kind k : kKinds)
      for (OnnxDirection dir : kDirections)
        for (bool lbr : {true, false}) {
          if (k != Kind::GRU && !lbr) continue;
          INFO(kind_str(k) << " " << dir_str(dir) << " linear_before_reset " << lbr << " on " << device_name(dev));
          Generator g(40 + uint64_t(dir));
          const int64_t D = dirs(dir), GH = gates(k) * H;
          auto normal = [&](const Shape& s) { return mul(randn(s, g, DType::F64, dev), 0.7).detach(); };
          std::vector<Tensor> in = {normal({T, N, I}), normal({D, GH, I}), normal({D, GH, H}), normal({D, 2 * GH}),
                                    normal({D, N, H})};
          const bool lstm = k == Kind::LSTM || k == Kind::LSTMComposite;
          if (lstm) in.push_back(normal({D, N, H}));
          for (Tensor& t : in) t.requires_grad_();
          auto f = [k, dir, lbr, lstm](const std::vector<Tensor>& x) {
            OnnxRecurrentResult r = run(k, x[0], x[1], x[2], x[3], x[4], lstm ? x[5] : Tensor(), dir, 2, lbr);
            std::vector<Tensor> parts = {flatten(r.Y), flatten(r.Y_h)};
            if (lstm) parts.push_back(flatten(r.Y_c));
            return concat(parts, 0);
          };
          GradcheckResult r = gradcheck(f, in);
          CHECK_MESSAGE(r.ok, r.to_string());
        }
}

TEST_CASE("ONNX layouts agree with nn LSTM/GRU/RNN after converting the weights: forward, reverse, bidirectional") {
  const int64_t T = 5, N = 3, I = 4, H = 3;
  for (Kind k : kKinds)
    for (OnnxDirection dir : kDirections)
      for (bool bias : {true, false})
        for (bool initial : {false, true}) {
          INFO(kind_str(k) << " " << dir_str(dir) << " bias " << bias << " initial state " << initial);
          const bool lstm = k != Kind::GRU && k != Kind::RNN;
          Converted c = convert(k, dir, I, H, bias, 100 + uint64_t(k) * 10);
          Generator g(7);
          const int64_t D = dirs(dir);
          Tensor x = randn({N, T, I}, g, DType::F64);  // nn layers are batch-first
          Tensor h0 = initial ? randn({D, N, H}, g, DType::F64) : Tensor();
          Tensor c0 = initial && lstm ? randn({D, N, H}, g, DType::F64) : Tensor();
          OnnxRecurrentResult got = run(k, permute(x, {1, 0, 2}), c.W, c.R, c.B, h0, c0, dir, H);
          REQUIRE(got.Y.shape() == Shape{T, D, N, H});
          REQUIRE(got.Y_h.shape() == Shape{D, N, H});
          CHECK(got.Y_c.defined() == lstm);

          for (int64_t d = 0; d < D; ++d) {
            INFO("direction " << d);
            const bool reverse = dir == OnnxDirection::Reverse || d == 1;
            RecurrentState state;
            if (initial) state.h = slice(h0, 0, d, d + 1);
            if (initial && lstm) state.c = slice(c0, 0, d, d + 1);
            // The reverse direction is the nn layer over the time-reversed sequence, its outputs re-reversed.
            RecurrentOutput want = c.layers[size_t(d)]->forward_sequence(reverse ? reversed(x, 1) : x, state);
            Tensor want_y = permute(reverse ? reversed(want.output, 1) : want.output, {1, 0, 2});  // [T, N, H]
            Tensor got_y = reshape(slice(got.Y, 1, d, d + 1), {T, N, H});
            CHECK(worst_diff(got_y, want_y) < 1e-12);
            CHECK(worst_diff(slice(got.Y_h, 0, d, d + 1), want.state.h) < 1e-12);
            if (lstm) CHECK(worst_diff(slice(got.Y_c, 0, d, d + 1), want.state.c) < 1e-12);
          }
        }
}

TEST_CASE("onnx_gru: linear_before_reset 0 and 1 follow ONNX's two formulas (one step, scalars by hand)") {
  const double x = 0.5, wz = 0.1, wr = 0.2, wh = 0.3, rz = 0.4, rr = 0.5, rh = 0.6, h0 = 0.7;
  const double wbz = 0.01, wbr = 0.02, wbh = 0.03, rbz = 0.04, rbr = 0.05, rbh = 0.06;
  auto sigmoid_ = [](double v) { return 1 / (1 + std::exp(-v)); };
  const double z = sigmoid_(x * wz + h0 * rz + wbz + rbz), r = sigmoid_(x * wr + h0 * rr + wbr + rbr);
  const double h_reset_first = std::tanh(x * wh + (r * h0) * rh + rbh + wbh);   // linear_before_reset = 0
  const double h_linear_first = std::tanh(x * wh + r * (h0 * rh + rbh) + wbh);  // linear_before_reset = 1
  using V = std::vector<double>;
  Tensor X = from_vector(V{x}, {1, 1, 1}), W = from_vector(V{wz, wr, wh}, {1, 3, 1}),
         R = from_vector(V{rz, rr, rh}, {1, 3, 1}), B = from_vector(V{wbz, wbr, wbh, rbz, rbr, rbh}, {1, 6}),
         H0 = from_vector(V{h0}, {1, 1, 1});
  for (bool lbr : {false, true}) {
    INFO("linear_before_reset " << lbr);
    const double want = (1 - z) * (lbr ? h_linear_first : h_reset_first) + z * h0;
    OnnxRecurrentResult got = onnx_gru(X, W, R, B, H0, OnnxDirection::Forward, 1, lbr);
    CHECK(std::fabs(got.Y.item() - want) < 1e-15);
    CHECK(std::fabs(got.Y_h.item() - want) < 1e-15);
  }
  CHECK(std::fabs(h_reset_first - h_linear_first) > 1e-3);  // the case tells the formulas apart
}

TEST_CASE("onnx_lstm (fused) equals onnx_lstm_composite, values and gradients, in float32 and float64") {
  const int64_t T = 6, N = 4, I = 5, H = 7;
  for (DType dt : {DType::F32, DType::F64})
    for (OnnxDirection dir : kDirections) {
      INFO(dtype_name(dt) << " " << dir_str(dir));
      Generator g(9);
      const int64_t D = dirs(dir);
      std::vector<Tensor> in = {randn({T, N, I}, g, dt), randn({D, 4 * H, I}, g, dt), randn({D, 4 * H, H}, g, dt),
                                randn({D, 8 * H}, g, dt), randn({D, N, H}, g, dt), randn({D, N, H}, g, dt)};
      for (Tensor& t : in) t.requires_grad_();
      std::vector<std::vector<Tensor>> results;
      for (Kind k : {Kind::LSTM, Kind::LSTMComposite}) {
        OnnxRecurrentResult r = run(k, in[0], in[1], in[2], in[3], in[4], in[5], dir, H);
        Tensor loss = sum(r.Y * r.Y) + sum(r.Y_h) + sum(r.Y_c * 0.5);
        std::vector<Tensor> grads = grad({loss}, in);
        grads.insert(grads.begin(), {r.Y.detach(), r.Y_h.detach(), r.Y_c.detach()});
        results.push_back(grads);
      }
      const double tol = dt == DType::F32 ? 1e-4 : 1e-11;
      for (size_t i = 0; i < results[0].size(); ++i) {
        INFO("result " << i << " (Y, Y_h, Y_c, then d/dX, dW, dR, dB, dh0, dc0)");
        CHECK(worst_diff(results[0][i], results[1][i]) < tol);
      }
    }
}

TEST_CASE("ONNX recurrent ops refuse bad arguments, naming the argument and the expected shape") {
  Generator g(3);
  Tensor X = randn({4, 2, 3}, g), W = randn({1, 8, 3}, g), R = randn({1, 8, 2}, g), B = randn({1, 16}, g);
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  auto contains = [](const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; };
  std::string m = message([&] { onnx_lstm(X, W, R, B, Tensor(), Tensor(), OnnxDirection::Bidirectional, 2); });
  CHECK_MESSAGE(contains(m, "onnx_lstm: W [1,8,3] is not [num_directions, 4*hidden_size, input_size] = [2,8,3]"), m);
  m = message([&] { onnx_gru(X, W, R, B, Tensor(), OnnxDirection::Forward, 2, true); });
  CHECK_MESSAGE(contains(m, "onnx_gru: W [1,8,3] is not [num_directions, 3*hidden_size, input_size] = [1,6,3]"), m);
  m = message([&] { onnx_lstm(X, W, R, randn({1, 8}, g), Tensor(), Tensor(), OnnxDirection::Forward, 2); });
  CHECK_MESSAGE(contains(m, "onnx_lstm: B [1,8] is not"), m);
  m = message([&] { onnx_rnn(X, randn({1, 2, 3}, g), randn({1, 2, 2}, g), Tensor(), randn({1, 3, 2}, g),
                             OnnxDirection::Forward, 2); });
  CHECK_MESSAGE(contains(m, "onnx_rnn: initial_h [1,3,2] is not [num_directions, batch, hidden_size] = [1,2,2]"), m);
  m = message([&] { onnx_rnn(reshape(X, {8, 3}), W, R, B, Tensor(), OnnxDirection::Forward, 2); });
  CHECK_MESSAGE(contains(m, "onnx_rnn: X [8,3] is not [seq_length, batch, input_size]"), m);
  m = message([&] { onnx_lstm(X, W.to(DType::F64), R, B, Tensor(), Tensor(), OnnxDirection::Forward, 2); });
  CHECK_MESSAGE(contains(m, "onnx_lstm: W is float64 on cpu but X is float32"), m);
  m = message([&] { parse_onnx_direction("sideways", "node 'lstm1' attribute direction"); });
  CHECK_MESSAGE(contains(m, "node 'lstm1' attribute direction: 'sideways' is not one of forward, reverse, bidirectional"), m);
  CHECK(parse_onnx_direction("reverse") == OnnxDirection::Reverse);
}
