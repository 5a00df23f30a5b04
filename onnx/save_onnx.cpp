// save_onnx: trace the module's forward twice (two batch sizes), write the graph, check it, write the file.
#include "advgrad/onnx/save_onnx.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "advgrad/onnx/export_graph.h"
#include "advgrad/onnx/onnx_model.h"

namespace advgrad {

namespace ox = ::onnx;
using onnx_export::GraphWriter;
using onnx_export::identity;
using onnx_export::Trace;

namespace {

// Records every op, and the storage version of each output when it was written: an in-place change after
// that (Tensor::add_ and friends are not traced) would make the graph compute something else.
class RecordingTracer : public Tracer {
 public:
  std::vector<TracedOp> ops;
  std::vector<std::vector<uint64_t>> versions;
  void record(TracedOp op) override {
    std::vector<uint64_t> v;
    for (const auto& t : op.outputs) v.push_back(t.defined() ? t.version() : 0);
    versions.push_back(std::move(v));
    ops.push_back(std::move(op));
  }
};

// Eval mode for the trace; every module's own mode back afterwards (train() is recursive, so restoring in
// pre-order gives each module its own flag).
class EvalModeScope {
 public:
  explicit EvalModeScope(Module& root) {
    collect(root);
    root.eval();
  }
  ~EvalModeScope() {
    for (auto& entry : modes_) entry.first->train(entry.second);
  }

 private:
  void collect(Module& m) {
    modes_.emplace_back(&m, m.is_training());
    for (const auto& child : m.children()) collect(*child.second);
  }
  std::vector<std::pair<Module*, bool>> modes_;
};

DType model_dtype(const Module& m) {
  for (const auto& kv : m.named_parameters())
    if (is_floating(kv.second.dtype())) return kv.second.dtype();
  return DType::F32;
}
Device model_device(const Module& m) {
  for (const auto& kv : m.named_parameters()) return kv.second.device();
  return Device::CPU;
}

Trace trace_forward(Module& module, const Tensor& x) {
  RecordingTracer recorder;
  Trace trace;
  trace.input = x;
  {
    NoGradGuard no_grad;
    TraceScope scope(recorder);
    trace.output = module.forward(x);
  }
  for (size_t k = 0; k < recorder.ops.size(); ++k)
    for (size_t j = 0; j < recorder.ops[k].outputs.size(); ++j) {
      const Tensor& t = recorder.ops[k].outputs[j];
      if (t.defined() && t.version() != recorder.versions[k][j])
        throw ValueError("save_onnx: the output of op " + std::to_string(k) + " '" + recorder.ops[k].op +
                         "' was changed in place later in forward(); in-place methods are not traced, use ops");
    }
  // Keep the ops the output depends on (argument checks inside ops also run ops, on their own values).
  trace.needed.insert(identity(trace.output));
  std::vector<size_t> kept;
  for (size_t k = recorder.ops.size(); k-- > 0;) {
    const TracedOp& op = recorder.ops[k];
    bool live = false;
    for (const auto& t : op.outputs) live = live || (t.defined() && trace.needed.count(identity(t)));
    if (!live) continue;
    kept.push_back(k);
    for (const auto& t : op.inputs)
      if (t.defined()) trace.needed.insert(identity(t));
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    trace.ops.push_back(std::move(recorder.ops[*it]));
    trace.op_index.push_back(*it);
  }
  return trace;
}

void add_value_info(ox::ValueInfoProto& info, const std::string& name, DType dtype, const Shape& a, const Shape& b,
                    const std::string& batch_name) {
  info.set_name(name);
  ox::TypeProto_Tensor* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx_export::onnx_dtype(dtype));
  ox::TensorShapeProto* shape = tensor->mutable_shape();
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i])
      shape->add_dim()->set_dim_param(batch_name);  // changes with the batch: symbolic
    else
      shape->add_dim()->set_dim_value(a[i]);
  }
}

void check_opset(const OnnxExportOptions& options) {
  if (options.opset < 13 || options.opset > 17)
    throw ValueError("save_onnx: opset " + std::to_string(options.opset) + " is not supported (13 to 17)");
}

void set_model_header(ox::ModelProto& model, const OnnxExportOptions& options) {
  model.set_ir_version(8);
  model.set_producer_name(options.producer_name);
  ox::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
}

