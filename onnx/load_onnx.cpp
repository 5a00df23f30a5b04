// The ONNX loader. The file is untrusted: in order, its size is checked, protobuf parses it within that
// size, every tensor's dims/dtype/byte count is checked (and external data refused) before any tensor is
// decoded, the graph's names, references and order are checked, then ONNX's own checker and shape
// inference run. Only then are nodes matched against the op table (onnx/op_table.h) and compiled.
#include "advgrad/onnx/load_onnx.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "advgrad/onnx/op_table.h"
#include "onnx/shape_inference/implementation.h"

namespace advgrad {
namespace {

using namespace onnx_import;
using onnx::TensorProto;

std::string dtype_name(int32_t dt) {
  switch (dt) {
    case TensorProto::FLOAT: return "float32";
    case TensorProto::DOUBLE: return "float64";
    case TensorProto::INT32: return "int32";
    case TensorProto::INT64: return "int64";
    case TensorProto::BOOL: return "bool";
    default: return onnx::TensorProto_DataType_IsValid(dt) ? onnx::TensorProto_DataType_Name(TensorProto::DataType(dt)) : "type " + std::to_string(dt);
  }
}

// Bytes per element of the types advgrad decodes; 0 = not supported.
size_t element_bytes(int32_t dt) {
  switch (dt) {
    case TensorProto::FLOAT: case TensorProto::INT32: return 4;
    case TensorProto::DOUBLE: case TensorProto::INT64: return 8;
    case TensorProto::BOOL: return 1;
    default: return 0;
  }
}

// The checks of one tensor (initializer or attribute) before anything is allocated from its header.
class TensorBudget {
 public:
  TensorBudget(std::string file, const OnnxLoadOptions& options) : file_(std::move(file)), options_(options) {}

  // Returns the element count; IOError/ValueError naming the tensor otherwise.
  int64_t check(const TensorProto& t, const std::string& what) {
    const std::string where = file_ + ": " + what;
    if (t.data_location() == TensorProto::EXTERNAL || t.external_data_size() > 0)
      throw IOError(where + " refers to external data, which is refused (save the model with its weights inside the file)");
    if (t.has_segment()) throw IOError(where + " is segmented, which is not supported");
    if (t.dims_size() > options_.max_rank)
      throw IOError(where + " has " + std::to_string(t.dims_size()) + " dims, over the limit of " + std::to_string(options_.max_rank));
    int64_t n = 1;
    for (int64_t d : t.dims()) {
      if (d < 0) throw IOError(where + " has a negative dim " + std::to_string(d));
      // Even a tensor with a 0 dim: loops over its other dims would run that long.
      if (d > (int64_t(1) << 28)) throw IOError(where + " has a dim " + std::to_string(d) + " over the limit of 2^28");
      if (d != 0 && n > INT64_MAX / d) throw IOError(where + ": the product of its dims overflows int64");
      n *= d;
    }
    const size_t elem = element_bytes(t.data_type());
    if (elem == 0)
      throw ValueError(where + " has data type " + dtype_name(t.data_type()) +
                       ", which is not supported (float32, float64 (read as float32), int32, int64, bool)");
    if (uint64_t(n) > (UINT64_MAX / elem)) throw IOError(where + ": its byte count overflows");
    const uint64_t bytes = uint64_t(n) * elem;
    if (bytes > options_.max_tensor_bytes || total_ + bytes > options_.max_tensor_bytes)
      throw IOError(where + ": tensors total over the limit of " + std::to_string(options_.max_tensor_bytes) +
                    " bytes (OnnxLoadOptions::max_tensor_bytes)");
    total_ += bytes;
    if (t.has_raw_data()) {
      if (t.raw_data().size() != bytes)
        throw IOError(where + " has " + std::to_string(t.raw_data().size()) + " bytes of raw_data, its dims " +
                      dims_str(t) + " and " + dtype_name(t.data_type()) + " need " + std::to_string(bytes));
      return n;
    }
    int64_t stored = 0;
    switch (t.data_type()) {
      case TensorProto::FLOAT: stored = t.float_data_size(); break;
      case TensorProto::DOUBLE: stored = t.double_data_size(); break;
      case TensorProto::INT64: stored = t.int64_data_size(); break;
      default: stored = t.int32_data_size(); break;  // int32 and bool
    }
    if (stored != n)
      throw IOError(where + " holds " + std::to_string(stored) + " values, its dims " + dims_str(t) + " need " + std::to_string(n));
    return n;
  }

