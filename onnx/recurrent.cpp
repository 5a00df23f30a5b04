// ONNX's LSTM, GRU and RNN from differentiable ops. Each direction projects the inputs of all steps with one
// GEMM (Xt W^T + Wb for every t), then runs one recurrent GEMM per step; the reverse direction walks the
// steps from T-1 down to 0 and stores each step's state at its own t. LSTM's fast path is the fused
// lstm_sequence with the gates reordered from ONNX's i, o, f, c to PyTorch's i, f, g, o.
#include "advgrad/onnx/recurrent.h"

#include <functional>
#include <vector>

namespace advgrad {

namespace {

enum class Cell { LSTM, GRU, RNN };

const char* op_name(Cell cell) {
  return cell == Cell::LSTM ? "onnx_lstm" : cell == Cell::GRU ? "onnx_gru" : "onnx_rnn";
}
int64_t gate_count(Cell cell) { return cell == Cell::LSTM ? 4 : cell == Cell::GRU ? 3 : 1; }

struct Sizes {
  int64_t T, N, I, H, dirs;
};

// One direction's slices of the ONNX tensors.
struct DirectionWeights {
  Tensor W, R;    // [G*H, I], [G*H, H]
  Tensor Wb, Rb;  // [G*H] each, undefined when B is
  Tensor h0, c0;  // [N, H]
};

bool is_reverse(OnnxDirection dir, int64_t d) {
  return dir == OnnxDirection::Reverse || (dir == OnnxDirection::Bidirectional && d == 1);
}

void check_like_x(const char* op, const Tensor& t, const char* what, const Tensor& X, const Shape& want,
                  const std::string& want_text) {
  if (!t.defined()) return;
  if (t.dtype() != X.dtype() || t.device() != X.device())
    throw TypeError(std::string(op) + ": " + what + " is " + dtype_name(t.dtype()) + " on " + device_name(t.device()) +
                    " but X is " + dtype_name(X.dtype()) + " on " + device_name(X.device()));
  if (t.shape() != want)
    throw ShapeError(std::string(op) + ": " + what + " " + shape_str(t.shape()) + " is not " + want_text + " = " +
                     shape_str(want));
}

Sizes check_inputs(Cell cell, const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                   const Tensor& initial_h, const Tensor& initial_c, OnnxDirection dir, int64_t hidden_size) {
  const char* op = op_name(cell);
  if (!X.defined() || !W.defined() || !R.defined())
    throw ValueError(std::string(op) + ": X, W and R must be given");
  if (X.dtype() != DType::F32 && X.dtype() != DType::F64)
    throw TypeError(std::string(op) + ": X is " + dtype_name(X.dtype()) + ", expected a floating type");
  if (X.dim() != 3)
    throw ShapeError(std::string(op) + ": X " + shape_str(X.shape()) + " is not [seq_length, batch, input_size]");
  if (hidden_size < 1)
    throw ValueError(std::string(op) + ": hidden_size must be >= 1, got " + std::to_string(hidden_size));
  const Sizes z{X.size(0), X.size(1), X.size(2), hidden_size, dir == OnnxDirection::Bidirectional ? 2 : 1};
  if (z.T < 1) throw ValueError(std::string(op) + ": X " + shape_str(X.shape()) + " has no time steps");
  const int64_t GH = gate_count(cell) * z.H;
  const std::string gh = std::to_string(gate_count(cell)) + "*hidden_size";
  check_like_x(op, W, "W", X, {z.dirs, GH, z.I}, "[num_directions, " + gh + ", input_size]");
  check_like_x(op, R, "R", X, {z.dirs, GH, z.H}, "[num_directions, " + gh + ", hidden_size]");
  check_like_x(op, B, "B", X, {z.dirs, 2 * GH}, "[num_directions, 2*" + gh + "]");
  check_like_x(op, initial_h, "initial_h", X, {z.dirs, z.N, z.H}, "[num_directions, batch, hidden_size]");
  check_like_x(op, initial_c, "initial_c", X, {z.dirs, z.N, z.H}, "[num_directions, batch, hidden_size]");
  return z;
}

// Entry d of t's first axis, reshaped.
Tensor direction_entry(const Tensor& t, int64_t d, const Shape& shape) { return reshape(slice(t, 0, d, d + 1), shape); }

DirectionWeights direction_weights(Cell cell, const Sizes& z, int64_t d, const Tensor& X, const Tensor& W,
                                   const Tensor& R, const Tensor& B, const Tensor& initial_h,
                                   const Tensor& initial_c) {
  const int64_t GH = gate_count(cell) * z.H;
  DirectionWeights w;
  w.W = direction_entry(W, d, {GH, z.I});
  w.R = direction_entry(R, d, {GH, z.H});
  if (B.defined()) {
    Tensor b = direction_entry(B, d, {2 * GH});
    w.Wb = slice(b, 0, 0, GH);
    w.Rb = slice(b, 0, GH, 2 * GH);
  }
  auto state = [&](const Tensor& s) {
    return s.defined() ? direction_entry(s, d, {z.N, z.H}) : zeros({z.N, z.H}, X.dtype(), X.device());
  };
  w.h0 = state(initial_h);
  w.c0 = state(initial_c);
  return w;
}

// One step of a cell: xt = Xt W^T + Wb ([N, G*H]) and the state in, the new state out (c: LSTM only).
using Step = std::function<void(const Tensor& xt, Tensor& h, Tensor& c)>;

// Runs each direction's steps in its order; make_step builds the step of one direction from its weights.
OnnxRecurrentResult unroll(Cell cell, const Sizes& z, OnnxDirection dir, const std::vector<DirectionWeights>& dws,
                           const Tensor& X, const std::function<Step(const DirectionWeights&)>& make_step) {
  std::vector<Tensor> Y, Y_h, Y_c;
  for (int64_t d = 0; d < z.dirs; ++d) {
    const DirectionWeights& w = dws[size_t(d)];
    Step step = make_step(w);
    Tensor xproj = linear(X, w.W, w.Wb);  // [T, N, G*H]: the input projection of every step at once
    Tensor h = w.h0, c = w.c0;
    std::vector<Tensor> hs(size_t(z.T));
    for (int64_t k = 0; k < z.T; ++k) {
      const int64_t t = is_reverse(dir, d) ? z.T - 1 - k : k;
      step(reshape(slice(xproj, 0, t, t + 1), {z.N, -1}), h, c);
      hs[size_t(t)] = h;
    }
    Y.push_back(stack(hs, 0));
    Y_h.push_back(h);
    Y_c.push_back(c);
  }
  OnnxRecurrentResult out;
  out.Y = stack(Y, 1);
  out.Y_h = stack(Y_h, 0);
  if (cell == Cell::LSTM) out.Y_c = stack(Y_c, 0);
  return out;
}

std::vector<DirectionWeights> all_directions(Cell cell, const Sizes& z, const Tensor& X, const Tensor& W,
                                             const Tensor& R, const Tensor& B, const Tensor& initial_h,
                                             const Tensor& initial_c) {
  std::vector<DirectionWeights> dws;
  for (int64_t d = 0; d < z.dirs; ++d) dws.push_back(direction_weights(cell, z, d, X, W, R, B, initial_h, initial_c));
  return dws;
}

// t [T, ...] with its first axis reversed (differentiable: the steps' slices concatenated backwards).
Tensor reverse_time(const Tensor& t) {
  std::vector<Tensor> steps;
  for (int64_t k = t.size(0) - 1; k >= 0; --k) steps.push_back(slice(t, 0, k, k + 1));
  return concat(steps, 0);
}

// ONNX's LSTM gate blocks i, o, f, c (rows of H) in PyTorch's order i, f, g (= c), o.
Tensor onnx_to_pytorch_gates(const Tensor& t, int64_t H) {
  auto block = [&](int64_t k) { return slice(t, 0, k * H, (k + 1) * H); };
  return concat({block(0), block(2), block(3), block(1)}, 0);
}

}  // namespace

OnnxDirection parse_onnx_direction(const std::string& value, const std::string& what) {
  if (value == "forward") return OnnxDirection::Forward;
  if (value == "reverse") return OnnxDirection::Reverse;
  if (value == "bidirectional") return OnnxDirection::Bidirectional;
  throw ValueError(what + ": '" + value + "' is not one of forward, reverse, bidirectional");
}

OnnxRecurrentResult onnx_lstm(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                              const Tensor& initial_h, const Tensor& initial_c, OnnxDirection dir,
                              int64_t hidden_size) {
  const Sizes z = check_inputs(Cell::LSTM, X, W, R, B, initial_h, initial_c, dir, hidden_size);
  const int64_t H = z.H;
  const auto dws = all_directions(Cell::LSTM, z, X, W, R, B, initial_h, initial_c);
  std::vector<Tensor> Y, Y_h, Y_c;
  for (int64_t d = 0; d < z.dirs; ++d) {
    const DirectionWeights& w = dws[size_t(d)];
    const bool reverse = is_reverse(dir, d);
    // The reverse direction is the forward recurrence over the time-reversed sequence.
    Tensor seq = lstm_sequence(reverse ? reverse_time(X) : X, w.h0, w.c0, onnx_to_pytorch_gates(w.W, H),
                               onnx_to_pytorch_gates(w.R, H), w.Wb.defined() ? onnx_to_pytorch_gates(w.Wb, H) : Tensor(),
                               w.Rb.defined() ? onnx_to_pytorch_gates(w.Rb, H) : Tensor());  // [2, T, N, H]: h, c
    Tensor hs = reshape(slice(seq, 0, 0, 1), {z.T, z.N, H}), cs = reshape(slice(seq, 0, 1, 2), {z.T, z.N, H});
    Y.push_back(reverse ? reverse_time(hs) : hs);
    Y_h.push_back(reshape(slice(hs, 0, z.T - 1, z.T), {z.N, H}));  // the last step processed
    Y_c.push_back(reshape(slice(cs, 0, z.T - 1, z.T), {z.N, H}));
  }
  return {stack(Y, 1), stack(Y_h, 0), stack(Y_c, 0)};
}

OnnxRecurrentResult onnx_lstm_composite(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                                        const Tensor& initial_h, const Tensor& initial_c, OnnxDirection dir,
                                        int64_t hidden_size) {
  const Sizes z = check_inputs(Cell::LSTM, X, W, R, B, initial_h, initial_c, dir, hidden_size);
  auto dws = all_directions(Cell::LSTM, z, X, W, R, B, initial_h, initial_c);
  return unroll(Cell::LSTM, z, dir, dws, X, [&](const DirectionWeights& w) -> Step {
    return [&w, H = z.H](const Tensor& xt, Tensor& h, Tensor& c) {
      auto g = split(xt + linear(h, w.R, w.Rb), H, 1);  // i, o, f, c
      Tensor i = sigmoid(g[0]), o = sigmoid(g[1]), f = sigmoid(g[2]), c_candidate = tanh(g[3]);
      c = f * c + i * c_candidate;
      h = o * tanh(c);
    };
  });
}

OnnxRecurrentResult onnx_gru(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                             const Tensor& initial_h, OnnxDirection dir, int64_t hidden_size,
                             bool linear_before_reset) {
  const Sizes z = check_inputs(Cell::GRU, X, W, R, B, initial_h, Tensor(), dir, hidden_size);
  auto dws = all_directions(Cell::GRU, z, X, W, R, B, initial_h, Tensor());
  return unroll(Cell::GRU, z, dir, dws, X, [&](const DirectionWeights& w) -> Step {
    const int64_t H = z.H;
    // R's (and Rb's) z, r rows and h rows apart: without linear_before_reset, Rh multiplies r * Ht-1.
    Tensor R_zr = slice(w.R, 0, 0, 2 * H), R_h = slice(w.R, 0, 2 * H, 3 * H);
    Tensor Rb_zr = w.Rb.defined() ? slice(w.Rb, 0, 0, 2 * H) : Tensor();
    Tensor Rb_h = w.Rb.defined() ? slice(w.Rb, 0, 2 * H, 3 * H) : Tensor();
    return [=](const Tensor& xt, Tensor& h, Tensor&) {
      auto gx = split(xt, H, 1);                       // z, r, h parts of Xt W^T + Wb
      auto gh = split(linear(h, R_zr, Rb_zr), H, 1);   // z, r parts of Ht-1 R^T + Rb
      Tensor update = sigmoid(gx[0] + gh[0]), reset = sigmoid(gx[1] + gh[1]);
      Tensor candidate = linear_before_reset ? tanh(gx[2] + reset * linear(h, R_h, Rb_h))
                                             : tanh(gx[2] + linear(reset * h, R_h, Rb_h));
      h = (1.0 - update) * candidate + update * h;
    };
  });
}

OnnxRecurrentResult onnx_rnn(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                             const Tensor& initial_h, OnnxDirection dir, int64_t hidden_size) {
  const Sizes z = check_inputs(Cell::RNN, X, W, R, B, initial_h, Tensor(), dir, hidden_size);
  auto dws = all_directions(Cell::RNN, z, X, W, R, B, initial_h, Tensor());
  return unroll(Cell::RNN, z, dir, dws, X, [](const DirectionWeights& w) -> Step {
    return [&w](const Tensor& xt, Tensor& h, Tensor&) { h = tanh(xt + linear(h, w.R, w.Rb)); };
  });
}

}  // namespace advgrad