// The file must be something ONNX tools accept: the checker, then shape inference in strict mode.
void check_model(ox::ModelProto model) {
  try {
    ox::checker::check_model(model);
    ox::ShapeInferenceOptions strict(true, 1, false);
    ox::shape_inference::InferShapes(model, ox::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    throw ValueError(std::string("save_onnx: the exported graph fails ONNX's checks: ") + e.what());
  }
}

ox::ModelProto export_traced(Module& module, const Shape& sample_input_shape, const OnnxExportOptions& options) {
  for (int64_t d : sample_input_shape)
    if (d < 1)
      throw ValueError("save_onnx: sample_input_shape " + shape_str(sample_input_shape) +
                       " must be one sample's dims (each >= 1), without the batch dim");
  EvalModeScope eval_mode(module);
  const DType dtype = model_dtype(module);
  const Device device = model_device(module);
  // Two batch sizes with different inputs: what changes between the graphs depends on the batch or on the
  // input's values, which a graph with a symbolic batch cannot hold.
  const int64_t batches[2] = {2, 3};
  ox::ModelProto models[2];
  std::vector<size_t> sources[2];
  Shape output_shapes[2];
  DType output_dtype = dtype;
  for (int i = 0; i < 2; ++i) {
    Shape shape{batches[i]};
    shape.insert(shape.end(), sample_input_shape.begin(), sample_input_shape.end());
    Generator gen(uint64_t(1 + i));
    Trace trace = trace_forward(module, rand(shape, gen, dtype, device));
    set_model_header(models[i], options);
    ox::GraphProto* graph = models[i].mutable_graph();
    graph->set_name("advgrad");
    GraphWriter writer(*graph, module, options, trace);
    writer.write();
    sources[i] = writer.node_sources();
    output_shapes[i] = trace.output.shape();
    output_dtype = trace.output.dtype();
  }
  const auto &g0 = models[0].graph(), &g1 = models[1].graph();
  const int n = std::min(g0.node_size(), g1.node_size());
  for (int k = 0; k <= n; ++k) {
    bool same = k < n ? g0.node(k).SerializeAsString() == g1.node(k).SerializeAsString()
                      : g0.node_size() == g1.node_size();
    if (same) continue;
    std::string which = k < n ? "node '" + g0.node(k).name() + "'" : "the number of nodes";
    throw ValueError("save_onnx: " + which + " differs between batch sizes " + std::to_string(batches[0]) + " and " +
                     std::to_string(batches[1]) + ": an attribute or a constant of that op depends on the batch size "
                     "or on the input's values (a shape built from x.size(0), a tensor made with Tensor methods "
                     "such as detach()/to()/clone() or read back with item()), which ONNX with a symbolic batch "
                     "cannot express");
  }
  if (output_shapes[0].empty() || output_shapes[0][0] != batches[0] || output_shapes[1][0] != batches[1])
    throw ValueError("save_onnx: the output " + shape_str(output_shapes[0]) +
                     " does not have the batch in dim 0 (ONNX's output would have no batch dim)");
  ox::GraphProto* graph = models[0].mutable_graph();
  Shape in0{batches[0]}, in1{batches[1]};
  in0.insert(in0.end(), sample_input_shape.begin(), sample_input_shape.end());
  in1.insert(in1.end(), sample_input_shape.begin(), sample_input_shape.end());
  add_value_info(*graph->add_input(), options.input_name, dtype, in0, in1, options.batch_dim_name);
  add_value_info(*graph->add_output(), options.output_name, output_dtype, output_shapes[0], output_shapes[1],
                 options.batch_dim_name);
  return models[0];
}

void write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IOError(path + ": cannot write (" + tmp + " cannot be created)");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw IOError(path + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IOError(path + ": cannot rename " + tmp + " into place");
  }
}

// An imported model goes out in its own graph (as loaded, so every op it had survives) with the current
// parameters and buffers put back by name: fine-tuned weights, original graph.
ox::ModelProto export_imported(const OnnxModel& model, const Shape& sample_input_shape) {
  const auto& dims = model.input_dims();
  if (!sample_input_shape.empty() && Shape(dims.begin() + (dims.empty() ? 0 : 1), dims.end()) != sample_input_shape)
    throw ValueError("save_onnx: sample_input_shape " + shape_str(sample_input_shape) + " differs from the input of " +
                     model.describe() + " (" + shape_str(dims) + ")");
  ox::ModelProto proto;
  if (!proto.ParseFromString(model.model_without_weights()))
    throw ValueError("save_onnx: " + model.describe() + ": its stored graph cannot be parsed");
  ox::GraphProto* graph = proto.mutable_graph();
  for (const auto& kv : model.named_parameters()) onnx_export::fill_tensor_proto(*graph->add_initializer(), kv.second, kv.first);
  for (const auto& kv : model.named_buffers()) onnx_export::fill_tensor_proto(*graph->add_initializer(), kv.second, kv.first);
  return proto;
}

}  // namespace

std::string export_onnx_to_string(Module& module, const Shape& sample_input_shape, const OnnxExportOptions& options) {
  if (const auto* imported = dynamic_cast<const OnnxModel*>(&module)) {
    ox::ModelProto model = export_imported(*imported, sample_input_shape);
    check_model(model);
    return model.SerializeAsString();
  }
  check_opset(options);
  ox::ModelProto model = export_traced(module, sample_input_shape, options);
  check_model(model);
  return model.SerializeAsString();
}

void save_onnx(Module& module, const Shape& sample_input_shape, const std::string& path,
               const OnnxExportOptions& options) {
  write_atomically(path, export_onnx_to_string(module, sample_input_shape, options));
}

}  // namespace advgrad
