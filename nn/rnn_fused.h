// The LSTM layer over a whole sequence as one differentiable op (what nn::LSTM runs), next to the same
// function composed from graph ops step by step (the readable reference it is tested against).
//
// Fused forward: one GEMM for the input projection of all steps, then per step one GEMM with the
// recurrent weights accumulated onto that step's gates and one Backend::lstm_cell pass. Fused backward:
// per step (in reverse) one lstm_cell_backward pass and one GEMM for the recurrent gradient; the weight
// gradients are then single GEMMs over all steps (K = steps * batch), skipped when not needed (attacks).
#pragma once
#include "core/tensor.h"

namespace advgrad {

// x [T, N, I] (time-major, any strides), h0, c0 [N, H], w_ih [4H, I], w_hh [4H, H], b_ih and b_hh [4H]
// (both defined or both undefined); gate order i, f, g, o as PyTorch. Returns [2, T, N, H]: [0] holds the
// hidden states h_1..h_T, [1] the cell states c_1..c_T.
Tensor lstm_sequence(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                     const Tensor& b_ih, const Tensor& b_hh);
// The same result from graph ops (linear, split, sigmoid, tanh, mul, add per step).
Tensor lstm_sequence_composite(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh);

}  // namespace advgrad