 private:
  static std::string dims_str(const TensorProto& t) {
    std::vector<int64_t> d(t.dims().begin(), t.dims().end());
    return join(d);
  }
  std::string file_;
  const OnnxLoadOptions& options_;
  uint64_t total_ = 0;
};

template <class T>
std::vector<T> raw_values(const std::string& raw, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  if (n) std::memcpy(v.data(), raw.data(), size_t(n) * sizeof(T));  // ONNX raw_data is little-endian, as this host
  return v;
}

// A checked tensor as a graph value: floating data as a float32 Tensor, integers on the host.
Value decode_tensor(const TensorProto& t) {
  Shape shape(t.dims().begin(), t.dims().end());
  const int64_t n = shape_numel(shape);
  const bool raw = t.has_raw_data();
  switch (t.data_type()) {
    case TensorProto::FLOAT: {
      std::vector<float> v = raw ? raw_values<float>(t.raw_data(), n) : std::vector<float>(t.float_data().begin(), t.float_data().end());
      return Value::of(from_vector(v, shape));
    }
    case TensorProto::DOUBLE: {  // advgrad models compute in float32: a float64 initializer is rounded once, here
      std::vector<double> v = raw ? raw_values<double>(t.raw_data(), n) : std::vector<double>(t.double_data().begin(), t.double_data().end());
      return Value::of(from_vector(v, shape).to(DType::F32));
    }
    case TensorProto::INT64: {
      IntTensor r{shape, raw ? raw_values<int64_t>(t.raw_data(), n) : std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end())};
      return Value::of_ints(r);
    }
    case TensorProto::INT32: {
      std::vector<int32_t> v = raw ? raw_values<int32_t>(t.raw_data(), n) : std::vector<int32_t>(t.int32_data().begin(), t.int32_data().end());
      return Value::of_ints({shape, std::vector<int64_t>(v.begin(), v.end())});
    }
    default: {  // bool
      IntTensor r{shape, {}};
      if (raw)
        for (char c : t.raw_data()) r.values.push_back(c != 0);
      else
        for (int32_t x : t.int32_data()) r.values.push_back(x != 0);
      return Value::of_ints(r);
    }
  }
}

std::string node_label(const onnx::NodeProto& node, int index, int64_t opset) {
  const std::string name = node.name().empty() ? "#" + std::to_string(index) : node.name();
  return "node '" + name + "' (op " + node.op_type() + ", opset " + std::to_string(opset) + ")";
}

std::string supported_list() {
  std::string s;
  for (const auto& op : supported_onnx_ops()) s += (s.empty() ? "" : ", ") + op;
  return s;
}

// A parsed, checked and shape-inferred model.
struct CheckedModel {
  std::string file;
  onnx::ModelProto model;          // with inferred value_info
  std::string as_loaded_without_weights;
  int64_t opset = 0;
  std::string input_name, output_name;
};

void parse(const void* data, size_t size, const std::string& file, const OnnxLoadOptions& options, onnx::ModelProto& model) {
  if (size > options.max_file_bytes)
    throw IOError(file + ": " + std::to_string(size) + " bytes is over the limit of " + std::to_string(options.max_file_bytes) +
                  " bytes (OnnxLoadOptions::max_file_bytes)");
  if (size > size_t(INT_MAX)) throw IOError(file + ": " + std::to_string(size) + " bytes is over protobuf's 2 GiB limit");
  google::protobuf::io::ArrayInputStream stream(data, int(size));
  google::protobuf::io::CodedInputStream coded(&stream);
  coded.SetTotalBytesLimit(int(size));
  coded.SetRecursionLimit(64);
  if (!model.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
    throw IOError(file + ": not a readable ONNX model (protobuf could not parse it: truncated or malformed)");
}

int64_t default_opset(const onnx::ModelProto& model, const std::string& file) {
  int64_t opset = -1;
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  if (opset < 0) throw IOError(file + ": no opset_import for the default ONNX domain");
  if (opset < 11 || opset > 17)
    throw ValueError(file + ": opset " + std::to_string(opset) + " is not supported (opsets 11 to 17)");
  return opset;
}

// Names, references, order, one input and one output: the graph's structure, before ONNX's checker.
void check_graph(const onnx::GraphProto& g, const std::string& file, const OnnxLoadOptions& options, TensorBudget& budget,
                 std::string& input_name, std::string& output_name) {
  if (g.node_size() > options.max_nodes)
    throw IOError(file + ": " + std::to_string(g.node_size()) + " nodes is over the limit of " + std::to_string(options.max_nodes) +
                  " (OnnxLoadOptions::max_nodes)");
  if (g.sparse_initializer_size() > 0) throw IOError(file + ": sparse initializers are not supported");
  std::set<std::string> initializers, defined;
  for (const auto& t : g.initializer()) {
    budget.check(t, "initializer '" + t.name() + "'");
    if (t.name().empty()) throw IOError(file + ": an initializer has no name");
    if (!initializers.insert(t.name()).second) throw IOError(file + ": initializer name '" + t.name() + "' is used twice");
  }
  defined = initializers;
  std::vector<std::string> real_inputs;
  std::set<std::string> input_names;
  for (const auto& in : g.input()) {
    if (!input_names.insert(in.name()).second) throw IOError(file + ": graph input name '" + in.name() + "' is used twice");
    if (initializers.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    real_inputs.push_back(in.name());
    defined.insert(in.name());
    if (in.type().has_tensor_type())
      for (const auto& d : in.type().tensor_type().shape().dim())
        if (d.has_dim_value() && d.dim_value() < 0)
          throw IOError(file + ": graph input '" + in.name() + "' has a negative dim " + std::to_string(d.dim_value()));
  }
  if (real_inputs.size() != 1)
    throw ValueError(file + ": the graph has " + std::to_string(real_inputs.size()) +
                     " inputs that are not initializers; advgrad models take exactly one");
  if (g.output_size() != 1)
    throw ValueError(file + ": the graph has " + std::to_string(g.output_size()) + " outputs; advgrad models give exactly one (the logits)");
  input_name = real_inputs[0];
  output_name = g.output(0).name();

  // Every value name is produced once, every input refers to something produced, and the nodes come in
  // an order where each input is produced before it is read (a cycle can have no such order).
  std::map<std::string, int> producer;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    for (const auto& a : node.attribute())
      if (a.has_t()) budget.check(a.t(), "node '" + node.name() + "' attribute '" + a.name() + "'");
    for (const auto& out : node.output()) {
      if (out.empty()) continue;
      if (defined.count(out) || producer.count(out))
        throw IOError(file + ": value name '" + out + "' is defined twice (node '" + node.name() + "')");
      producer[out] = i;
    }
  }
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& in : g.node(i).input())
      if (!in.empty() && !defined.count(in) && !producer.count(in))
        throw IOError(file + ": node '" + g.node(i).name() + "' (op " + g.node(i).op_type() + ") reads '" + in + "', which nothing defines");
  if (!defined.count(output_name) && !producer.count(output_name))
    throw IOError(file + ": graph output '" + output_name + "' is not defined by any node");
  // Kahn's algorithm: a node is ready when all its inputs exist; nodes left over sit on a cycle.
  std::vector<int> waiting(size_t(g.node_size()), 0);
  std::map<std::string, std::vector<int>> readers;
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& in : g.node(i).input())
      if (!in.empty() && !defined.count(in)) ++waiting[size_t(i)], readers[in].push_back(i);
  std::vector<int> ready;
  for (int i = 0; i < g.node_size(); ++i)
    if (waiting[size_t(i)] == 0) ready.push_back(i);
  int scheduled = 0;
  while (!ready.empty()) {
    const int i = ready.back();
    ready.pop_back();
    ++scheduled;
    for (const auto& out : g.node(i).output())
      for (int r : readers[out])
        if (--waiting[size_t(r)] == 0) ready.push_back(r);
  }
  if (scheduled != g.node_size()) {
    for (int i = 0; i < g.node_size(); ++i)
      if (waiting[size_t(i)] > 0)
        throw IOError(file + ": the graph has a cycle through node '" + g.node(i).name() + "' (op " + g.node(i).op_type() + ")");
  }
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& in : g.node(i).input())
      if (!in.empty() && !defined.count(in) && producer.at(in) >= i)
        throw IOError(file + ": node '" + g.node(i).name() + "' reads '" + in + "' before the node that makes it (the graph is not topologically sorted)");
}

