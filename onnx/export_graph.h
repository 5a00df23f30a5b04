// Internal to save_onnx (onnx/save_onnx.cpp): one traced forward pass written as an ONNX GraphProto. The
// rules that turn each traced op into ONNX nodes are in onnx/export_rules.cpp, one function per op.
// Includes protobuf/ONNX headers: never include it from a public header.
#pragma once
#include <onnx/onnx_pb.h>

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "advgrad/autograd/trace.h"
#include "advgrad/nn/module.h"
#include "advgrad/onnx/save_onnx.h"

namespace advgrad::onnx_export {

// One forward pass: the ops the output depends on, in the order they ran.
struct Trace {
  Tensor input, output;
  std::vector<TracedOp> ops;
  std::vector<size_t> op_index;  // each kept op's position among all ops traced (for messages)
  std::unordered_set<const TensorImpl*> needed;  // tensors the output depends on
};

const TensorImpl* identity(const Tensor& t);

class GraphWriter {
 public:
  GraphWriter(::onnx::GraphProto& graph, const Module& module, const OnnxExportOptions& options,
              const Trace& trace);
  void write();  // every op of the trace, then the graph's input and output

  // ---- for the rules (export_rules.cpp) ----
  const TracedOp& op() const { return *op_; }
  // The value holding t: an op's output, the graph input, a parameter/buffer initializer (added on first
  // use, named by its state_dict key) or a Constant node with its data.
  std::string value(const Tensor& t);
  std::string value_or_empty(const Tensor& t) { return t.defined() ? value(t) : std::string(); }
  // A node of the current op; its output names are made for `outputs` (bound to those tensors), or fresh.
  ::onnx::NodeProto& node(const std::string& type, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs);
  // One-output node; returns the output's name. With `result` defined, the output is bound to it.
  std::string node1(const std::string& type, const std::vector<std::string>& inputs, const Tensor& result = Tensor());
  std::string fresh(const std::string& hint);
  std::string output_name_for(const Tensor& t);  // the name to give a node output that holds t (binds it)
  void bind(const Tensor& t, const std::string& name);
  bool needed(const Tensor& t) const { return t.defined() && trace_.needed.count(identity(t)) > 0; }
  std::string ints_constant(const std::vector<int64_t>& values);
  std::string scalar_constant(double value, DType dtype);
  [[noreturn]] void refuse(const std::string& why) const;  // ValueError naming the op and its module
  static void set_ints(::onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v);
  static void set_int(::onnx::NodeProto& n, const std::string& name, int64_t v);
  static void set_float(::onnx::NodeProto& n, const std::string& name, double v);
  static void set_string(::onnx::NodeProto& n, const std::string& name, const std::string& v);

  // Node i of the graph came from trace op source_of(i) (for save_onnx's batch-size comparison).
  const std::vector<size_t>& node_sources() const { return node_sources_; }

 private:
  void emit(size_t k);
  std::string where_text() const;  // "op 5 'one_hot' (after module '3')"

  ::onnx::GraphProto& graph_;
  const OnnxExportOptions& options_;
  const Trace& trace_;
  std::unordered_map<const TensorImpl*, std::string> names_;        // value name of each tensor seen
  std::unordered_map<const TensorImpl*, std::string> state_names_;  // parameters and buffers: state_dict keys
  std::set<std::string> used_names_;
  std::vector<size_t> node_sources_;
  const TracedOp* op_ = nullptr;
  size_t op_k_ = 0;
  int sub_node_ = 0;
  std::string last_module_;  // the module whose parameters an op read last (for messages)
  std::vector<Tensor> made_constants_;  // kept alive: names_ is keyed by TensorImpl address
};

// ---- the rules: export_rules.cpp ----
using ExportRule = void (*)(GraphWriter& w, const TracedOp& op);
// The rule for a traced op name, or null (no ONNX form).
ExportRule export_rule(const std::string& op);
std::string exportable_ops();  // "abs, add, ..." for messages

::onnx::TensorProto_DataType onnx_dtype(DType dtype);
void fill_tensor_proto(::onnx::TensorProto& proto, const Tensor& t, const std::string& name);

}  // namespace advgrad::onnx_export
