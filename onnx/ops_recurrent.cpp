// LSTM, GRU and RNN in ONNX's own layouts (LSTM gates i,o,f,c; GRU z,r,h with linear_before_reset;
// forward, reverse, bidirectional; initial states; Y [T,dirs,N,H], Y_h and Y_c [dirs,N,H]). The math is
// onnx/recurrent.h; this file checks the attributes and inputs.
#include "advgrad/onnx/op_table.h"
#include "advgrad/onnx/recurrent.h"

namespace advgrad::onnx_import {

namespace {

// The attributes every recurrent op shares; what advgrad does not implement is refused by name.
struct RecurrentAttributes {
  OnnxDirection direction = OnnxDirection::Forward;
  int64_t hidden_size = 0;
};

RecurrentAttributes read_recurrent(const NodeInfo& node, const std::vector<std::string>& default_activations) {
  RecurrentAttributes r;
  const std::string dir = attr_string(node, "direction", "forward");
  if (dir == "forward") r.direction = OnnxDirection::Forward;
  else if (dir == "reverse") r.direction = OnnxDirection::Reverse;
  else if (dir == "bidirectional") r.direction = OnnxDirection::Bidirectional;
  else throw NodeError("attribute 'direction' = " + dir + " is not forward, reverse or bidirectional");
  r.hidden_size = attr_int(node, "hidden_size", 0);
  if (r.hidden_size < 1) throw NodeError("attribute 'hidden_size' must be given and >= 1");
  if (attr_int(node, "layout", 0) != 0) throw NodeError("attribute 'layout' = 1 (batch-major) is not supported");
  if (has_attr(node, "clip")) throw NodeError("attribute 'clip' is not supported");
  if (has_attr(node, "activation_alpha") || has_attr(node, "activation_beta"))
    throw NodeError("attributes 'activation_alpha'/'activation_beta' are not supported");
  auto it = node.attributes.find("activations");
  if (it != node.attributes.end()) {
    const size_t dirs = r.direction == OnnxDirection::Bidirectional ? 2 : 1;
    // The attribute lists the activations per direction; only the defaults are implemented.
    if (it->second.kind != Attribute::Kind::Strings) throw NodeError("attribute 'activations' is not a list of strings");
    const std::vector<std::string>& got = it->second.strings;
    std::vector<std::string> want;
    for (size_t d = 0; d < dirs; ++d) want.insert(want.end(), default_activations.begin(), default_activations.end());
    if (got != want && got != default_activations) {
      std::string list;
      for (const auto& a : got) list += (list.empty() ? "" : ",") + a;
      throw NodeError("attribute 'activations' = " + list + " is not supported (only the defaults)");
    }
  }
  return r;
}

Tensor optional(const std::vector<const Value*>& in, size_t i, const char* what) {
  return has_input(in, i) ? float_input(in, i, what) : Tensor();
}

std::vector<Value> results(const OnnxRecurrentResult& r) {
  return {Value::of(r.Y), Value::of(r.Y_h), Value::of(r.Y_c)};
}

}  // namespace

void add_recurrent_ops(OpTable& t) {
  const std::vector<std::string> common = {"activations", "activation_alpha", "activation_beta", "clip", "direction",
                                           "hidden_size", "layout"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), common.begin(), common.end());
    return extra;
  };
  t["LSTM"].attributes = with({"input_forget"});
  t["LSTM"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const RecurrentAttributes a = read_recurrent(node, {"Sigmoid", "Tanh", "Tanh"});
    if (attr_int(node, "input_forget", 0) != 0) throw NodeError("attribute 'input_forget' = 1 is not supported");
    if (node.inputs.size() > 4 && !node.inputs[4].empty()) throw NodeError("input 'sequence_lens' is not supported");
    if (node.inputs.size() > 7 && !node.inputs[7].empty()) throw NodeError("input 'P' (peepholes) is not supported");
    return [a](const std::vector<const Value*>& in, RunContext&) {
      return results(onnx_lstm(float_input(in, 0, "X"), float_input(in, 1, "W"), float_input(in, 2, "R"), optional(in, 3, "B"),
                               optional(in, 5, "initial_h"), optional(in, 6, "initial_c"), a.direction, a.hidden_size));
    };
  };
  t["GRU"].attributes = with({"linear_before_reset"});
  t["GRU"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const RecurrentAttributes a = read_recurrent(node, {"Sigmoid", "Tanh"});
    const bool linear_before_reset = attr_int(node, "linear_before_reset", 0) != 0;
    if (node.inputs.size() > 4 && !node.inputs[4].empty()) throw NodeError("input 'sequence_lens' is not supported");
    return [a, linear_before_reset](const std::vector<const Value*>& in, RunContext&) {
      return results(onnx_gru(float_input(in, 0, "X"), float_input(in, 1, "W"), float_input(in, 2, "R"), optional(in, 3, "B"),
                              optional(in, 5, "initial_h"), a.direction, a.hidden_size, linear_before_reset));
    };
  };
  t["RNN"].attributes = common;
  t["RNN"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const RecurrentAttributes a = read_recurrent(node, {"Tanh"});
    if (node.inputs.size() > 4 && !node.inputs[4].empty()) throw NodeError("input 'sequence_lens' is not supported");
    return [a](const std::vector<const Value*>& in, RunContext&) {
      return results(onnx_rnn(float_input(in, 0, "X"), float_input(in, 1, "W"), float_input(in, 2, "R"), optional(in, 3, "B"),
                              optional(in, 5, "initial_h"), a.direction, a.hidden_size));
    };
  };
}

}  // namespace advgrad::onnx_import