CheckedModel check_model(const void* data, size_t size, const std::string& file, const OnnxLoadOptions& options) {
  CheckedModel m;
  m.file = file;
  parse(data, size, file, options, m.model);
  if (!m.model.has_graph()) throw IOError(file + ": the model has no graph");
  if (m.model.functions_size() > 0) throw ValueError(file + ": model-local functions are not supported");
  m.opset = default_opset(m.model, file);
  TensorBudget budget(file, options);
  check_graph(m.model.graph(), file, options, budget, m.input_name, m.output_name);
  try {
    onnx::checker::check_model(m.model);
  } catch (const std::exception& e) {
    throw IOError(file + ": the ONNX checker refuses the model: " + std::string(e.what()).substr(0, 500));
  }
  onnx::ModelProto as_loaded = m.model;
  try {
    onnx::shape_inference::InferShapes(m.model, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    throw IOError(file + ": ONNX shape inference fails: " + std::string(e.what()).substr(0, 500));
  }
  // Weights left out for save_onnx: every floating initializer (parameters and buffers).
  auto* inits = as_loaded.mutable_graph()->mutable_initializer();
  inits->erase(std::remove_if(inits->begin(), inits->end(), [](const TensorProto& t) {
                 return t.data_type() == TensorProto::FLOAT || t.data_type() == TensorProto::DOUBLE;
               }), inits->end());
  as_loaded.SerializeToString(&m.as_loaded_without_weights);
  return m;
}

Attribute convert_attribute(const onnx::AttributeProto& a) {
  Attribute r;
  switch (a.type()) {
    case onnx::AttributeProto::INT: r.kind = Attribute::Kind::Int, r.i = a.i(); break;
    case onnx::AttributeProto::FLOAT: r.kind = Attribute::Kind::Float, r.f = a.f(); break;
    case onnx::AttributeProto::STRING: r.kind = Attribute::Kind::String, r.s = a.s(); break;
    case onnx::AttributeProto::INTS: r.kind = Attribute::Kind::Ints, r.ints.assign(a.ints().begin(), a.ints().end()); break;
    case onnx::AttributeProto::FLOATS: r.kind = Attribute::Kind::Floats, r.floats.assign(a.floats().begin(), a.floats().end()); break;
    case onnx::AttributeProto::STRINGS: r.kind = Attribute::Kind::Strings, r.strings.assign(a.strings().begin(), a.strings().end()); break;
    case onnx::AttributeProto::TENSOR: r.kind = Attribute::Kind::Tensor, r.tensor = decode_tensor(a.t()); break;
    default: r.kind = Attribute::Kind::Other; break;
  }
  return r;
}

NodeInfo node_info(const onnx::NodeProto& node, int index, int64_t opset) {
  NodeInfo info;
  info.name = node.name().empty() ? "#" + std::to_string(index) : node.name();
  info.op_type = node.op_type();
  info.opset = opset;
  for (const auto& a : node.attribute()) info.attributes[a.name()] = convert_attribute(a);
  info.inputs.assign(node.input().begin(), node.input().end());
  info.outputs.assign(node.output().begin(), node.output().end());
  return info;
}

// The spec of a node advgrad can run, or an error line "node ... : why" (no file prefix).
const OpSpec* find_spec(const onnx::NodeProto& node, int index, int64_t opset, std::string& problem) {
  const std::string label = node_label(node, index, opset);
  const OpTable& table = op_table();
  auto it = table.find(node.op_type());
  if ((!node.domain().empty() && node.domain() != "ai.onnx") || it == table.end()) {
    problem = label + ": unsupported op" + (node.domain().empty() ? "" : " (domain " + node.domain() + ")") + "; supported: " + supported_list();
    return nullptr;
  }
  const OpSpec& spec = it->second;
  if (opset < spec.min_opset || opset > spec.max_opset) {
    problem = label + ": supported for opsets " + std::to_string(spec.min_opset) + " to " + std::to_string(spec.max_opset) + " only";
    return nullptr;
  }
  for (const auto& a : node.attribute())
    if (std::find(spec.attributes.begin(), spec.attributes.end(), a.name()) == spec.attributes.end()) {
      std::string accepted;
      for (const auto& s : spec.attributes) accepted += (accepted.empty() ? "" : ", ") + s;
      problem = label + ": attribute '" + a.name() + "' is not supported (accepted: " + (accepted.empty() ? "none" : accepted) + ")";
      return nullptr;
    }
  return &spec;
}

std::vector<int64_t> value_dims(const onnx::ValueInfoProto& v, std::vector<std::string>* names = nullptr) {
  std::vector<int64_t> dims;
  if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return dims;
  for (const auto& d : v.type().tensor_type().shape().dim()) {
    dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    if (names) names->push_back(d.has_dim_param() ? d.dim_param() : "");
  }
  return dims;
}

std::unique_ptr<CompiledGraph> compile(CheckedModel& m, const OnnxLoadOptions& options) {
  const onnx::GraphProto& g = m.model.graph();
  const std::string& file = m.file;
  auto graph = std::make_unique<CompiledGraph>();
  graph->file = file;
  graph->opset = m.opset;
  graph->input_name = m.input_name;
  graph->output_name = m.output_name;
  graph->model_without_weights = std::move(m.as_loaded_without_weights);
  graph->file_nodes = g.node_size();

  std::map<std::string, int> slot_of;
  auto slot = [&](const std::string& name) {
    auto it = slot_of.find(name);
    if (it != slot_of.end()) return it->second;
    const int s = int(graph->slots.size());
    slot_of[name] = s;
    graph->slots.emplace_back();
    graph->slot_names.push_back(name);
    return s;
  };

  // The input: floating, its dims from the file (-1 = symbolic).
  for (const auto& in : g.input())
    if (in.name() == m.input_name) {
      if (in.type().tensor_type().elem_type() != TensorProto::FLOAT)
        throw ValueError(file + ": input '" + in.name() + "' is " + dtype_name(in.type().tensor_type().elem_type()) + ", advgrad models take float32");
      graph->input_dims = value_dims(in);
    }
  graph->input_slot = slot(m.input_name);

  // Initializers: floating ones the graph reads are parameters (buffers when BatchNormalization's running
  // statistics); integers are constants.
  std::set<std::string> used_as_data, used_as_statistic;
  for (const auto& node : g.node())
    for (int k = 0; k < node.input_size(); ++k)
      (is_running_statistic_input(node.op_type(), size_t(k)) ? used_as_statistic : used_as_data).insert(node.input(k));
  std::vector<bool> is_constant;
  for (const auto& t : g.initializer()) {
    if (!used_as_data.count(t.name()) && !used_as_statistic.count(t.name()) && t.name() != m.output_name) continue;
    const int s = slot(t.name());
    graph->slots[size_t(s)] = decode_tensor(t);
    if (graph->slots[size_t(s)].is_int) continue;
    if (used_as_statistic.count(t.name()) && !used_as_data.count(t.name())) graph->buffers.emplace_back(t.name(), s);
    else graph->parameters.emplace_back(t.name(), s);
  }
  std::set<int> constant_slots;  // known at load and not a parameter/buffer: may be folded
  for (size_t s = 0; s < graph->slots.size(); ++s)
    if (graph->slots[s].is_int) constant_slots.insert(int(s));

  // Static dims from shape inference: a Shape of a value whose dims are all known folds at load.
  std::map<std::string, std::vector<int64_t>> static_dims;
  for (const auto* list : {&g.value_info(), &g.input(), &g.output()})
    for (const auto& v : *list) {
      std::vector<int64_t> d = value_dims(v);
      if (v.type().tensor_type().has_shape() && std::none_of(d.begin(), d.end(), [](int64_t x) { return x < 0; }))
        static_dims[v.name()] = d;
    }

  std::map<std::string, int64_t> counts;
  RunContext load_ctx;
  graph->created_limit = int64_t(std::min<uint64_t>(options.max_tensor_bytes / 4, uint64_t(kMaxCreatedElements)));
  graph->max_live_bytes = options.max_tensor_bytes;
  CreatedLimitScope created_limit(graph->created_limit);
  // Values computed at load stay in the graph: together they count against the same budget as the
  // file's own tensors, so a small file cannot fold itself into many gigabytes (one op alone is capped
  // at kMaxCreatedElements by check_created).
  uint64_t folded_bytes = 0;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    ++counts[node.op_type()];
    std::string problem;
    const OpSpec* spec = find_spec(node, i, m.opset, problem);
    if (!spec) throw ValueError(file + ": " + problem);
    CompiledNode c;
    c.info = node_info(node, i, m.opset);
    for (const auto& in : node.input()) c.inputs.push_back(in.empty() ? -1 : slot(in));
    for (const auto& out : node.output()) c.outputs.push_back(out.empty() ? -1 : slot(out));
    // Pointers into the slots only after every slot of this node exists (a new slot may move them all).
    std::vector<const Value*> constants;
    bool all_constant = spec->foldable;
    for (int s : c.inputs) {
      const bool known = s >= 0 && constant_slots.count(s);
      constants.push_back(known ? &graph->slots[size_t(s)] : nullptr);
      if (s >= 0 && !known) all_constant = false;
    }
    const std::string label = file + ": " + node_label(node, i, m.opset) + ": ";
    try {
      c.kernel = spec->prepare(c.info, constants);
      const bool static_shape = node.op_type() == "Shape" && node.input_size() == 1 && static_dims.count(node.input(0));
      if (all_constant || static_shape) {
        // Fold: run it now. A Shape of a statically shaped value reads only the dims of a stand-in.
        NoGradGuard no_grad;
        const Value stand_in = Value::of_ints({static_shape ? static_dims[node.input(0)] : std::vector<int64_t>{}, {}});
        std::vector<Value> outs = c.kernel(static_shape ? std::vector<const Value*>{&stand_in} : constants, load_ctx);
        for (const Value& v : outs)
          folded_bytes += v.is_int ? uint64_t(v.ints.values.size()) * 8
                                   : (v.tensor.defined() ? uint64_t(v.tensor.numel()) * dtype_size(v.tensor.dtype()) : 0);
        if (folded_bytes > options.max_tensor_bytes)
          throw NodeError("values computed at load from constants take " + std::to_string(folded_bytes) +
                          " bytes, over the limit of " + std::to_string(options.max_tensor_bytes) +
                          " (OnnxLoadOptions::max_tensor_bytes)");
        for (size_t k = 0; k < c.outputs.size() && k < outs.size(); ++k)
          if (c.outputs[k] >= 0) graph->slots[size_t(c.outputs[k])] = outs[k], constant_slots.insert(c.outputs[k]);
        continue;
      }
    } catch (const NodeError& e) {
      throw ValueError(label + e.what());
    } catch (const Error& e) {
      throw ValueError(label + e.what());
    }
    graph->nodes.push_back(std::move(c));
  }
  graph->op_counts.assign(counts.begin(), counts.end());
  graph->output_slot = slot(m.output_name);

  // A computed value is dropped after its last reader, so a forward holds only the live activations.
  graph->last_use.assign(graph->slots.size(), -1);
  for (size_t n = 0; n < graph->nodes.size(); ++n)
    for (int s : graph->nodes[n].inputs)
      if (s >= 0) graph->last_use[size_t(s)] = int(n);
  return graph;
}

}  // namespace

