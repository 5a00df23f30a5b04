// The export rules of save_onnx: each traced op (autograd/ops.h's name, or a layer's composite) written as
// ONNX nodes in their opset-13 forms. An op missing from the table has no ONNX form and is refused.
#include <algorithm>
#include <map>

#include "advgrad/nn/layers.h"
#include "advgrad/onnx/export_graph.h"

namespace advgrad::onnx_export {

namespace {

using W = GraphWriter;

const std::vector<int64_t>& ints_of(const TracedOp& op, const char* name) { return op.attribute(name).ints; }
int64_t int_of(const TracedOp& op, const char* name) { return op.attribute(name).ints.at(0); }
double real_of(const TracedOp& op, const char* name) { return op.attribute(name).real; }

// Element-wise ops that are one ONNX node on the same inputs.
template <const char* Type>
void same_inputs(W& w, const TracedOp& op) {
  std::vector<std::string> inputs;
  for (const auto& t : op.inputs) inputs.push_back(w.value(t));
  w.node1(Type, inputs, op.outputs[0]);
}
#define ONNX_TYPE(NAME) constexpr char NAME[] = #NAME;
ONNX_TYPE(Add) ONNX_TYPE(Sub) ONNX_TYPE(Mul) ONNX_TYPE(Div) ONNX_TYPE(Pow) ONNX_TYPE(Min) ONNX_TYPE(Max)
ONNX_TYPE(Neg) ONNX_TYPE(Exp) ONNX_TYPE(Log) ONNX_TYPE(Sqrt) ONNX_TYPE(Abs) ONNX_TYPE(Tanh) ONNX_TYPE(Sigmoid)
ONNX_TYPE(Relu) ONNX_TYPE(Sign) ONNX_TYPE(MatMul) ONNX_TYPE(Identity)
#undef ONNX_TYPE

void square(W& w, const TracedOp& op) {
  std::string x = w.value(op.inputs[0]);
  w.node1("Mul", {x, x}, op.outputs[0]);
}

void pow_scalar(W& w, const TracedOp& op) {
  w.node1("Pow", {w.value(op.inputs[0]), w.scalar_constant(real_of(op, "exponent"), op.inputs[0].dtype())},
          op.outputs[0]);
}

void leaky_relu(W& w, const TracedOp& op) {
  W::set_float(w.node("LeakyRelu", {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])}), "alpha",
               real_of(op, "negative_slope"));
}

void clamp(W& w, const TracedOp& op) {
  DType dt = op.inputs[0].dtype();
  w.node1("Clip", {w.value(op.inputs[0]), w.scalar_constant(real_of(op, "min"), dt), w.scalar_constant(real_of(op, "max"), dt)},
          op.outputs[0]);
}

// where(cond, a, b): advgrad's condition is "cond != 0" in any dtype; ONNX's is a bool tensor.
void where(W& w, const TracedOp& op) {
  std::string cond = w.fresh("where_condition");
  W::set_int(w.node("Cast", {w.value(op.inputs[0])}, {cond}), "to", ::onnx::TensorProto_DataType_BOOL);
  w.node1("Where", {cond, w.value(op.inputs[1]), w.value(op.inputs[2])}, op.outputs[0]);
}

// Comparisons give 1/0 in the inputs' dtype; ONNX's give bool, cast back.
template <const char* Type, bool Negate>
void comparison(W& w, const TracedOp& op) {
  std::string b = w.node1(Type, {w.value(op.inputs[0]), w.value(op.inputs[1])});
  if (Negate) b = w.node1("Not", {b});
  W::set_int(w.node("Cast", {b}, {w.output_name_for(op.outputs[0])}), "to", onnx_dtype(op.outputs[0].dtype()));
}
constexpr char Equal[] = "Equal", Less[] = "Less", LessOrEqual[] = "LessOrEqual", Greater[] = "Greater",
               GreaterOrEqual[] = "GreaterOrEqual";

