// Element-wise ONNX ops: arithmetic with NumPy broadcasting (on floating data, or on the integers of shape
// arithmetic), activations, Clip, Softmax/LogSoftmax, Cast, Identity, and Equal/Where for shape arithmetic.
#include <cmath>
#include <limits>

#include "advgrad/onnx/op_table.h"

namespace advgrad::onnx_import {
namespace {

// NumPy broadcasting for two integer tensors (shape arithmetic: usually scalars or short vectors).
IntTensor broadcast_ints(const IntTensor& a, const IntTensor& b, const std::function<int64_t(int64_t, int64_t)>& f) {
  const size_t rank = std::max(a.dims.size(), b.dims.size());
  std::vector<int64_t> da(rank, 1), db(rank, 1), out(rank);
  std::copy(a.dims.begin(), a.dims.end(), da.begin() + (rank - a.dims.size()));
  std::copy(b.dims.begin(), b.dims.end(), db.begin() + (rank - b.dims.size()));
  for (size_t i = 0; i < rank; ++i) {
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1)
      throw NodeError("integer operands " + join(a.dims) + " and " + join(b.dims) + " do not broadcast");
    out[i] = da[i] == 1 ? db[i] : da[i];
  }
  check_created(out, "integer result");
  IntTensor r;
  r.dims = out;
  int64_t n = 1;
  for (int64_t d : out) n *= d;
  r.values.resize(size_t(n));
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rest = flat, ia = 0, ib = 0, sa = 1, sb = 1;
    for (size_t k = rank; k-- > 0;) {
      const int64_t idx = rest % out[k];
      rest /= out[k];
      ia += (da[k] == 1 ? 0 : idx) * sa, sa *= da[k];
      ib += (db[k] == 1 ? 0 : idx) * sb, sb *= db[k];
    }
    r.values[size_t(flat)] = f(a.values[size_t(ia)], b.values[size_t(ib)]);
  }
  return r;
}

// Shape arithmetic on int64 from a hostile file: an overflow is an error, never a wrapped value (or SIGFPE).
int64_t checked(bool overflowed, int64_t value, const char* op) {
  if (overflowed) throw NodeError(std::string("integer ") + op + " overflows int64");
  return value;
}

// A floating view of either operand (the other decides the dtype when one side is integers).
Tensor as_float(const Value& v, DType dtype) { return v.is_int ? ints_to_tensor(v.ints, dtype) : v.tensor; }

OpSpec binary(std::function<Tensor(const Tensor&, const Tensor&)> on_floats,
              std::function<int64_t(int64_t, int64_t)> on_ints) {
  OpSpec spec;
  spec.prepare = [on_floats, on_ints](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([on_floats, on_ints](const std::vector<const Value*>& in) {
      if (!has_input(in, 0) || !has_input(in, 1)) throw NodeError("needs two inputs");
      const Value &a = *in[0], &b = *in[1];
      if (a.is_int && b.is_int) {
        if (!on_ints) throw NodeError("integer operands are not supported");
        return Value::of_ints(broadcast_ints(a.ints, b.ints, on_ints));
      }
      const DType dt = a.is_int ? b.tensor.dtype() : a.tensor.dtype();
      return Value::of(on_floats(as_float(a, dt), as_float(b, dt)));
    });
  };
  return spec;
}

OpSpec pointwise(std::function<Tensor(const Tensor&)> f) {
  OpSpec spec;
  spec.prepare = [f](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([f](const std::vector<const Value*>& in) { return Value::of(f(float_input(in, 0, "X"))); });
  };
  return spec;
}

