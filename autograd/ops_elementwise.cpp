// Element-wise ops: forward through Backend::unary/binary/where, backward written with other ops.
#include <cmath>

#include "advgrad/autograd/ops_util.h"

namespace advgrad {

using namespace detail;

namespace {

// Runs a binary kernel on a and b broadcast to their common shape (no graph).
Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_compatible(a, b, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty_like_shape(shape, a);
  backend_of(a).binary(op, broadcast_view(a, shape, name), broadcast_view(b, shape, name), out);
  return out;
}

Tensor unary_forward(UnaryOp op, const Tensor& x, const char* name, double p = 0, double q = 0) {
  check_defined(x, name, "input");
  check_floating(x, name);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).unary(op, x, out, p, q);
  return out;
}

Tensor scalar_like(double v, const Tensor& like) { return scalar_tensor(v, like.dtype(), like.device()); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Add, a, b, "add");
  if (Tracer* t = active_tracer()) t->record({"add", {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  Shape sa = a.shape(), sb = b.shape();
  return record("add", {a, b}, out, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(g, sb) : Tensor()};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Sub, a, b, "sub");
  if (Tracer* t = active_tracer()) t->record({"sub", {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  Shape sa = a.shape(), sb = b.shape();
  return record("sub", {a, b}, out, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Mul, a, b, "mul");
  if (Tracer* t = active_tracer()) t->record({"mul", {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  SavedTensor sa(a, "mul"), sb(b, "mul");
  return record("mul", {a, b}, out, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    Tensor av = sa.unpack(), bv = sb.unpack();
    return std::vector<Tensor>{need[0] ? sum_to(mul(g, bv), av.shape()) : Tensor(),
                               need[1] ? sum_to(mul(g, av), bv.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Div, a, b, "div");
  if (Tracer* t = active_tracer()) t->record({"div", {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  SavedTensor sa(a, "div"), sb(b, "div");
  return record("div", {a, b}, out, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    Tensor av = sa.unpack(), bv = sb.unpack();
    Tensor ga, gb;
    if (need[0]) ga = sum_to(div(g, bv), av.shape());
    if (need[1]) gb = sum_to(neg(div(mul(g, av), square(bv))), bv.shape());
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  check_floating(a, "pow");
  Tensor out = binary_forward(BinaryOp::Pow, a, b, "pow");
  if (Tracer* t = active_tracer()) t->record({"pow", {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  SavedTensor sa(a, "pow"), sb(b, "pow"), so(out, "pow");
  return record("pow", {a, b}, out, [sa, sb, so](const Tensor& g, const std::vector<bool>& need) {
    Tensor av = sa.unpack(), bv = sb.unpack();
    Tensor ga, gb;
    if (need[0]) ga = sum_to(mul(g, mul(bv, pow(av, sub(bv, 1.0)))), av.shape());
    if (need[1]) {
      // d/db a^b = a^b log a; defined as 0 where a == 0 (the limit for b > 0), as PyTorch does.
      Tensor zero = zeros({}, av.dtype(), av.device());
      Tensor dlog = where(eq(av, zero), zero, mul(so.unpack(), log(av)));
      gb = sum_to(mul(g, dlog), bv.shape());
    }
    return std::vector<Tensor>{ga, gb};
  });
}

namespace {
// minimum/maximum: the gradient goes to the selected input; on ties each gets half.
Tensor min_max(const Tensor& a, const Tensor& b, bool is_max) {
  const char* name = is_max ? "maximum" : "minimum";
  check_floating(a, name);
  Tensor out = binary_forward(is_max ? BinaryOp::Maximum : BinaryOp::Minimum, a, b, name);
  if (Tracer* t = active_tracer()) t->record({name, {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  SavedTensor sa(a, name), sb(b, name);
  return record(name, {a, b}, out, [sa, sb, is_max](const Tensor& g, const std::vector<bool>& need) {
    Tensor av = sa.unpack(), bv = sb.unpack();
    Tensor wins_a = is_max ? gt(av, bv) : lt(av, bv);
    Tensor share_a = add(wins_a, mul(eq(av, bv), 0.5));  // 1 where a wins, 0.5 on ties, 0 where b wins
    Tensor ga, gb;
    if (need[0]) ga = sum_to(mul(g, share_a), av.shape());
    if (need[1]) gb = sum_to(mul(g, rsub(1.0, share_a)), bv.shape());
    return std::vector<Tensor>{ga, gb};
  });
}
}  // namespace
Tensor minimum(const Tensor& a, const Tensor& b) { return min_max(a, b, false); }
Tensor maximum(const Tensor& a, const Tensor& b) { return min_max(a, b, true); }

Tensor add(const Tensor& a, double s) { return add(a, scalar_like(s, a)); }
Tensor sub(const Tensor& a, double s) { return sub(a, scalar_like(s, a)); }
Tensor rsub(double s, const Tensor& a) { return sub(scalar_like(s, a), a); }
Tensor mul(const Tensor& a, double s) { return mul(a, scalar_like(s, a)); }
Tensor div(const Tensor& a, double s) { return div(a, scalar_like(s, a)); }

Tensor pow(const Tensor& a, double e) {
  Tensor out = unary_forward(UnaryOp::PowScalar, a, "pow", e);
  if (Tracer* t = active_tracer()) t->record({"pow_scalar", {a}, {out}, {real("exponent", e)}});
  if (!should_record({a})) return out;
  SavedTensor sa(a, "pow");
  return record("pow", {a}, out, [sa, e](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, mul(pow(sa.unpack(), e - 1.0), e))};
  });
}

Tensor neg(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Neg, x, "neg");
  if (Tracer* t = active_tracer()) t->record({"neg", {x}, {out}, {}});
  if (!should_record({x})) return out;
  return record("neg", {x}, out, [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{neg(g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Exp, x, "exp");
  if (Tracer* t = active_tracer()) t->record({"exp", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "exp");
  return record("exp", {x}, out, [so](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, so.unpack())};
  });
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Log, x, "log");
  if (Tracer* t = active_tracer()) t->record({"log", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor sx(x, "log");
  return record("log", {x}, out, [sx](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{div(g, sx.unpack())};
  });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Sqrt, x, "sqrt");
  if (Tracer* t = active_tracer()) t->record({"sqrt", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "sqrt");
  return record("sqrt", {x}, out, [so](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{div(g, mul(so.unpack(), 2.0))};
  });
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Abs, x, "abs");
  if (Tracer* t = active_tracer()) t->record({"abs", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor sx(x, "abs");
  return record("abs", {x}, out, [sx](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, sign(sx.unpack()))};
  });
}

Tensor square(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Square, x, "square");
  if (Tracer* t = active_tracer()) t->record({"square", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor sx(x, "square");
  return record("square", {x}, out, [sx](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, mul(sx.unpack(), 2.0))};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Tanh, x, "tanh");
  if (Tracer* t = active_tracer()) t->record({"tanh", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "tanh");
  return record("tanh", {x}, out, [so](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, rsub(1.0, square(so.unpack())))};
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Sigmoid, x, "sigmoid");
  if (Tracer* t = active_tracer()) t->record({"sigmoid", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "sigmoid");
  return record("sigmoid", {x}, out, [so](const Tensor& g, const std::vector<bool>&) {
    Tensor y = so.unpack();
    return std::vector<Tensor>{mul(g, mul(y, rsub(1.0, y)))};
  });
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Relu, x, "relu");
  if (Tracer* t = active_tracer()) t->record({"relu", {x}, {out}, {}});
  if (!should_record({x})) return out;
  SavedTensor so(out, "relu");
  return record("relu", {x}, out, [so](const Tensor& g, const std::vector<bool>&) {
    // One pass: 0 where the output is <= 0, g elsewhere (also where it is NaN: PyTorch's threshold_backward).
    return std::vector<Tensor>{binary_forward(BinaryOp::PassPositive, g, so.unpack(), "relu backward")};
  });
}

Tensor leaky_relu(const Tensor& x, double slope) {
  Tensor out = unary_forward(UnaryOp::LeakyRelu, x, "leaky_relu", slope);
  if (Tracer* t = active_tracer()) t->record({"leaky_relu", {x}, {out}, {real("negative_slope", slope)}});
  if (!should_record({x})) return out;
  SavedTensor sx(x, "leaky_relu");
  return record("leaky_relu", {x}, out, [sx, slope](const Tensor& g, const std::vector<bool>&) {
    Tensor xv = sx.unpack();
    Tensor positive = gt(xv, zeros({}, xv.dtype(), xv.device()));
    return std::vector<Tensor>{mul(g, add(mul(positive, 1.0 - slope), slope))};  // 1 where x > 0, else slope
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  if (lo > hi) throw ValueError("clamp: lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
  Tensor out = unary_forward(UnaryOp::Clamp, x, "clamp", lo, hi);
  if (Tracer* t = active_tracer()) t->record({"clamp", {x}, {out}, {real("min", lo), real("max", hi)}});
  if (!should_record({x})) return out;
  SavedTensor sx(x, "clamp");
  return record("clamp", {x}, out, [sx, lo, hi](const Tensor& g, const std::vector<bool>&) {
    Tensor xv = sx.unpack();
    Tensor inside = mul(ge(xv, scalar_like(lo, xv)), le(xv, scalar_like(hi, xv)));
    return std::vector<Tensor>{mul(g, inside)};
  });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_compatible(a, b, "where");
  check_compatible(cond, a, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty_like_shape(shape, a);
  backend_of(a).where(broadcast_view(cond, shape, "where"), broadcast_view(a, shape, "where"),
                      broadcast_view(b, shape, "where"), out);
  if (Tracer* t = active_tracer()) t->record({"where", {cond, a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  SavedTensor sc(cond, "where");
  Shape sa = a.shape(), sb = b.shape();
  return record("where", {a, b}, out, [sc, sa, sb](const Tensor& g, const std::vector<bool>& need) {
    Tensor c = sc.unpack();
    Tensor zero = zeros({}, g.dtype(), g.device());
    return std::vector<Tensor>{need[0] ? sum_to(where(c, g, zero), sa) : Tensor(),
                               need[1] ? sum_to(where(c, zero, g), sb) : Tensor()};
  });
}

// ---- not differentiable ----
namespace {
// Not differentiable, but traced: an exporter must see them (or refuse them) rather than bake them in.
Tensor traced(const char* name, Tensor out, const std::vector<Tensor>& inputs) {
  if (Tracer* t = active_tracer()) t->record({name, inputs, {out}, {}});
  return out;
}
}  // namespace
Tensor sign(const Tensor& x) { return traced("sign", unary_forward(UnaryOp::Sign, x, "sign"), {x}); }
Tensor eq(const Tensor& a, const Tensor& b) { return traced("eq", binary_forward(BinaryOp::Eq, a, b, "eq"), {a, b}); }
Tensor ne(const Tensor& a, const Tensor& b) { return traced("ne", binary_forward(BinaryOp::Ne, a, b, "ne"), {a, b}); }
Tensor lt(const Tensor& a, const Tensor& b) { return traced("lt", binary_forward(BinaryOp::Lt, a, b, "lt"), {a, b}); }
Tensor le(const Tensor& a, const Tensor& b) { return traced("le", binary_forward(BinaryOp::Le, a, b, "le"), {a, b}); }
Tensor gt(const Tensor& a, const Tensor& b) { return traced("gt", binary_forward(BinaryOp::Gt, a, b, "gt"), {a, b}); }
Tensor ge(const Tensor& a, const Tensor& b) { return traced("ge", binary_forward(BinaryOp::Ge, a, b, "ge"), {a, b}); }

}  // namespace advgrad