// ---- reductions ----
void reduce_sum(W& w, const TracedOp& op) {  // opset 13: the axes are an input
  W::set_int(w.node("ReduceSum", {w.value(op.inputs[0]), w.ints_constant(ints_of(op, "axes"))},
                    {w.output_name_for(op.outputs[0])}),
             "keepdims", int_of(op, "keepdim"));
}
template <const char* Type>
void reduce_with_axes_attribute(W& w, const TracedOp& op) {  // opset 13 to 17: the axes are an attribute
  auto& n = w.node(Type, {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])});
  if (!ints_of(op, "axes").empty()) W::set_ints(n, "axes", ints_of(op, "axes"));
  W::set_int(n, "keepdims", int_of(op, "keepdim"));
}
constexpr char ReduceMean[] = "ReduceMean", ReduceMax[] = "ReduceMax", ReduceLogSumExp[] = "ReduceLogSumExp";

void argmax(W& w, const TracedOp& op) {
  auto& n = w.node("ArgMax", {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])});
  W::set_int(n, "axis", int_of(op, "axis"));
  W::set_int(n, "keepdims", int_of(op, "keepdim"));
}

void gather(W& w, const TracedOp& op) {
  W::set_int(w.node("GatherElements", {w.value(op.inputs[0]), w.value(op.inputs[1])}, {w.output_name_for(op.outputs[0])}),
             "axis", int_of(op, "axis"));
}

void softmax_like(W& w, const TracedOp& op, const char* type) {
  W::set_int(w.node(type, {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])}), "axis", int_of(op, "axis"));
}
void softmax(W& w, const TracedOp& op) { softmax_like(w, op, "Softmax"); }
void log_softmax(W& w, const TracedOp& op) { softmax_like(w, op, "LogSoftmax"); }

// ---- shape ----
// The target shape of a reshape, written so that it holds at any batch size: the leading dims equal to the
// input's are copied (0), the first dim after them is inferred (-1), the rest are literal. save_onnx
// refuses the rare reshape that still depends on the batch (it compares two traces).
void reshape(W& w, const TracedOp& op) {
  const Shape& in = op.inputs[0].shape();
  std::vector<int64_t> target = op.outputs[0].shape();
  size_t prefix = 0;
  while (prefix < target.size() && prefix < in.size() && target[prefix] == in[prefix]) target[prefix++] = 0;
  if (prefix < target.size()) target[prefix] = -1;
  w.node1("Reshape", {w.value(op.inputs[0]), w.ints_constant(target)}, op.outputs[0]);
}

// expand: dims the input already has are written as 1 (ONNX's Expand broadcasts), so they follow the input.
void expand(W& w, const TracedOp& op) {
  const Shape& in = op.inputs[0].shape();
  std::vector<int64_t> target = ints_of(op, "shape");
  size_t offset = target.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] == target[offset + i]) target[offset + i] = 1;
  w.node1("Expand", {w.value(op.inputs[0]), w.ints_constant(target)}, op.outputs[0]);
}

void permute(W& w, const TracedOp& op) {
  W::set_ints(w.node("Transpose", {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])}), "perm",
              ints_of(op, "order"));
}

void unsqueeze(W& w, const TracedOp& op) {
  w.node1("Unsqueeze", {w.value(op.inputs[0]), w.ints_constant(ints_of(op, "axis"))}, op.outputs[0]);
}
void squeeze(W& w, const TracedOp& op) {
  w.node1("Squeeze", {w.value(op.inputs[0]), w.ints_constant(ints_of(op, "axis"))}, op.outputs[0]);
}

// slice keeps the bounds as the caller gave them: "to the end" stays the end at any batch size.
void slice(W& w, const TracedOp& op) {
  w.node1("Slice",
          {w.value(op.inputs[0]), w.ints_constant(ints_of(op, "start")), w.ints_constant(ints_of(op, "end")),
           w.ints_constant(ints_of(op, "axis")), w.ints_constant(ints_of(op, "step"))},
          op.outputs[0]);
}

// torch's pad order {before_last, after_last, before_2nd_last, ...} -> ONNX's {begins of every dim, ends}.
void pad(W& w, const TracedOp& op) {
  const auto& torch_pads = ints_of(op, "pads");
  const size_t rank = size_t(op.inputs[0].dim());
  std::vector<int64_t> pads(2 * rank, 0);
  for (size_t k = 0; k < torch_pads.size() / 2; ++k) {
    pads[rank - 1 - k] = torch_pads[2 * k];
    pads[2 * rank - 1 - k] = torch_pads[2 * k + 1];
  }
  auto& n = w.node("Pad",
                   {w.value(op.inputs[0]), w.ints_constant(pads), w.scalar_constant(real_of(op, "value"), op.inputs[0].dtype())},
                   {w.output_name_for(op.outputs[0])});
  W::set_string(n, "mode", "constant");
}