// Softmax and LogSoftmax: opset 13 normalises along `axis` (default -1); opsets 11-12 flatten the input to
// 2-D at `axis` (default 1) and normalise each row.
OpSpec softmax_like(bool log) {
  OpSpec spec;
  spec.attributes = {"axis"};
  spec.prepare = [log](const NodeInfo& node, const std::vector<const Value*>&) {
    const bool coerce_2d = node.opset < 13;
    const int64_t axis = attr_int(node, "axis", coerce_2d ? 1 : -1);
    return unary([log, coerce_2d, axis](const std::vector<const Value*>& in) {
      const Tensor& x = float_input(in, 0, "input");
      const int64_t a = normalize_axis(axis, x.dim(), "axis");
      if (!coerce_2d) return Value::of(log ? log_softmax(x, a) : softmax(x, a));
      Tensor rows = flatten(flatten(x, a, -1), 0, a == 0 ? 0 : a - 1);
      if (a == 0) rows = unsqueeze(rows, 0);
      Tensor y = log ? log_softmax(rows, -1) : softmax(rows, -1);
      return Value::of(reshape(y, x.shape()));
    });
  };
  return spec;
}

// ONNX TensorProto data types Cast may target here.
enum OnnxType { kFloat = 1, kInt32 = 6, kInt64 = 7, kBool = 9, kDouble = 11 };

}  // namespace

