#include "advgrad/onnx/op_table.h"

#include <algorithm>

#include <sstream>

namespace advgrad::onnx_import {

const OpTable& op_table() {
  static const OpTable table = [] {
    OpTable t;
    add_elementwise_ops(t);
    add_nn_ops(t);
    add_shape_ops(t);
    add_reduce_ops(t);
    add_recurrent_ops(t);
    return t;
  }();
  return table;
}

bool is_running_statistic_input(const std::string& op_type, size_t input_index) {
  return op_type == "BatchNormalization" && (input_index == 3 || input_index == 4);
}

namespace {
const Attribute* find_attr(const NodeInfo& node, const std::string& name, Attribute::Kind kind, const char* kind_name) {
  auto it = node.attributes.find(name);
  if (it == node.attributes.end()) return nullptr;
  if (it->second.kind != kind) throw NodeError("attribute '" + name + "' is not " + kind_name);
  return &it->second;
}
}  // namespace

bool has_attr(const NodeInfo& node, const std::string& name) { return node.attributes.count(name) != 0; }

int64_t attr_int(const NodeInfo& node, const std::string& name, int64_t fallback) {
  const Attribute* a = find_attr(node, name, Attribute::Kind::Int, "an int");
  return a ? a->i : fallback;
}

double attr_float(const NodeInfo& node, const std::string& name, double fallback) {
  const Attribute* a = find_attr(node, name, Attribute::Kind::Float, "a float");
  return a ? a->f : fallback;
}

std::string attr_string(const NodeInfo& node, const std::string& name, const std::string& fallback) {
  const Attribute* a = find_attr(node, name, Attribute::Kind::String, "a string");
  return a ? a->s : fallback;
}

std::vector<int64_t> attr_ints(const NodeInfo& node, const std::string& name, const std::vector<int64_t>& fallback) {
  const Attribute* a = find_attr(node, name, Attribute::Kind::Ints, "a list of ints");
  return a ? a->ints : fallback;
}

bool has_input(const std::vector<const Value*>& in, size_t i) { return i < in.size() && in[i] && in[i]->defined(); }

const Tensor& float_input(const std::vector<const Value*>& in, size_t i, const char* what) {
  if (!has_input(in, i)) throw NodeError(std::string("input ") + std::to_string(i) + " (" + what + ") is missing");
  if (in[i]->is_int) throw NodeError(std::string("input ") + std::to_string(i) + " (" + what + ") is integer, expected floating data");
  return in[i]->tensor;
}

const IntTensor& int_input(const std::vector<const Value*>& in, size_t i, const char* what) {
  if (!has_input(in, i)) throw NodeError(std::string("input ") + std::to_string(i) + " (" + what + ") is missing");
  if (!in[i]->is_int) throw NodeError(std::string("input ") + std::to_string(i) + " (" + what + ") is floating, expected integers");
  return in[i]->ints;
}

double scalar_input(const std::vector<const Value*>& in, size_t i, const char* what) {
  if (!has_input(in, i)) throw NodeError(std::string("input ") + std::to_string(i) + " (" + what + ") is missing");
  const Value& v = *in[i];
  const int64_t n = v.is_int ? v.ints.numel() : v.tensor.numel();
  if (n != 1) throw NodeError(std::string("input ") + std::to_string(i) + " (" + what + ") must hold one value, has " + std::to_string(n));
  return v.is_int ? double(v.ints.values[0]) : v.tensor.item();
}

Tensor ints_to_tensor(const IntTensor& t, DType dtype) {
  std::vector<double> values(t.values.begin(), t.values.end());
  return from_vector(values, Shape(t.dims.begin(), t.dims.end())).to(dtype);
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank)
    throw NodeError(std::string(what) + " " + std::to_string(axis) + " is outside [" + std::to_string(-rank) + ", " +
                    std::to_string(rank) + ") for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

std::string join(const std::vector<int64_t>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  os << "]";
  return os.str();
}

namespace {
thread_local int64_t created_limit_now = kMaxCreatedElements;
}

int64_t created_element_limit() { return created_limit_now; }
CreatedLimitScope::CreatedLimitScope(int64_t limit) : previous_(created_limit_now) {
  created_limit_now = std::max<int64_t>(1, std::min(limit, kMaxCreatedElements));
}
CreatedLimitScope::~CreatedLimitScope() { created_limit_now = previous_; }

void check_created(const Shape& shape, const char* what) {
  const int64_t kMaxCreatedElements = created_limit_now;  // the limit in force (this thread's scope)
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw NodeError(std::string(what) + " " + join(shape) + " has a negative dim");
    // One dim over the limit is refused even when another is 0: loops over the dims (outer/inner blocks)
    // would still run that many times on an empty tensor.
    if (d > kMaxCreatedElements)
      throw NodeError(std::string(what) + " " + join(shape) + " has a dim over the limit of " + std::to_string(kMaxCreatedElements));
    if (d != 0 && n > kMaxCreatedElements / d) n = kMaxCreatedElements + 1;
    else n *= d;
  }
  if (n > kMaxCreatedElements)
    throw NodeError(std::string(what) + " " + join(shape) + " is over the limit of " + std::to_string(kMaxCreatedElements) + " elements");
}

Kernel unary(std::function<Value(const std::vector<const Value*>&)> f) {
  return [f](const std::vector<const Value*>& in, RunContext&) { return std::vector<Value>{f(in)}; };
}

}  // namespace advgrad::onnx_import