void concat(W& w, const TracedOp& op) {
  std::vector<std::string> inputs;
  for (const auto& t : op.inputs) inputs.push_back(w.value(t));
  W::set_int(w.node("Concat", inputs, {w.output_name_for(op.outputs[0])}), "axis", int_of(op, "axis"));
}

// ---- linear layers, convolution, pooling ----
// y = x W^T + b: Gemm for a batch of vectors, else MatMul with the transposed weight (+ b).
void linear(W& w, const TracedOp& op) {
  const Tensor &x = op.inputs[0], &weight = op.inputs[1], &bias = op.inputs[2];
  if (x.dim() == 2) {
    std::vector<std::string> inputs{w.value(x), w.value(weight)};
    if (bias.defined()) inputs.push_back(w.value(bias));
    W::set_int(w.node("Gemm", inputs, {w.output_name_for(op.outputs[0])}), "transB", 1);
    return;
  }
  std::string wt = w.fresh("linear_weight_t");
  W::set_ints(w.node("Transpose", {w.value(weight)}, {wt}), "perm", {1, 0});
  if (!bias.defined()) {
    w.node1("MatMul", {w.value(x), wt}, op.outputs[0]);
    return;
  }
  std::string product = w.node1("MatMul", {w.value(x), wt});
  w.node1("Add", {product, w.value(bias)}, op.outputs[0]);
}

void set_window(::onnx::NodeProto& n, const TracedOp& op, bool with_dilations) {
  const auto &k = ints_of(op, "kernel"), &p = ints_of(op, "padding"), &d = ints_of(op, "dilation");
  W::set_ints(n, "kernel_shape", k);
  W::set_ints(n, "strides", ints_of(op, "stride"));
  W::set_ints(n, "pads", {p[0], p[1], p[0], p[1]});
  if (with_dilations) W::set_ints(n, "dilations", d);
}

void conv2d(W& w, const TracedOp& op) {
  const Tensor &x = op.inputs[0], &weight = op.inputs[1], &bias = op.inputs[2];
  std::vector<std::string> inputs{w.value(x), w.value(weight)};
  if (bias.defined()) inputs.push_back(w.value(bias));
  auto& n = w.node("Conv", inputs, {w.output_name_for(op.outputs[0])});
  set_window(n, op, true);
  W::set_int(n, "group", int_of(op, "groups"));
}

// ceil_mode as PyTorch's (and ONNX's since opset 10): written only when it changes the output size.
bool pooled_with_ceil(const TracedOp& op) {
  if (!int_of(op, "ceil_mode")) return false;
  const auto &k = ints_of(op, "kernel"), &s = ints_of(op, "stride"), &p = ints_of(op, "padding"),
             &d = ints_of(op, "dilation");
  for (int i = 0; i < 2; ++i) {
    int64_t in = op.inputs[0].size(2 + i), floor_out = (in + 2 * p[size_t(i)] - d[size_t(i)] * (k[size_t(i)] - 1) - 1) / s[size_t(i)] + 1;
    if (op.outputs[0].size(2 + i) != floor_out) return true;
  }
  return false;
}

void max_pool2d(W& w, const TracedOp& op) {
  auto& n = w.node("MaxPool", {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])});
  const auto& d = ints_of(op, "dilation");
  set_window(n, op, d[0] != 1 || d[1] != 1);
  if (pooled_with_ceil(op)) W::set_int(n, "ceil_mode", 1);
}

void avg_pool2d(W& w, const TracedOp& op) {
  auto& n = w.node("AveragePool", {w.value(op.inputs[0])}, {w.output_name_for(op.outputs[0])});
  set_window(n, op, false);
  W::set_int(n, "count_include_pad", int_of(op, "count_include_pad"));
  if (pooled_with_ceil(op)) W::set_int(n, "ceil_mode", 1);
}

