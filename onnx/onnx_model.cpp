#include "advgrad/onnx/onnx_model.h"

#include <algorithm>

#include "advgrad/onnx/op_table.h"

namespace advgrad {

using namespace onnx_import;

OnnxModel::OnnxModel(std::unique_ptr<CompiledGraph> graph) : graph_(std::move(graph)) {
  if (!graph_) throw ValueError("OnnxModel: graph is null");
  // The slots hold the registered handles, so optimizers, load_state_dict and to() act on what runs.
  for (const auto& [name, slot] : graph_->parameters)
    graph_->slots[size_t(slot)].tensor = register_parameter(name, graph_->slots[size_t(slot)].tensor);
  for (const auto& [name, slot] : graph_->buffers)
    graph_->slots[size_t(slot)].tensor = register_buffer(name, graph_->slots[size_t(slot)].tensor);
  register_generator("dropout_generator", dropout_generator_);
}

OnnxModel::~OnnxModel() = default;

Tensor OnnxModel::forward(const Tensor& x) {
  const CompiledGraph& g = *graph_;
  const std::vector<int64_t>& want = g.input_dims;
  bool fits = want.empty() || int64_t(want.size()) == x.dim();
  for (size_t a = 0; fits && a < want.size(); ++a) fits = want[a] < 0 || want[a] == x.size(int64_t(a));
  if (!fits) {
    std::string w;
    for (size_t a = 0; a < want.size(); ++a) w += (a ? "," : "") + (want[a] < 0 ? std::string("N") : std::to_string(want[a]));
    throw ShapeError(g.file + ": input '" + g.input_name + "' is " + shape_str(x.shape()) + ", the model takes [" + w + "]");
  }
  std::vector<Value> values = g.slots;  // constants and parameters (handles); the rest is filled below
  values[size_t(g.input_slot)] = Value::of(x);
  CreatedLimitScope created_limit(g.created_limit);
  // Bytes held by the values computed so far (activations are dropped after their last use): a graph whose
  // activations outgrow the model's budget (OnnxLoadOptions::max_tensor_bytes) stops with an error.
  auto bytes_of = [](const Value& v) -> uint64_t {
    if (v.is_int) return uint64_t(v.ints.values.size()) * 8;
    return v.tensor.defined() ? uint64_t(v.tensor.numel()) * dtype_size(v.tensor.dtype()) : 0;
  };
  uint64_t live_bytes = 0;
  RunContext ctx;
  ctx.training = is_training();
  ctx.dropout_generator = &dropout_generator_;
  std::vector<const Value*> inputs;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const CompiledNode& node = g.nodes[n];
    inputs.clear();
    for (int s : node.inputs) inputs.push_back(s >= 0 ? &values[size_t(s)] : nullptr);
    std::vector<Value> outs;
    auto label = [&] {  // built only when something fails
      return g.file + ": node '" + node.info.name + "' (op " + node.info.op_type + ", opset " + std::to_string(g.opset) + "): ";
    };
    try {
      outs = node.kernel(inputs, ctx);
    } catch (const NodeError& e) {
      throw ValueError(label() + e.what());
    } catch (const ShapeError& e) {
      throw ShapeError(label() + e.what());
    } catch (const TypeError& e) {
      throw TypeError(label() + e.what());
    } catch (const ValueError& e) {
      throw ValueError(label() + e.what());
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (node.outputs[k] < 0) continue;
      if (k >= outs.size()) throw ValueError(label() + "output " + std::to_string(k) + " is not supported");
      live_bytes += bytes_of(outs[k]);
      values[size_t(node.outputs[k])] = std::move(outs[k]);
    }
    if (live_bytes > g.max_live_bytes)
      throw ValueError(label() + "the graph's values take " + std::to_string(live_bytes) + " bytes, over the limit of " +
                       std::to_string(g.max_live_bytes) + " (OnnxLoadOptions::max_tensor_bytes)");
    // Drop activations no later node reads (constants stay in g.slots).
    for (int s : node.inputs)
      if (s >= 0 && g.last_use[size_t(s)] == int(n) && s != g.output_slot && s != g.input_slot &&
          !g.slots[size_t(s)].defined()) {  // a value computed in this forward (not a constant or parameter)
        live_bytes -= std::min(live_bytes, bytes_of(values[size_t(s)]));
        values[size_t(s)] = Value();
      }
  }
  const Value& out = values[size_t(g.output_slot)];
  if (!out.defined() || out.is_int) throw ValueError(g.file + ": output '" + g.output_name + "' is not floating data");
  return out.tensor;
}

std::string OnnxModel::describe() const {
  const std::string& f = graph_->file;
  const size_t slash = f.find_last_of('/');
  return "OnnxModel(" + (slash == std::string::npos ? f : f.substr(slash + 1)) + ", " + std::to_string(graph_->file_nodes) +
         " nodes, opset " + std::to_string(graph_->opset) + ")";
}

const std::vector<int64_t>& OnnxModel::input_dims() const { return graph_->input_dims; }
const std::string& OnnxModel::input_name() const { return graph_->input_name; }
const std::string& OnnxModel::output_name() const { return graph_->output_name; }
int64_t OnnxModel::opset() const { return graph_->opset; }
std::vector<std::pair<std::string, int64_t>> OnnxModel::op_counts() const { return graph_->op_counts; }
const std::string& OnnxModel::model_without_weights() const { return graph_->model_without_weights; }

}  // namespace advgrad