std::vector<std::string> supported_onnx_ops() {
  std::vector<std::string> ops;
  for (const auto& kv : op_table()) ops.push_back(kv.first);
  return ops;
}

std::shared_ptr<OnnxModel> load_onnx_from_memory(const void* data, size_t size, const std::string& name_for_errors,
                                                 const OnnxLoadOptions& options) {
  CheckedModel m = check_model(data, size, name_for_errors, options);
  return std::make_shared<OnnxModel>(compile(m, options));
}

namespace {
std::string read_file(const std::string& path, const OnnxLoadOptions& options) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw IOError(path + ": cannot open the file");
  const std::streamoff size = f.tellg();
  if (size < 0) throw IOError(path + ": cannot read the file's size");
  if (uint64_t(size) > options.max_file_bytes)
    throw IOError(path + ": " + std::to_string(size) + " bytes is over the limit of " + std::to_string(options.max_file_bytes) +
                  " bytes (OnnxLoadOptions::max_file_bytes)");
  std::string bytes(size_t(size), '\0');
  f.seekg(0);
  if (!f.read(bytes.data(), size)) throw IOError(path + ": the file could not be read to its end");
  return bytes;
}
}  // namespace

std::shared_ptr<OnnxModel> load_onnx(const std::string& path, const OnnxLoadOptions& options) {
  const std::string bytes = read_file(path, options);
  return load_onnx_from_memory(bytes.data(), bytes.size(), path, options);
}

