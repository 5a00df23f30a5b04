// LSTM, GRU and RNN in ONNX's own layouts. They call H1's onnx/recurrent.h (onnx-kernels); until that
// lands they are not in the table, so a file using them is refused as an unsupported op, the node named.
#include "onnx/op_table.h"

namespace advgrad::onnx_import {

void add_recurrent_ops(OpTable&) {}

}  // namespace advgrad::onnx_import
