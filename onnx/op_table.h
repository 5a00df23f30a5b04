// The op table: ONNX op type -> the opsets, attributes and kernel advgrad runs it with. Internal to
// onnx/ (load_onnx.cpp fills NodeInfo from the protobuf; no protobuf type appears here). The ops are
// split by family: ops_elementwise.cpp, ops_nn.cpp (conv, pool, batchnorm, dropout), ops_shape.cpp
// (reshape, transpose, slice, gather, concat, squeeze/unsqueeze, shape arithmetic), ops_reduce.cpp,
// ops_recurrent.cpp. To add an op: write its prepare function in the family's file and add one OpSpec.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/autograd/ops.h"
#include "advgrad/core/generator.h"

namespace advgrad::onnx_import {

// Integers of shape arithmetic (shapes, axes, indices; int32/int64/bool initializers and PyTorch's
// Shape -> Gather -> Concat chains) kept on the host: they steer the graph and never need a gradient.
struct IntTensor {
  std::vector<int64_t> dims;
  std::vector<int64_t> values;  // row-major
  int64_t numel() const { return int64_t(values.size()); }
};

// A value flowing through the graph: floating data (a differentiable Tensor) or integers.
struct Value {
  Tensor tensor;  // defined for floating values
  bool is_int = false;
  IntTensor ints;
  bool defined() const { return is_int || tensor.defined(); }
  static Value of(Tensor t) { Value v; v.tensor = std::move(t); return v; }
  static Value of_ints(IntTensor t) { Value v; v.is_int = true; v.ints = std::move(t); return v; }
};

// A node attribute, converted from protobuf at load.
struct Attribute {
  enum class Kind { Int, Float, String, Ints, Floats, Strings, Tensor, Other } kind = Kind::Other;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  Value tensor;
};

struct NodeInfo {
  std::string name, op_type;
  int64_t opset = 0;
  std::map<std::string, Attribute> attributes;
  std::vector<std::string> inputs, outputs;  // "" = an optional input or output left out
};

// What a kernel may use besides its inputs.
struct RunContext {
  bool training = false;
  Generator* dropout_generator = nullptr;
};

// Runs one node: its inputs (nullptr = left out) -> its outputs (one per NodeInfo::outputs).
using Kernel = std::function<std::vector<Value>(const std::vector<const Value*>& inputs, RunContext& ctx)>;

// Thrown by a prepare function or a kernel; the loader prefixes "<file>: node 'NAME' (op TYPE, opset K): ".
struct NodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct OpSpec {
  int64_t min_opset = 11, max_opset = 17;  // of the default ONNX domain
  std::vector<std::string> attributes;      // accepted names; any other is refused
  // Checks the node's attributes and static inputs (constant_inputs[i] non-null when known at load,
  // e.g. an initializer) and returns the kernel; throws NodeError naming the attribute and value.
  std::function<Kernel(const NodeInfo& node, const std::vector<const Value*>& constant_inputs)> prepare;
  bool foldable = true;  // may run at load when every input is a constant (false: Dropout, random ops)
};

using OpTable = std::map<std::string, OpSpec>;
const OpTable& op_table();
void add_elementwise_ops(OpTable& table);
void add_nn_ops(OpTable& table);
void add_shape_ops(OpTable& table);
void add_reduce_ops(OpTable& table);
void add_recurrent_ops(OpTable& table);

// The index of a BatchNormalization input that is a running statistic (mean 3, var 4): buffers, not parameters.
bool is_running_statistic_input(const std::string& op_type, size_t input_index);

// ---- helpers for the prepare functions and kernels ----
int64_t attr_int(const NodeInfo& node, const std::string& name, int64_t fallback);
double attr_float(const NodeInfo& node, const std::string& name, double fallback);
std::string attr_string(const NodeInfo& node, const std::string& name, const std::string& fallback);
std::vector<int64_t> attr_ints(const NodeInfo& node, const std::string& name, const std::vector<int64_t>& fallback);
bool has_attr(const NodeInfo& node, const std::string& name);

// Input i as floating data / as integers; NodeError if absent or of the other kind. "what" names it.
const Tensor& float_input(const std::vector<const Value*>& in, size_t i, const char* what);
const IntTensor& int_input(const std::vector<const Value*>& in, size_t i, const char* what);
bool has_input(const std::vector<const Value*>& in, size_t i);
// A scalar (one element) int/float input, e.g. Clip's min, Dropout's ratio.
double scalar_input(const std::vector<const Value*>& in, size_t i, const char* what);
// Integers as a floating tensor of `dtype` (e.g. Cast of shape arithmetic to float), and back (only
// for values known at load, e.g. a float Constant used as a shape).
Tensor ints_to_tensor(const IntTensor& t, DType dtype);
// A negative axis counts from the end; NodeError when outside [-rank, rank).
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what);
std::string join(const std::vector<int64_t>& v);

// Ops that make a tensor from a shape held in the file (ConstantOfShape, Expand, Range, Pad) refuse
// more elements than this (1 GiB of float32): a hostile shape must not fill memory.
constexpr int64_t kMaxCreatedElements = int64_t(1) << 28;
// Refuses a shape with a dim, or an element count, over the current thread's creation limit: at most
// kMaxCreatedElements, lowered to the model's OnnxLoadOptions::max_tensor_bytes / 4 while it loads and runs
// (CreatedLimitScope), so a file cannot build tensors beyond the budget it was given.
void check_created(const Shape& shape, const char* what);
int64_t created_element_limit();
class CreatedLimitScope {
 public:
  explicit CreatedLimitScope(int64_t limit);
  ~CreatedLimitScope();
  CreatedLimitScope(const CreatedLimitScope&) = delete;
  CreatedLimitScope& operator=(const CreatedLimitScope&) = delete;

 private:
  int64_t previous_;
};

// Kernels with one output.
Kernel unary(std::function<Value(const std::vector<const Value*>&)> f);

// ---- the graph as load_onnx compiles it (OnnxModel runs it) ----
struct CompiledNode {
  NodeInfo info;
  Kernel kernel;
  std::vector<int> inputs, outputs;  // slot indices; -1 = left out
};
struct CompiledGraph {
  std::string file;  // for messages: "model.onnx"
  int64_t opset = 0;
  std::string input_name, output_name;
  std::vector<int64_t> input_dims;
  std::vector<Value> slots;  // one per value name: constants filled at load, the rest per forward
  std::vector<std::string> slot_names;
  int input_slot = -1, output_slot = -1;
  std::vector<CompiledNode> nodes;    // topological order (folded nodes removed)
  std::vector<int> last_use;          // per slot: the node after which a computed value can be dropped
  std::vector<std::pair<std::string, int64_t>> op_counts;  // of the file, before folding
  std::vector<std::pair<std::string, int>> parameters, buffers;  // initializer name -> slot
  std::string model_without_weights;
  int64_t file_nodes = 0;
  // From OnnxLoadOptions::max_tensor_bytes: the most elements one op may create, and the most bytes the
  // values of one forward may hold at once (checked after each node).
  int64_t created_limit = kMaxCreatedElements;
  uint64_t max_live_bytes = uint64_t(1) << 30;
};

}  // namespace advgrad::onnx_import