OnnxFileSummary summarize_onnx_from_memory(const void* data, size_t size, const std::string& name_for_errors,
                                           const OnnxLoadOptions& options) {
  CheckedModel m = check_model(data, size, name_for_errors, options);
  const onnx::GraphProto& g = m.model.graph();
  OnnxFileSummary s;
  s.file = name_for_errors;
  s.ir_version = m.model.ir_version();
  s.opset = m.opset;
  s.producer = m.model.producer_name() + (m.model.producer_version().empty() ? "" : " " + m.model.producer_version());
  std::set<std::string> init_names;
  for (const auto& t : g.initializer()) init_names.insert(t.name());
  auto info = [](const onnx::ValueInfoProto& v) {
    OnnxValueInfo r;
    r.name = v.name();
    r.dtype = dtype_name(v.type().tensor_type().elem_type());
    r.dims = value_dims(v, &r.dim_names);
    return r;
  };
  for (const auto& in : g.input())
    if (!init_names.count(in.name())) s.inputs.push_back(info(in));
  for (const auto& out : g.output()) s.outputs.push_back(info(out));
  std::map<std::string, int64_t> counts;
  std::set<std::string> as_data, as_statistic;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    ++counts[node.op_type()];
    for (int k = 0; k < node.input_size(); ++k)
      (is_running_statistic_input(node.op_type(), size_t(k)) ? as_statistic : as_data).insert(node.input(k));
    std::string problem;
    const OpSpec* spec = find_spec(node, i, m.opset, problem);
    if (spec) {
      try {
        spec->prepare(node_info(node, i, m.opset), std::vector<const Value*>(size_t(node.input_size()), nullptr));
      } catch (const std::exception& e) {
        problem = node_label(node, i, m.opset) + ": " + e.what();
      }
    }
    if (!problem.empty()) s.unsupported.push_back(problem);
  }
  s.op_counts.assign(counts.begin(), counts.end());
  for (const auto& t : g.initializer()) {
    OnnxInitializerInfo r;
    r.name = t.name();
    r.dtype = dtype_name(t.data_type());
    r.dims.assign(t.dims().begin(), t.dims().end());
    const bool floating = t.data_type() == TensorProto::FLOAT || t.data_type() == TensorProto::DOUBLE;
    r.role = !floating ? "constant" : (as_statistic.count(t.name()) && !as_data.count(t.name())) ? "buffer" : "parameter";
    s.initializers.push_back(r);
  }
  return s;
}

OnnxFileSummary summarize_onnx(const std::string& path, const OnnxLoadOptions& options) {
  const std::string bytes = read_file(path, options);
  return summarize_onnx_from_memory(bytes.data(), bytes.size(), path, options);
}

}  // namespace advgrad