// ---- layers (composites recorded by nn/batchnorm.cpp and nn/rnn.cpp) ----
// Inputs x, weight, bias, running_mean, running_var. ONNX's momentum weighs the old running value
// (running = momentum * running + (1 - momentum) * batch): 1 - PyTorch's.
void batch_norm(W& w, const TracedOp& op) {
  if (int_of(op, "training")) w.refuse("BatchNorm traced in training mode (save_onnx traces in eval mode)");
  std::vector<std::string> inputs;
  for (const auto& t : op.inputs) inputs.push_back(w.value(t));
  auto& n = w.node("BatchNormalization", inputs, {w.output_name_for(op.outputs[0])});
  W::set_float(n, "epsilon", real_of(op, "epsilon"));
  W::set_float(n, "momentum", 1.0 - real_of(op, "momentum"));
}

// A [G*H, ...] weight or [G*H] bias in PyTorch's gate order, as the value of its gates in `order`
// (ONNX's), by Slice + Concat in the graph: the initializer keeps its state_dict name and shape.
std::string reorder_gates(W& w, const std::string& value, int64_t H, const std::vector<int64_t>& order) {
  if (order.size() == 1) return value;
  std::vector<std::string> gates;
  for (int64_t g : order)
    gates.push_back(w.node1("Slice", {value, w.ints_constant({g * H}), w.ints_constant({(g + 1) * H}), w.ints_constant({0})}));
  std::string out = w.fresh("gates");
  W::set_int(w.node("Concat", gates, {out}), "axis", 0);
  return out;
}

// Inputs x [N,T,I] (batch first), initial h, c [L,N,H] (undefined: zeros), then per layer weight_ih,
// weight_hh, bias_ih, bias_hh; outputs [N,T,H], h and c [L,N,H]. One ONNX LSTM/GRU/RNN node per layer over
// time-major values; gates reordered (LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h with
// linear_before_reset = 1, which is PyTorch's GRU).
void recurrent(W& w, const TracedOp& op) {
  using Kind = RecurrentBase::Kind;
  const Kind kind = Kind(int_of(op, "kind"));
  const int64_t L = int_of(op, "layers"), H = int_of(op, "hidden_size");
  const char* type = kind == Kind::LSTM ? "LSTM" : kind == Kind::GRU ? "GRU" : "RNN";
  const std::vector<int64_t> order = kind == Kind::LSTM ? std::vector<int64_t>{0, 3, 1, 2}
                                     : kind == Kind::GRU ? std::vector<int64_t>{1, 0, 2}
                                                         : std::vector<int64_t>{0};
  const Tensor &x = op.inputs[0], &h0 = op.inputs[1], &c0 = op.inputs[2];
  std::string seq = w.fresh("time_major");
  W::set_ints(w.node("Transpose", {w.value(x)}, {seq}), "perm", {1, 0, 2});
  auto unsqueeze0 = [&](const std::string& v) { return w.node1("Unsqueeze", {v, w.ints_constant({0})}); };
  auto layer_of = [&](const Tensor& s, int64_t k) {  // [1, N, H] of layer k, or "" for zeros
    return s.defined() ? w.node1("Slice", {w.value(s), w.ints_constant({k}), w.ints_constant({k + 1}), w.ints_constant({0})})
                       : std::string();
  };
  std::vector<std::string> final_h, final_c;
  for (int64_t k = 0; k < L; ++k) {
    const Tensor &w_ih = op.inputs[size_t(3 + 4 * k)], &w_hh = op.inputs[size_t(4 + 4 * k)],
                 &b_ih = op.inputs[size_t(5 + 4 * k)], &b_hh = op.inputs[size_t(6 + 4 * k)];
    std::string Wv = unsqueeze0(reorder_gates(w, w.value(w_ih), H, order));
    std::string Rv = unsqueeze0(reorder_gates(w, w.value(w_hh), H, order));
    std::string Bv;
    if (b_ih.defined()) {
      std::string both = w.fresh("bias");
      W::set_int(w.node("Concat", {reorder_gates(w, w.value(b_ih), H, order), reorder_gates(w, w.value(b_hh), H, order)}, {both}),
                 "axis", 0);
      Bv = unsqueeze0(both);
    }
    std::vector<std::string> inputs{seq, Wv, Rv, Bv, "", layer_of(h0, k)};
    if (kind == Kind::LSTM) inputs.push_back(layer_of(c0, k));
    while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
    std::string Y = w.fresh("Y"), Yh = w.fresh("Y_h"), Yc = w.fresh("Y_c");
    std::vector<std::string> outputs{Y, Yh};
    if (kind == Kind::LSTM) outputs.push_back(Yc);
    auto& n = w.node(type, inputs, outputs);
    W::set_int(n, "hidden_size", H);
    if (kind == Kind::GRU) W::set_int(n, "linear_before_reset", 1);
    seq = w.node1("Squeeze", {Y, w.ints_constant({1})});  // [T, 1, N, H] -> [T, N, H]
    final_h.push_back(Yh);
    final_c.push_back(Yc);
  }
  if (w.needed(op.outputs[0])) W::set_ints(w.node("Transpose", {seq}, {w.output_name_for(op.outputs[0])}), "perm", {1, 0, 2});
  auto state = [&](const Tensor& t, const std::vector<std::string>& per_layer) {
    if (!w.needed(t)) return;
    if (per_layer.size() == 1) return w.bind(t, per_layer[0]);
    W::set_int(w.node("Concat", per_layer, {w.output_name_for(t)}), "axis", 0);
  };
  state(op.outputs[1], final_h);
  if (kind == Kind::LSTM) state(op.outputs[2], final_c);
}