void add_elementwise_ops(OpTable& t) {
  t["Add"] = binary([](const Tensor& a, const Tensor& b) { return a + b; },
                    [](int64_t a, int64_t b) {
                      int64_t r = 0;
                      const bool overflowed = __builtin_add_overflow(a, b, &r);
                      return checked(overflowed, r, "Add");
                    });
  t["Sub"] = binary([](const Tensor& a, const Tensor& b) { return a - b; },
                    [](int64_t a, int64_t b) {
                      int64_t r = 0;
                      const bool overflowed = __builtin_sub_overflow(a, b, &r);
                      return checked(overflowed, r, "Sub");
                    });
  t["Mul"] = binary([](const Tensor& a, const Tensor& b) { return a * b; },
                    [](int64_t a, int64_t b) {
                      int64_t r = 0;
                      const bool overflowed = __builtin_mul_overflow(a, b, &r);
                      return checked(overflowed, r, "Mul");
                    });
  t["Div"] = binary([](const Tensor& a, const Tensor& b) { return a / b; }, [](int64_t a, int64_t b) {
    if (b == 0) throw NodeError("integer division by zero");
    if (a == std::numeric_limits<int64_t>::min() && b == -1) throw NodeError("integer Div overflows int64");
    return a / b;  // ONNX integer Div truncates, as C++
  });
  t["Equal"] = binary([](const Tensor& a, const Tensor& b) { return eq(a, b); },
                      [](int64_t a, int64_t b) { return int64_t(a == b); });
  // Pow with a constant one-value exponent (x^2 of a norm) uses the scalar form: its gradient needs no log(x).
  t["Pow"].prepare = [](const NodeInfo&, const std::vector<const Value*>& constant) {
    const bool scalar_exponent = has_input(constant, 1) &&
                                 (constant[1]->is_int ? constant[1]->ints.numel() : constant[1]->tensor.numel()) == 1;
    const double e = scalar_exponent ? scalar_input(constant, 1, "Y") : 0.0;
    return unary([scalar_exponent, e](const std::vector<const Value*>& in) {
      const Tensor& x = float_input(in, 0, "X");
      if (scalar_exponent) return Value::of(pow(x, e));
      return Value::of(pow(x, as_float(*in.at(1), x.dtype())));
    });
  };

  t["Neg"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      if (has_input(in, 0) && in[0]->is_int) {
        IntTensor r = in[0]->ints;
        for (auto& v : r.values) {
          if (v == std::numeric_limits<int64_t>::min()) throw NodeError("integer Neg overflows int64");
          v = -v;
        }
        return Value::of_ints(r);
      }
      return Value::of(-float_input(in, 0, "X"));
    });
  };
  t["Sqrt"] = pointwise([](const Tensor& x) { return sqrt(x); });
  t["Exp"] = pointwise([](const Tensor& x) { return exp(x); });
  t["Log"] = pointwise([](const Tensor& x) { return log(x); });
  t["Relu"] = pointwise([](const Tensor& x) { return relu(x); });
  t["Sigmoid"] = pointwise([](const Tensor& x) { return sigmoid(x); });
  t["Tanh"] = pointwise([](const Tensor& x) { return tanh(x); });

  t["LeakyRelu"].attributes = {"alpha"};
  t["LeakyRelu"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const double alpha = attr_float(node, "alpha", 0.01);
    return unary([alpha](const std::vector<const Value*>& in) { return Value::of(leaky_relu(float_input(in, 0, "X"), alpha)); });
  };

  // Clip: min and max are optional inputs since opset 11 (attributes before); absent = unbounded.
  t["Clip"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      const double lo = has_input(in, 1) ? scalar_input(in, 1, "min") : -INFINITY;
      const double hi = has_input(in, 2) ? scalar_input(in, 2, "max") : INFINITY;
      return Value::of(clamp(float_input(in, 0, "input"), lo, hi));
    });
  };

  t["Softmax"] = softmax_like(false);
  t["LogSoftmax"] = softmax_like(true);

  t["Identity"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      return *in[0];
    });
  };

  // Cast between the kinds of value advgrad keeps: floating (float32/float64) and integers (int32/int64/bool).
  t["Cast"].attributes = {"to"};
  t["Cast"].prepare = [](const NodeInfo& node, const std::vector<const Value*>&) {
    const int64_t to = attr_int(node, "to", -1);
    if (to != kFloat && to != kDouble && to != kInt32 && to != kInt64 && to != kBool)
      throw NodeError("attribute 'to' = " + std::to_string(to) +
                      " is not supported (float 1, int32 6, int64 7, bool 9, double 11)");
    const bool to_float = to == kFloat || to == kDouble;
    return unary([to, to_float](const std::vector<const Value*>& in) {
      if (!has_input(in, 0)) throw NodeError("input 0 is missing");
      const Value& v = *in[0];
      if (v.is_int) {
        if (to_float) return Value::of(ints_to_tensor(v.ints, to == kDouble ? DType::F64 : DType::F32));
        IntTensor r = v.ints;
        if (to == kBool)
          for (auto& x : r.values) x = x != 0;
        return Value::of_ints(r);
      }
      if (to_float) return Value::of(v.tensor.to(to == kDouble ? DType::F64 : DType::F32));
      throw NodeError("a cast of floating data to integers is not supported (it would cut the gradient)");
    });
  };

  // Where(cond, a, b) on integers (PyTorch's Expand shape arithmetic), or floating a/b with a condition.
  t["Where"].prepare = [](const NodeInfo&, const std::vector<const Value*>&) {
    return unary([](const std::vector<const Value*>& in) {
      const IntTensor& cond = int_input(in, 0, "condition");
      if (!has_input(in, 1) || !has_input(in, 2)) throw NodeError("needs three inputs");
      if (in[1]->is_int && in[2]->is_int) {
        IntTensor ab = broadcast_ints(in[1]->ints, in[2]->ints, [](int64_t a, int64_t) { return a; });
        IntTensor pick_a = broadcast_ints(cond, ab, [](int64_t c, int64_t) { return c; });
        IntTensor a = broadcast_ints(pick_a, in[1]->ints, [](int64_t, int64_t a) { return a; });
        IntTensor b = broadcast_ints(pick_a, in[2]->ints, [](int64_t, int64_t b) { return b; });
        for (size_t i = 0; i < a.values.size(); ++i) a.values[i] = pick_a.values[i] ? a.values[i] : b.values[i];
        return Value::of_ints(a);
      }
      const DType dt = in[1]->is_int ? in[2]->tensor.dtype() : in[1]->tensor.dtype();
      return Value::of(where(ints_to_tensor(cond, dt), as_float(*in[1], dt), as_float(*in[2], dt)));
    });
  };
}

}  // namespace advgrad::onnx_import
