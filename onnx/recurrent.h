// ONNX's recurrent operators (LSTM, GRU, RNN) in ONNX's own layouts and semantics, as plain differentiable
// functions of tensors: the op table (onnx/ops_recurrent.cpp) calls them with a node's inputs.
//
// Layouts (ONNX's layout = 0, docs/Operators.md): X [T, N, I] (time-major); W [dirs, G*H, I] and R
// [dirs, G*H, H] with the gates stacked in ONNX's order (LSTM i, o, f, c; GRU z, r, h; RNN one gate); B
// [dirs, 2*G*H] = [Wb, Rb] per direction (undefined: zeros); initial_h, initial_c [dirs, N, H] (undefined:
// zeros). dirs = 2 for Bidirectional (direction 0 forward, 1 reverse), else 1.
// Outputs: Y [T, dirs, N, H] (the hidden state of every step, in input time order also for the reverse
// direction), Y_h [dirs, N, H] (each direction's last step: t = T-1 forward, t = 0 reverse), Y_c likewise
// (LSTM only; undefined otherwise).
//
// Only the default activations (LSTM, GRU: sigmoid and tanh; RNN: tanh) with no clip, no peepholes, no
// sequence_lens and layout 0: the op table refuses the others, naming the node.
#pragma once
#include <cstdint>
#include <string>

#include "advgrad/autograd/ops.h"

namespace advgrad {

struct OnnxRecurrentResult {
  Tensor Y, Y_h, Y_c;
};

enum class OnnxDirection { Forward, Reverse, Bidirectional };

// "forward", "reverse" or "bidirectional" (the attribute's values); ValueError naming `what` otherwise.
OnnxDirection parse_onnx_direction(const std::string& value, const std::string& what = "direction");

// LSTM (gates i, o, f, c): i, o, f = sigmoid(Xt W^T + Ht-1 R^T + Wb + Rb), c~ = tanh(...),
// Ct = f * Ct-1 + i * c~, Ht = o * tanh(Ct). Runs each direction through the fused lstm_sequence
// (autograd/ops_rnn.cpp) with the gates reordered to PyTorch's i, f, g, o.
OnnxRecurrentResult onnx_lstm(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                              const Tensor& initial_h, const Tensor& initial_c, OnnxDirection dir,
                              int64_t hidden_size);
// The same from graph ops, step by step in ONNX's gate order: the readable reference onnx_lstm is tested
// against.
OnnxRecurrentResult onnx_lstm_composite(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                                        const Tensor& initial_h, const Tensor& initial_c, OnnxDirection dir,
                                        int64_t hidden_size);

// GRU (gates z, r, h): z, r = sigmoid(Xt W^T + Ht-1 R^T + Wb + Rb);
//   linear_before_reset = false (ONNX's default): h~ = tanh(Xt Wh^T + Wbh + (r * Ht-1) Rh^T + Rbh)
//   linear_before_reset = true (what PyTorch exports): h~ = tanh(Xt Wh^T + Wbh + r * (Ht-1 Rh^T + Rbh))
//   Ht = (1 - z) * h~ + z * Ht-1.
OnnxRecurrentResult onnx_gru(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                             const Tensor& initial_h, OnnxDirection dir, int64_t hidden_size,
                             bool linear_before_reset);

// RNN: Ht = tanh(Xt W^T + Ht-1 R^T + Wb + Rb).
OnnxRecurrentResult onnx_rnn(const Tensor& X, const Tensor& W, const Tensor& R, const Tensor& B,
                             const Tensor& initial_h, OnnxDirection dir, int64_t hidden_size);

}  // namespace advgrad