const std::map<std::string, ExportRule>& rules() {
  static const std::map<std::string, ExportRule> table = {
      {"add", same_inputs<Add>},
      {"sub", same_inputs<Sub>},
      {"mul", same_inputs<Mul>},
      {"div", same_inputs<Div>},
      {"pow", same_inputs<Pow>},
      {"pow_scalar", pow_scalar},
      {"minimum", same_inputs<Min>},
      {"maximum", same_inputs<Max>},
      {"neg", same_inputs<Neg>},
      {"exp", same_inputs<Exp>},
      {"log", same_inputs<Log>},
      {"sqrt", same_inputs<Sqrt>},
      {"abs", same_inputs<Abs>},
      {"square", square},
      {"tanh", same_inputs<Tanh>},
      {"sigmoid", same_inputs<Sigmoid>},
      {"relu", same_inputs<Relu>},
      {"leaky_relu", leaky_relu},
      {"clamp", clamp},
      {"where", where},
      {"sign", same_inputs<Sign>},
      {"eq", comparison<Equal, false>},
      {"ne", comparison<Equal, true>},
      {"lt", comparison<Less, false>},
      {"le", comparison<LessOrEqual, false>},
      {"gt", comparison<Greater, false>},
      {"ge", comparison<GreaterOrEqual, false>},
      {"sum", reduce_sum},
      {"mean", reduce_with_axes_attribute<ReduceMean>},
      {"max", reduce_with_axes_attribute<ReduceMax>},
      {"logsumexp", reduce_with_axes_attribute<ReduceLogSumExp>},
      {"argmax", argmax},
      {"gather", gather},
      {"softmax", softmax},
      {"log_softmax", log_softmax},
      {"reshape", reshape},
      {"expand", expand},
      {"permute", permute},
      {"unsqueeze", unsqueeze},
      {"squeeze", squeeze},
      {"contiguous", same_inputs<Identity>},
      {"slice", slice},
      {"pad", pad},
      {"concat", concat},
      {"matmul", same_inputs<MatMul>},
      {"linear", linear},
      {"conv2d", conv2d},
      {"max_pool2d", max_pool2d},
      {"avg_pool2d", avg_pool2d},
      {"batch_norm", batch_norm},
      {"recurrent", recurrent},
  };
  return table;
}

}  // namespace

ExportRule export_rule(const std::string& op) {
  auto it = rules().find(op);
  return it == rules().end() ? nullptr : it->second;
}

std::string exportable_ops() {
  std::string s;
  for (const auto& kv : rules()) s += (s.empty() ? "" : ", ") + kv.first;
  return s;
}

}  // namespace advgrad::onnx_export
