// Matrix products: every one is a Backend::gemm, forward and backward (transposes are gemm flags, not copies).
#include "advgrad/autograd/ops_util.h"

namespace advgrad {

using namespace detail;

namespace {

// op(a) x op(b) over broadcast batch dims, with op = transpose of the last two dims when the flag is set.
// No graph. A batch of one matrix is passed with batch stride 0 instead of being copied.
Tensor batched_gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, const char* op) {
  check_compatible(a, b, op);
  check_floating(a, op);
  if (a.dim() < 2 || b.dim() < 2)
    throw ShapeError(std::string(op) + ": " + shape_str(a.shape()) + " x " + shape_str(b.shape()) +
                     ": both inputs need at least 2 dims");
  int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  int64_t M = ta ? ac : ar, K = ta ? ar : ac, Kb = tb ? bc : br, N = tb ? br : bc;
  if (K != Kb)
    throw ShapeError(std::string(op) + ": " + shape_str(a.shape()) + " x " + shape_str(b.shape()) +
                     ": inner dims differ");
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, op);
  auto prepare = [&](const Tensor& t, const Shape& own_batch, int64_t& stride) {
    if (shape_numel(own_batch) == 1) {
      stride = 0;
      return t.dense();
    }
    Shape full = batch;
    full.push_back(t.size(-2));
    full.push_back(t.size(-1));
    stride = t.size(-2) * t.size(-1);
    return broadcast_view(t, full, op).dense();
  };
  int64_t sa, sb;
  Tensor A = prepare(a, batch_a, sa), B = prepare(b, batch_b, sb);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor C = empty_like_shape(out_shape, a);
  backend_of(a).gemm(ta, tb, shape_numel(batch), M, N, K, 1.0, A, sa, B, sb, 0.0, C, M * N);
  return C;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = batched_gemm(a, false, b, false, "matmul");
  if (Tracer* t = active_tracer()) t->record({"matmul", {a, b}, {out}, {}});
  if (!should_record({a, b})) return out;
  SavedTensor sa(a, "matmul"), sb(b, "matmul");
  return record("matmul", {a, b}, out, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
    Tensor av = sa.unpack(), bv = sb.unpack();
    Tensor ga, gb;
    if (need[0]) ga = sum_to(batched_gemm(g, false, bv, true, "matmul backward"), av.shape());  // g b^T
    if (need[1]) gb = sum_to(batched_gemm(av, true, g, false, "matmul backward"), bv.shape());  // a^T g
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_compatible(x, weight, "linear");
  check_floating(x, "linear");
  if (weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1))
    throw ShapeError("linear: input " + shape_str(x.shape()) + " and weight " + shape_str(weight.shape()) +
                     ": need weight [out, in] with in = the input's last dim");
  int64_t in = weight.size(1), out_f = weight.size(0), rows = x.numel() / std::max<int64_t>(in, 1);
  if (bias.defined()) {
    check_compatible(x, bias, "linear");
    if (bias.shape() != Shape{out_f})
      throw ShapeError("linear: bias " + shape_str(bias.shape()) + " for weight " + shape_str(weight.shape()));
  }
  Tensor X = x.dense(), W = weight.dense();
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor Y = empty_like_shape(out_shape, x);
  Backend& be = backend_of(x);
  be.gemm(false, true, 1, rows, out_f, in, 1.0, X, 0, W, 0, 0.0, Y, 0);  // Y = X W^T
  if (bias.defined()) be.binary(BinaryOp::Add, Y, broadcast_view(bias, out_shape, "linear"), Y);
  if (Tracer* t = active_tracer()) t->record({"linear", {x, weight, bias}, {Y}, {}});
  if (!should_record({x, weight, bias})) return Y;
  SavedTensor sx(X, "linear"), sw(W, "linear");
  Shape xs = x.shape();
  return record("linear", {x, weight, bias}, Y,
                [sx, sw, xs, rows, in, out_f](const Tensor& g, const std::vector<bool>& need) {
                  Tensor G = g.dense(), Xv = sx.unpack(), Wv = sw.unpack();
                  Backend& be = backend_of(G);
                  Tensor gx, gw, gb;
                  if (need[0]) {  // dX = dY W
                    gx = empty_like_shape(xs, G);
                    be.gemm(false, false, 1, rows, in, out_f, 1.0, G, 0, Wv, 0, 0.0, gx, 0);
                  }
                  if (need[1]) {  // dW = dY^T X
                    gw = empty_like_shape({out_f, in}, G);
                    be.gemm(true, false, 1, out_f, in, rows, 1.0, G, 0, Xv, 0, 0.0, gw, 0);
                  }
                  if (need.size() > 2 && need[2]) gb = reshape(sum(reshape(G, {rows, out_f}), {0}), {out_f});
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

}  // namespace advgrad
