// GraphWriter: value names, initializers, Constant nodes and the per-op dispatch of save_onnx.
#include "advgrad/onnx/export_graph.h"

#include <cstring>

namespace advgrad::onnx_export {

namespace ox = ::onnx;

const TensorImpl* identity(const Tensor& t) { return &t.impl(); }

ox::TensorProto_DataType onnx_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32: return ox::TensorProto_DataType_FLOAT;
    case DType::F64: return ox::TensorProto_DataType_DOUBLE;
    case DType::I64: return ox::TensorProto_DataType_INT64;
  }
  throw ValueError("save_onnx: unknown dtype");
}

void fill_tensor_proto(ox::TensorProto& proto, const Tensor& t, const std::string& name) {
  proto.set_name(name);
  proto.set_data_type(onnx_dtype(t.dtype()));
  for (int64_t d : t.shape()) proto.add_dims(d);
  // Bytes cross the device boundary as in serialization (copy_to_host); ONNX raw_data is little-endian,
  // as the host.
  Tensor dense = t.dense();
  std::string bytes(size_t(dense.numel()) * dtype_size(t.dtype()), '\0');
  if (!bytes.empty()) dense.copy_to_host(bytes.data(), bytes.size());
  proto.set_raw_data(std::move(bytes));
}

GraphWriter::GraphWriter(ox::GraphProto& graph, const Module& module, const OnnxExportOptions& options,
                         const Trace& trace)
    : graph_(graph), options_(options), trace_(trace) {
  for (const auto& kv : module.named_parameters()) state_names_[identity(kv.second)] = kv.first;
  for (const auto& kv : module.named_buffers()) state_names_[identity(kv.second)] = kv.first;
  for (const auto& kv : state_names_) used_names_.insert(kv.second);
  used_names_.insert(options.input_name);
  used_names_.insert(options.output_name);
  names_[identity(trace.input)] = options.input_name;
}

std::string GraphWriter::fresh(const std::string& hint) {
  std::string name = hint;
  for (int i = 1; used_names_.count(name); ++i) name = hint + "_" + std::to_string(i);
  used_names_.insert(name);
  return name;
}

void GraphWriter::bind(const Tensor& t, const std::string& name) { names_[identity(t)] = name; }

std::string GraphWriter::output_name_for(const Tensor& t) {
  if (identity(t) == identity(trace_.output)) {
    bind(t, options_.output_name);
    return options_.output_name;
  }
  std::string name = fresh(op_->op + "_" + std::to_string(op_k_) + "_out");
  bind(t, name);
  return name;
}

std::string GraphWriter::value(const Tensor& t) {
  auto found = names_.find(identity(t));
  if (found != names_.end()) return found->second;
  auto state = state_names_.find(identity(t));
  if (state != state_names_.end()) {  // a parameter or buffer: an initializer named by its state_dict key
    fill_tensor_proto(*graph_.add_initializer(), t, state->second);
    names_[identity(t)] = state->second;
    return state->second;
  }
  // Read by an op but written by none (a constant the forward made): a Constant node with its data.
  std::string name = fresh(op_->op + "_" + std::to_string(op_k_) + "_const");
  ox::NodeProto& n = node("Constant", {}, {name});
  ox::AttributeProto* a = n.add_attribute();
  a->set_name("value");
  a->set_type(ox::AttributeProto_AttributeType_TENSOR);
  fill_tensor_proto(*a->mutable_t(), t, name);
  names_[identity(t)] = name;
  return name;
}

ox::NodeProto& GraphWriter::node(const std::string& type, const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs) {
  ox::NodeProto* n = graph_.add_node();
  n->set_op_type(type);
  n->set_name(op_->op + "_" + std::to_string(op_k_) + "/" + type + "_" + std::to_string(sub_node_++));
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  node_sources_.push_back(op_k_);
  return *n;
}

std::string GraphWriter::node1(const std::string& type, const std::vector<std::string>& inputs, const Tensor& result) {
  std::string out = result.defined() ? output_name_for(result) : fresh(op_->op + "_" + std::to_string(op_k_) + "_" + type);
  node(type, inputs, {out});
  return out;
}

std::string GraphWriter::ints_constant(const std::vector<int64_t>& values) {
  made_constants_.push_back(from_vector(values, {int64_t(values.size())}));
  return value(made_constants_.back());
}

std::string GraphWriter::scalar_constant(double v, DType dtype) {
  made_constants_.push_back(scalar_tensor(v, dtype));
  return value(made_constants_.back());
}

void GraphWriter::set_ints(ox::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  ox::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto_AttributeType_INTS);
  for (int64_t x : v) a->add_ints(x);
}
void GraphWriter::set_int(ox::NodeProto& n, const std::string& name, int64_t v) {
  ox::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto_AttributeType_INT);
  a->set_i(v);
}
void GraphWriter::set_float(ox::NodeProto& n, const std::string& name, double v) {
  ox::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto_AttributeType_FLOAT);
  a->set_f(float(v));
}
void GraphWriter::set_string(ox::NodeProto& n, const std::string& name, const std::string& v) {
  ox::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(ox::AttributeProto_AttributeType_STRING);
  a->set_s(v);
}

std::string GraphWriter::where_text() const {
  std::string s = "op " + std::to_string(op_k_) + " '" + op_->op + "'";
  if (!last_module_.empty()) s += " (in or after module '" + last_module_ + "')";
  return s;
}

void GraphWriter::refuse(const std::string& why) const { throw ValueError("save_onnx: " + where_text() + ": " + why); }

void GraphWriter::emit(size_t k) {
  op_ = &trace_.ops[k];
  op_k_ = trace_.op_index[k];
  sub_node_ = 0;
  for (const auto& t : op_->inputs) {
    if (!t.defined()) continue;
    auto state = state_names_.find(identity(t));
    if (state == state_names_.end()) continue;
    const std::string& key = state->second;
    size_t dot = key.rfind('.');
    last_module_ = dot == std::string::npos ? "" : key.substr(0, dot);
  }
  ExportRule rule = export_rule(op_->op);
  if (!rule) {
    std::string hint = op_->op == "lstm_sequence" ? " (use the LSTM layer, nn/layers.h, which exports as an ONNX LSTM)" : "";
    refuse("no ONNX rule for this op" + hint + "; ops with one: " + exportable_ops());
  }
  rule(*this, *op_);
}

void GraphWriter::write() {
  for (size_t k = 0; k < trace_.ops.size(); ++k) emit(k);
  if (!names_.count(identity(trace_.output)) || names_[identity(trace_.output)] != options_.output_name) {
    // The output is the input, a parameter or a constant: pass it through one Identity node.
    static const TracedOp identity_op{"output", {}, {}, {}};
    op_ = &identity_op;
    op_k_ = trace_.ops.size();
    std::string source = value(trace_.output);
    node("Identity", {source}, {options_.output_name});
  }
}

}  // namespace advgrad::onnx_export
