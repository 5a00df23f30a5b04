// The LSTM layer over a whole sequence as one differentiable op (what nn::LSTM runs), next to the same
// function composed from graph ops step by step (the readable reference it is tested against).
//
// Fused forward: one GEMM for the input projection of all steps, then per step one GEMM with the
// recurrent weights accumulated onto that step's gates and one Backend::lstm_cell pass. Fused backward:
// per step (in reverse) one lstm_cell_backward pass and one GEMM for the recurrent gradient; the weight
// gradients are then single GEMMs over all steps (K = steps * batch), skipped when not needed (attacks).
// Both work on views of the tensors and call backend entry points only: no loop over data here.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "advgrad/autograd/ops_util.h"
#include "advgrad/core/parallel.h"

namespace advgrad {

namespace {

// Each problem names the argument: "lstm_sequence: w_hh [8,3] is not [4H, H]", "h0 is undefined" ...
void check_lstm_args(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                     const Tensor& b_ih, const Tensor& b_hh) {
  const std::string op = "lstm_sequence: ";
  const std::pair<const char*, const Tensor*> args[] = {{"x", &x},       {"h0", &h0},     {"c0", &c0},
                                                        {"w_ih", &w_ih}, {"w_hh", &w_hh}, {"b_ih", &b_ih},
                                                        {"b_hh", &b_hh}};
  for (int k = 0; k < 5; ++k)  // the biases may be undefined (both)
    if (!args[k].second->defined()) throw ValueError(op + args[k].first + " is undefined");
  if (b_ih.defined() != b_hh.defined())
    throw ValueError(op + "b_ih is " + (b_ih.defined() ? "defined" : "undefined") + " but b_hh is " +
                     (b_hh.defined() ? "defined" : "undefined") + ": give both biases or neither");
  if (!is_floating(x.dtype()))
    throw TypeError(op + "x has dtype " + dtype_name(x.dtype()) + ", needs float32 or float64");
  for (const auto& [name, t] : args)
    if (t->defined() && (t->dtype() != x.dtype() || t->device() != x.device()))
      throw TypeError(op + name + " is " + dtype_name(t->dtype()) + " on " + device_name(t->device()) + " but x is " +
                      dtype_name(x.dtype()) + " on " + device_name(x.device()));
  auto shape_problem = [&](const char* name, const Tensor& t, const std::string& expected) {
    throw ShapeError(op + name + " " + shape_str(t.shape()) + " is not " + expected + " (x " + shape_str(x.shape()) +
                     ", w_hh " + shape_str(w_hh.shape()) + ")");
  };
  if (x.dim() != 3) shape_problem("x", x, "[T, N, I]");
  if (w_hh.dim() != 2 || w_hh.size(0) != 4 * w_hh.size(1)) shape_problem("w_hh", w_hh, "[4H, H]");
  const int64_t H = w_hh.size(1), N = x.size(1), I = x.size(2);
  const std::string nh = "[" + std::to_string(N) + "," + std::to_string(H) + "] = [N, H]";
  if (w_ih.shape() != Shape{4 * H, I})
    shape_problem("w_ih", w_ih, "[" + std::to_string(4 * H) + "," + std::to_string(I) + "] = [4H, I]");
  if (h0.shape() != Shape{N, H}) shape_problem("h0", h0, nh);
  if (c0.shape() != Shape{N, H}) shape_problem("c0", c0, nh);
  for (const auto& [name, t] : {args[5], args[6]})
    if (t->defined() && t->shape() != Shape{4 * H}) shape_problem(name, *t, "[" + std::to_string(4 * H) + "] = [4H]");
}

// The rows of a batch are independent through the whole recurrence, so each chunk of rows runs all steps
// on its own: one parallel region per sequence (forward or backward) instead of two or more per step. The
// chunk size depends on the shape only (about 4M multiply-adds of recurrent GEMM per chunk and step), so
// results are the same at any thread count. The reference device runs the whole batch as one chunk.
template <class F>
void for_batch_chunks(int64_t N, int64_t H, Device dev, F&& f) {
  if (dev == Device::Reference) return f(int64_t(0), N);
  parallel_for(N, std::max<int64_t>(16, (int64_t(1) << 22) / (4 * H * H)), f);
}

// Row block [rows, cols] of dense t starting at row `row0` (a view; no graph).
Tensor rows_of(const Tensor& t, int64_t row0, int64_t rows, int64_t cols) {
  return t.as_strided({rows, cols}, {cols, 1}, t.offset() + row0 * cols);
}

}  // namespace

Tensor lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                     const Tensor& b_ih, const Tensor& b_hh) {
  check_lstm_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh);
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = w_hh.size(1), G = 4 * H;
  const DType dt = x.dtype();
  const Device dev = x.device();
  Backend& be = backend_for(dev);
  Tensor X = x.dense(), Wih = w_ih.dense(), Whh = w_hh.dense(), H0 = h0.dense(), C0 = c0.dense();
  // act: pre-activations of every step (x W_ih^T + b_ih + b_hh, then + h W_hh^T), overwritten in place by
  // the gate activations that the backward pass needs.
  Tensor act = Tensor::empty({T, N, G}, dt, dev);
  be.gemm(false, true, 1, T * N, G, I, 1.0, X, 0, Wih, 0, 0.0, act, 0);
  if (b_ih.defined()) {
    Tensor b = Tensor::empty({G}, dt, dev);
    be.binary(BinaryOp::Add, b_ih.dense(), b_hh.dense(), b);
    be.binary(BinaryOp::Add, act, b.as_strided({T, N, G}, {0, 0, 1}, b.offset()), act);
  }
  Tensor Y = Tensor::empty({2, T, N, H}, dt, dev);  // [0] h_t, [1] c_t
  // Rows [r0, r0+n) of step t of Y's part k (h or c), of act, of h0/c0.
  auto state = [&](int64_t k, int64_t t, int64_t r0, int64_t n) { return rows_of(Y, (k * T + t) * N + r0, n, H); };
  for_batch_chunks(N, H, dev, [&](int64_t r0, int64_t r1) {
    const int64_t n = r1 - r0;
    for (int64_t t = 0; t < T; ++t) {
      Tensor gates = rows_of(act, t * N + r0, n, G), h = state(0, t, r0, n), c = state(1, t, r0, n);
      be.gemm(false, true, 1, n, G, H, 1.0, t == 0 ? rows_of(H0, r0, n, H) : state(0, t - 1, r0, n), 0, Whh, 0, 1.0,
              gates, 0);
      be.lstm_cell(gates, t == 0 ? rows_of(C0, r0, n, H) : state(1, t - 1, r0, n), c, h);
    }
  });
  // Its output holds every cell state, which ONNX's LSTM does not give: exporters refuse it and take the
  // layer instead (nn::LSTM records itself as one composite).
  if (Tracer* t = active_tracer()) t->record({"lstm_sequence", {x, h0, c0, w_ih, w_hh, b_ih, b_hh}, {Y}, {}});
  if (!should_record({x, h0, c0, w_ih, w_hh, b_ih, b_hh})) return Y;
  const char* op = "lstm_sequence";
  SavedTensor sx(X, op), sh0(H0, op), sc0(C0, op), swih(Wih, op), swhh(Whh, op), sact(act, op), sy(Y, op);
  return record(op, {x, h0, c0, w_ih, w_hh, b_ih, b_hh}, Y,
                [=](const Tensor& g, const std::vector<bool>& need) {
    Tensor gY = g.dense(), Xv = sx.unpack(), H0v = sh0.unpack(), C0v = sc0.unpack(), Wihv = swih.unpack(),
           Whhv = swhh.unpack(), A = sact.unpack(), Yv = sy.unpack();
    Backend& be = backend_for(gY.device());
    auto state = [&](const Tensor& t4, int64_t k, int64_t t, int64_t r0, int64_t n) {
      return rows_of(t4, (k * T + t) * N + r0, n, H);
    };
    Tensor dG = Tensor::empty({T, N, G}, dt, gY.device());
    // Per row: dh (gradient of h_t), dc (of c_t) and two carries of the gradient reaching c_{t-1}.
    Tensor dh = Tensor::empty({N, H}, dt, gY.device()), dc = Tensor::empty({N, H}, dt, gY.device());
    Tensor carry[2] = {zeros({N, H}, dt, gY.device()), Tensor::empty({N, H}, dt, gY.device())};
    for_batch_chunks(N, H, gY.device(), [&](int64_t r0, int64_t r1) {
      const int64_t n = r1 - r0;
      Tensor dh_r = rows_of(dh, r0, n, H), dc_r = rows_of(dc, r0, n, H);
      for (int64_t t = T - 1, k = 0; t >= 0; --t, k ^= 1) {
        be.copy(state(gY, 0, t, r0, n), dh_r);  // dh_t = dL/dh_t directly + dG_{t+1} W_hh
        if (t + 1 < T)
          be.gemm(false, false, 1, n, H, G, 1.0, rows_of(dG, (t + 1) * N + r0, n, G), 0, Whhv, 0, 1.0, dh_r, 0);
        be.binary(BinaryOp::Add, state(gY, 1, t, r0, n), rows_of(carry[k], r0, n, H), dc_r);
        Tensor dgates = rows_of(dG, t * N + r0, n, G), dc_next = rows_of(carry[k ^ 1], r0, n, H);
        be.lstm_cell_backward(rows_of(A, t * N + r0, n, G), t == 0 ? rows_of(C0v, r0, n, H) : state(Yv, 1, t - 1, r0, n),
                              state(Yv, 1, t, r0, n), dh_r, dc_r, dgates, dc_next);
      }
    });
    Tensor dc_prev = carry[T % 2];  // after T steps the last write went to carry[T % 2]
    std::vector<Tensor> out(7);
    if (need[0]) {  // dx = dG W_ih, all steps in one GEMM
      out[0] = Tensor::empty({T, N, I}, dt, gY.device());
      be.gemm(false, false, 1, T * N, I, G, 1.0, dG, 0, Wihv, 0, 0.0, out[0], 0);
    }
    if (need[1]) {
      out[1] = Tensor::empty({N, H}, dt, gY.device());
      be.gemm(false, false, 1, N, H, G, 1.0, rows_of(dG, 0, N, G), 0, Whhv, 0, 0.0, out[1], 0);
    }
    if (need[2]) out[2] = dc_prev;
    if (need[3]) {  // dW_ih = dG^T X over all T*N rows
      out[3] = Tensor::empty({G, I}, dt, gY.device());
      be.gemm(true, false, 1, G, I, T * N, 1.0, dG, 0, Xv, 0, 0.0, out[3], 0);
    }
    if (need[4]) {  // dW_hh = sum_t dG_t^T h_{t-1}: step 0 against h0, steps 1.. against h_1..h_{T-1}
      out[4] = Tensor::empty({G, H}, dt, gY.device());
      be.gemm(true, false, 1, G, H, N, 1.0, rows_of(dG, 0, N, G), 0, H0v, 0, 0.0, out[4], 0);
      if (T > 1)
        be.gemm(true, false, 1, G, H, (T - 1) * N, 1.0, rows_of(dG, N, (T - 1) * N, G), 0,
                rows_of(Yv, 0, (T - 1) * N, H), 0, 1.0, out[4], 0);
    }
    if ((need.size() > 5 && need[5]) || (need.size() > 6 && need[6])) {
      Tensor gb = sum(reshape(dG, {T * N, G}), {0});
      if (need[5]) out[5] = gb;
      if (need[6]) out[6] = gb;
    }
    return out;
  });
}

Tensor lstm_sequence_composite(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  check_lstm_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh);
  const int64_t T = x.size(0), N = x.size(1), H = w_hh.size(1);
  Tensor xproj = linear(x, w_ih, b_ih);  // [T, N, 4H]
  Tensor h = h0, c = c0;
  std::vector<Tensor> hs, cs;
  for (int64_t t = 0; t < T; ++t) {
    Tensor xt = reshape(slice(xproj, 0, t, t + 1), {N, 4 * H});
    auto g = split(add(xt, linear(h, w_hh, b_hh)), H, 1);  // i, f, g, o
    c = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
    h = sigmoid(g[3]) * tanh(c);
    hs.push_back(h);
    cs.push_back(c);
  }
  return stack({stack(hs, 0), stack(cs, 0)}, 0);
}

}  // namespace advgrad
