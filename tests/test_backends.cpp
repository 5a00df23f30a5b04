// Backend tests.
//  1. Hand-computed cases for the reference backend alone, so that both backends being wrong the same
//     way still fails.
//  2. Agreement: every Backend entry point runs on reference_backend() and cpu_backend() with the same
//     inputs (edge cases included: size-1 dims, odd sizes, broadcast and permuted views, padding at
//     borders, stride and dilation > 1); float32 must agree to 1e-5, float64 to 1e-12, int64 exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "advgrad/core/backend.h"
#include "advgrad/core/backends/conv_gemm_kernel.h"
#include "advgrad/core/parallel.h"
#include "advgrad/core/tensor.h"

using namespace advgrad;

namespace {

const DType kFloatTypes[] = {DType::F32, DType::F64};
const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string dname(DType t) { return dtype_name(t); }

Backend& backend(int k) { return k == 0 ? reference_backend() : cpu_backend(); }

// The same tensor on both backends: [0] on Device::Reference, [1] a copy of its bytes on Device::CPU.
struct Pair {
  Tensor t[2];
  Tensor& operator[](int k) { return t[k]; }
  const Tensor& operator[](int k) const { return t[k]; }
};
Pair both(const Tensor& ref) { return Pair{{ref, ref.to(Device::CPU)}}; }
// The same strided view of both copies (a fresh tensor's storage starts at its element 0).
Pair view(const Pair& p, const Shape& shape, const Shape& strides, int64_t offset) {
  return Pair{{p[0].as_strided(shape, strides, offset), p[1].as_strided(shape, strides, offset)}};
}
// An output buffer pre-filled with a sentinel (NaN, or -777 for int64) so unwritten elements show.
Pair out_buffer(const Shape& shape, DType dt) {
  return both(full(shape, dt == DType::I64 ? -777.0 : kNaN, dt, Device::Reference));
}
Pair uniform_pair(const Shape& shape, double lo, double hi, Generator& g, DType dt) {
  return both(uniform(shape, lo, hi, g, dt, Device::Reference));
}
// Small integers in [lo, hi) in dtype dt: lots of exact ties (for max/argmax and comparisons).
Pair int_pair(const Shape& shape, int64_t lo, int64_t hi, Generator& g, DType dt) {
  return both(randint(lo, hi, shape, g, Device::Reference).to(dt));
}

// Compares the two dense tensors of p element by element. Equal NaNs agree (sentinels, log(-1), ...).
void expect_agree(const Pair& p, const std::string& what) {
  INFO(what << " " << p[0].describe());
  REQUIRE(p[0].shape() == p[1].shape());
  REQUIRE(p[0].dtype() == p[1].dtype());
  REQUIRE(p[0].is_contiguous());
  REQUIRE(p[1].is_contiguous());
  if (p[0].dtype() == DType::I64) {
    CHECK(p[0].to_vector<int64_t>() == p[1].to_vector<int64_t>());
    return;
  }
  const double tol = p[0].dtype() == DType::F32 ? 1e-5 : 1e-12;
  auto r = p[0].to_vector<double>(), c = p[1].to_vector<double>();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < r.size(); ++i) {
    bool ok = r[i] == c[i] || (std::isnan(r[i]) && std::isnan(c[i])) || std::fabs(r[i] - c[i]) <= tol + tol * std::fabs(r[i]);
    if (!ok && bad++ == 0) first = int64_t(i);
  }
  std::ostringstream msg;
  msg.precision(17);
  if (bad) msg << bad << " mismatches, first at flat " << first << ": reference " << r[size_t(first)] << " cpu " << c[size_t(first)];
  CHECK_MESSAGE(bad == 0, msg.str());
}

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// Geometries with padding at borders, stride > 1, dilation > 1, odd and size-1 dims. Every window
// holds at least one real pixel (so pooling is well defined, as PyTorch requires).
std::vector<Conv2dGeometry> geometries() {
  //        batch ch  h   w  kh kw sh sw ph pw dh dw
  return {{2, 3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1},    // "same" padding
          {1, 2, 7, 13, 2, 2, 2, 2, 0, 0, 1, 1},   // stride 2, last column dropped
          {2, 1, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1},    // stride and padding at borders
          {1, 2, 7, 7, 3, 3, 1, 1, 2, 2, 2, 2},    // dilation 2
          {3, 1, 5, 6, 2, 3, 2, 1, 1, 1, 1, 2},    // non-square kernel, mixed stride/dilation
          {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},    // everything size 1
          {2, 2, 4, 5, 4, 5, 1, 1, 0, 0, 1, 1},    // kernel covers the image: 1x1 output
          {1, 3, 6, 6, 1, 1, 3, 3, 0, 0, 1, 1},    // 1x1 kernel, stride 3
          {2, 3, 9, 10, 2, 2, 2, 2, 0, 0, 1, 1},   // the 2x2/2 pooling fast path, odd height (4-wide blocks)
          {2, 2, 6, 21, 2, 2, 2, 2, 0, 0, 1, 1},   // 2x2/2 with 10 outputs a row (8-wide blocks, overlap)
          {1, 2, 4, 7, 2, 2, 2, 2, 0, 0, 1, 1},    // 2x2/2 with 3 outputs a row (one at a time)
          {2, 2, 8, 9, 5, 5, 1, 1, 2, 2, 1, 1}};   // 5x5 "same" (the zoo CNNs' convolutions)
}
std::string geom_str(const Conv2dGeometry& g) {
  std::ostringstream s;
  s << "geometry b" << g.batch << " c" << g.channels << " " << g.height << "x" << g.width << " k" << g.kernel_h << "x"
    << g.kernel_w << " s" << g.stride_h << "," << g.stride_w << " p" << g.pad_h << "," << g.pad_w << " d"
    << g.dilation_h << "," << g.dilation_w;
  return s.str();
}
Shape input_shape(const Conv2dGeometry& g) { return {g.batch, g.channels, g.height, g.width}; }
Shape pooled_shape(const Conv2dGeometry& g) { return {g.batch, g.channels, g.out_h(), g.out_w()}; }
Shape cols_shape(const Conv2dGeometry& g) {
  return {g.batch, g.channels * g.kernel_h * g.kernel_w, g.out_h() * g.out_w()};
}

Tensor ref_f64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, Device::Reference); }

}  // namespace

// ======================================================================================================
// 1. The reference backend against hand-computed results.
// ======================================================================================================

TEST_CASE("reference: strided views are read and written through their strides") {
  Backend& be = reference_backend();
  Tensor base = ref_f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor transposed = base.as_strided({3, 2}, {1, 3}, 0);
  Tensor out = Tensor::empty({3, 2}, DType::F64, Device::Reference);
  be.copy(transposed, out);
  CHECK(values(out) == std::vector<double>{1, 4, 2, 5, 3, 6});

  Tensor row = base.as_strided({2, 3}, {0, 1}, 3);  // row 1 broadcast over 2 rows
  Tensor out_view = out.as_strided({2, 3}, {3, 1}, 0);
  be.copy(row, out_view);
  CHECK(values(out) == std::vector<double>{4, 5, 6, 4, 5, 6});

  Tensor col = base.as_strided({2}, {3}, 1);  // column 1: 2, 5
  be.fill(col, -1);
  CHECK(values(base) == std::vector<double>{1, -1, 3, 4, -1, 6});

  Tensor ints = Tensor::empty({3}, DType::I64, Device::Reference);
  be.copy(ref_f64({-1.7, 0.5, 2.9}, {3}), ints);
  CHECK(ints.to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 2});  // truncation toward zero
}

TEST_CASE("reference: unary and binary maps") {
  Backend& be = reference_backend();
  Tensor x = ref_f64({-2, 0, 3}, {3});
  Tensor y = Tensor::empty({3}, DType::F64, Device::Reference);
  auto run = [&](UnaryOp op, double a = 0, double b = 0) {
    be.unary(op, x, y, a, b);
    return values(y);
  };
  CHECK(run(UnaryOp::Sign) == std::vector<double>{-1, 0, 1});
  CHECK(run(UnaryOp::Relu) == std::vector<double>{0, 0, 3});
  CHECK(run(UnaryOp::LeakyRelu, 0.5) == std::vector<double>{-1, 0, 3});
  CHECK(run(UnaryOp::Clamp, -1, 1) == std::vector<double>{-1, 0, 1});
  CHECK(run(UnaryOp::Affine, 2, 1) == std::vector<double>{-3, 1, 7});
  CHECK(run(UnaryOp::Square) == std::vector<double>{4, 0, 9});
  CHECK(run(UnaryOp::PowScalar, 3) == std::vector<double>{-8, 0, 27});

  // Sigmoid is finite and exact at the extremes (no exp overflow), 0.5 at 0.
  Tensor big = ref_f64({-1000, 0, 1000}, {3});
  be.unary(UnaryOp::Sigmoid, big, y);
  CHECK(values(y) == std::vector<double>{0, 0.5, 1});
  Tensor bigf = from_vector(std::vector<float>{-200.f, -90.f, 90.f}, {3}, Device::Reference);
  be.unary(UnaryOp::Sigmoid, bigf, bigf);  // in place
  CHECK(all_finite(bigf));
  CHECK(bigf.at({2}) == 1.0);

  Tensor a = ref_f64({1, 2, 3}, {3}), b = ref_f64({3, 2, 1}, {3});
  auto bin = [&](BinaryOp op) {
    be.binary(op, a, b, y);
    return values(y);
  };
  CHECK(bin(BinaryOp::Sub) == std::vector<double>{-2, 0, 2});
  CHECK(bin(BinaryOp::Pow) == std::vector<double>{1, 4, 3});
  CHECK(bin(BinaryOp::Minimum) == std::vector<double>{1, 2, 1});
  CHECK(bin(BinaryOp::Lt) == std::vector<double>{1, 0, 0});
  CHECK(bin(BinaryOp::Le) == std::vector<double>{1, 1, 0});
  CHECK(bin(BinaryOp::Eq) == std::vector<double>{0, 1, 0});
  CHECK(bin(BinaryOp::Ne) == std::vector<double>{1, 0, 1});

  Tensor ia = from_vector(std::vector<int64_t>{7, -7, 6}, {3}, Device::Reference);
  Tensor ib = from_vector(std::vector<int64_t>{2, 2, 3}, {3}, Device::Reference);
  Tensor iy = Tensor::empty({3}, DType::I64, Device::Reference);
  be.binary(BinaryOp::Div, ia, ib, iy);
  CHECK(iy.to_vector<int64_t>() == std::vector<int64_t>{3, -3, 2});
  be.binary(BinaryOp::Ge, ia, ib, iy);
  CHECK(iy.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1});

  Tensor cond = ref_f64({1, 0, 2}, {3});
  be.where(cond, a, b, y);
  CHECK(values(y) == std::vector<double>{1, 2, 3});
}

TEST_CASE("reference: reductions, arg reductions, gather, scatter_add") {
  Backend& be = reference_backend();
  // [[1, 5, 3], [4, 5, 0]] reduced over axis 0 (outer 1, n 2, inner 3) and axis 1 (outer 2, n 3, inner 1).
  Tensor x = ref_f64({1, 5, 3, 4, 5, 0}, {2, 3});
  Tensor r3 = Tensor::empty({3}, DType::F64, Device::Reference), r2 = Tensor::empty({2}, DType::F64, Device::Reference);
  be.reduce(ReduceOp::Sum, x, 1, 2, 3, r3);
  CHECK(values(r3) == std::vector<double>{5, 10, 3});
  be.reduce(ReduceOp::Max, x, 2, 3, 1, r2);
  CHECK(values(r2) == std::vector<double>{5, 5});
  be.reduce(ReduceOp::Min, x, 1, 2, 3, r3);
  CHECK(values(r3) == std::vector<double>{1, 5, 0});

  Tensor i2 = Tensor::empty({2}, DType::I64, Device::Reference), i3 = Tensor::empty({3}, DType::I64, Device::Reference);
  be.arg_reduce(ReduceOp::Max, x, 2, 3, 1, i2);
  CHECK(i2.to_vector<int64_t>() == std::vector<int64_t>{1, 1});  // first of the tied 5s in row 1
  be.arg_reduce(ReduceOp::Min, x, 1, 2, 3, i3);
  CHECK(i3.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1});  // column 1 ties: the first

  Tensor empty_sum = Tensor::empty({2}, DType::F64, Device::Reference);
  be.reduce(ReduceOp::Sum, Tensor::empty({2, 0}, DType::F64, Device::Reference), 2, 0, 1, empty_sum);
  CHECK(values(empty_sum) == std::vector<double>{0, 0});

  Tensor ints = from_vector(std::vector<int64_t>{1, 2, 3, 4}, {4}, Device::Reference);
  Tensor isum = Tensor::empty({1}, DType::I64, Device::Reference);
  be.reduce(ReduceOp::Sum, ints, 1, 4, 1, isum);
  CHECK(isum.to_vector<int64_t>() == std::vector<int64_t>{10});

  Tensor idx = from_vector(std::vector<int64_t>{2, 0}, {2}, Device::Reference);
  be.gather(x, idx, 2, 3, 1, r2);  // row 0 picks column 2, row 1 picks column 0
  CHECK(values(r2) == std::vector<double>{3, 4});
  Tensor acc = ref_f64({0, 0, 0, 1, 1, 1}, {2, 3});
  be.scatter_add(ref_f64({10, 20}, {2}), idx, 2, 3, 1, acc);
  CHECK(values(acc) == std::vector<double>{0, 0, 10, 21, 1, 1});
}

TEST_CASE("reference: softmax and log_softmax, stable at 1e4") {
  Backend& be = reference_backend();
  Tensor y = Tensor::empty({2, 2}, DType::F64, Device::Reference);
  be.softmax(ref_f64({0, 0, 1e4, 0}, {2, 2}), 2, 2, 1, false, y);
  CHECK(values(y) == std::vector<double>{0.5, 0.5, 1, 0});
  be.softmax(ref_f64({0, 0, 1e4, 0}, {2, 2}), 2, 2, 1, true, y);
  CHECK(values(y)[0] == doctest::Approx(-std::log(2.0)));
  CHECK(values(y)[2] == 0);
  CHECK(values(y)[3] == -1e4);
  // Over the outer axis (inner = 2): columns [1, 3] and [2, 2].
  be.softmax(ref_f64({1, 2, 3, 2}, {2, 2}), 1, 2, 2, false, y);
  auto v = values(y);
  CHECK(v[0] == doctest::Approx(1 / (1 + std::exp(2.0))));
  CHECK(v[2] == doctest::Approx(1 / (1 + std::exp(-2.0))));
  CHECK(v[1] == 0.5);
  CHECK(v[3] == 0.5);
}

TEST_CASE("reference: 2x2 gemm, every trans combination, alpha, beta, batch strides") {
  Backend& be = reference_backend();
  Tensor A = ref_f64({1, 2, 3, 4}, {2, 2}), B = ref_f64({5, 6, 7, 8}, {2, 2});
  auto gemm = [&](bool ta, bool tb, double alpha, double beta, Tensor C) {
    be.gemm(ta, tb, 1, 2, 2, 2, alpha, A, 0, B, 0, beta, C, 0);
    return values(C);
  };
  CHECK(gemm(false, false, 1, 0, full({2, 2}, kNaN, DType::F64, Device::Reference)) == std::vector<double>{19, 22, 43, 50});
  CHECK(gemm(true, false, 1, 0, full({2, 2}, kNaN, DType::F64, Device::Reference)) == std::vector<double>{26, 30, 38, 44});
  CHECK(gemm(false, true, 1, 0, full({2, 2}, kNaN, DType::F64, Device::Reference)) == std::vector<double>{17, 23, 39, 53});
  CHECK(gemm(true, true, 1, 0, full({2, 2}, kNaN, DType::F64, Device::Reference)) == std::vector<double>{23, 31, 34, 46});
  CHECK(gemm(false, false, 2, 0.5, ref_f64({2, 4, 6, 8}, {2, 2})) == std::vector<double>{39, 46, 89, 104});

  // Batch 2 with A shared (stride 0), B per batch, C batches 5 apart (one gap element, left alone).
  Tensor B2 = ref_f64({5, 6, 7, 8, 1, 0, 0, 1}, {2, 2, 2});
  Tensor C2 = full({9}, -1, DType::F64, Device::Reference);
  be.gemm(false, false, 2, 2, 2, 2, 1, A, 0, B2, 4, 0, C2, 5);
  CHECK(values(C2) == std::vector<double>{19, 22, 43, 50, -1, 1, 2, 3, 4});

  // M x N = 1 x 3 from K = 2: row vector times matrix.
  Tensor r = ref_f64({1, 2}, {1, 2}), M3 = ref_f64({1, 2, 3, 4, 5, 6}, {2, 3}), out = Tensor::empty({1, 3}, DType::F64, Device::Reference);
  be.gemm(false, false, 1, 1, 3, 2, 1, r, 0, M3, 0, 0, out, 0);
  CHECK(values(out) == std::vector<double>{9, 12, 15});
}

TEST_CASE("reference: 3x3 input through im2col, col2im and pooling") {
  Backend& be = reference_backend();
  Tensor x = ref_f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Conv2dGeometry k2{1, 1, 3, 3, 2, 2};  // 2x2 window, stride 1, no padding: 2x2 output

  Tensor cols = Tensor::empty({1, 4, 4}, DType::F64, Device::Reference);
  be.im2col(x, k2, cols);
  CHECK(values(cols) == std::vector<double>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  Tensor back = full({1, 1, 3, 3}, kNaN, DType::F64, Device::Reference);
  be.col2im(ones({1, 4, 4}, DType::F64, Device::Reference), k2, back);
  CHECK(values(back) == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});  // how often each pixel is read

  // 3x3 kernel with padding 1: the centre row of cols is the image, corners see zeros.
  Conv2dGeometry same{1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1};
  Tensor cols9 = Tensor::empty({1, 9, 9}, DType::F64, Device::Reference);
  be.im2col(x, same, cols9);
  auto c9 = values(cols9);
  CHECK(std::vector<double>(c9.begin() + 36, c9.begin() + 45) == values(x));
  CHECK(std::vector<double>(c9.begin(), c9.begin() + 9) == std::vector<double>{0, 0, 0, 0, 1, 2, 0, 4, 5});

  // Dilation 2 on 3x3 with a 2x2 kernel reads the four corners.
  Conv2dGeometry dil{1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 2, 2};
  Tensor cols_d = Tensor::empty({1, 4, 1}, DType::F64, Device::Reference);
  be.im2col(x, dil, cols_d);
  CHECK(values(cols_d) == std::vector<double>{1, 3, 7, 9});

  Tensor out = Tensor::empty({1, 1, 2, 2}, DType::F64, Device::Reference);
  Tensor idx = Tensor::empty({1, 1, 2, 2}, DType::I64, Device::Reference);
  be.max_pool2d(x, k2, out, idx);
  CHECK(values(out) == std::vector<double>{5, 6, 8, 9});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{4, 5, 7, 8});
  be.avg_pool2d(x, k2, out);
  CHECK(values(out) == std::vector<double>{3, 4, 6, 7});

  // 2x2 window, stride 2, padding 1: border windows hold 1, 2, 2 and 4 real pixels.
  Conv2dGeometry padded{1, 1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1};
  be.max_pool2d(x, padded, out, idx);
  CHECK(values(out) == std::vector<double>{1, 3, 7, 9});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 6, 8});
  be.avg_pool2d(x, padded, out);
  CHECK(values(out) == std::vector<double>{0.25, 1.25, 2.75, 7});  // divisor 4, padding included

  // Padding is never chosen by max pooling, even when every real pixel is negative.
  Tensor neg = full({1, 1, 3, 3}, -5, DType::F64, Device::Reference);
  be.max_pool2d(neg, padded, out, idx);
  CHECK(values(out) == std::vector<double>{-5, -5, -5, -5});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 3, 4});  // ties: the first in the window

  // Backward: overlapping windows sum; avg spreads grad/4 over the (real) pixels.
  be.max_pool2d(x, k2, out, idx);
  Tensor gx = full({1, 1, 3, 3}, kNaN, DType::F64, Device::Reference);
  be.max_pool2d_backward(ref_f64({1, 2, 3, 4}, {1, 1, 2, 2}), idx, k2, gx);
  CHECK(values(gx) == std::vector<double>{0, 0, 0, 0, 1, 2, 0, 3, 4});
  Tensor ones_x = ones({1, 1, 3, 3}, DType::F64, Device::Reference);
  be.max_pool2d(ones_x, k2, out, idx);
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 3, 4});
  be.avg_pool2d_backward(ref_f64({4, 4, 4, 4}, {1, 1, 2, 2}), k2, gx);
  CHECK(values(gx) == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});
}

TEST_CASE("reference: grouped and depthwise convolution by hand") {
  Backend& be = reference_backend();
  // Two channels [1 2; 3 4] and [5 6; 7 8], 1x1 kernels, groups 2, two outputs per group: output o of group
  // j scales channel j by w[o]; the bias is added.
  Tensor x = ref_f64({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
  Conv2dGeometry g1{1, 2, 2, 2, 1, 1};
  g1.groups = 2;
  Tensor w = ref_f64({1, -1, 2, 10}, {4, 1, 1, 1}), b = ref_f64({0, 0, 0, 0.5}, {4});
  Tensor out = full({1, 4, 2, 2}, kNaN, DType::F64, Device::Reference);
  be.conv2d(x, w, b, g1, out);
  CHECK(values(out) == std::vector<double>{1, 2, 3, 4, -1, -2, -3, -4, 10, 12, 14, 16, 50.5, 60.5, 70.5, 80.5});
  // Input gradient: channel j receives sum over its group's outputs of w[o] * grad_out[o].
  Tensor gx = full({1, 2, 2, 2}, kNaN, DType::F64, Device::Reference);
  be.conv2d_backward_input(ones({1, 4, 2, 2}, DType::F64, Device::Reference), w, g1, gx);
  CHECK(values(gx) == std::vector<double>{0, 0, 0, 0, 12, 12, 12, 12});
  // Weight gradient: w[o] receives sum over pixels of grad_out[o] * x[its group's channel].
  Tensor gw = full({4, 1, 1, 1}, kNaN, DType::F64, Device::Reference);
  be.conv2d_backward_weight(ones({1, 4, 2, 2}, DType::F64, Device::Reference), x, g1, gw);
  CHECK(values(gw) == std::vector<double>{10, 10, 26, 26});
  // Depthwise 2x2 kernel over each 2x2 channel (1x1 output): the dot product of channel c with kernel c.
  Conv2dGeometry dw{1, 2, 2, 2, 2, 2};
  dw.groups = 2;
  Tensor k = ref_f64({1, 0, 0, 1, 0, 1, 1, 0}, {2, 1, 2, 2});
  Tensor out_dw = full({1, 2, 1, 1}, kNaN, DType::F64, Device::Reference);
  be.conv2d(x, k, Tensor(), dw, out_dw);
  CHECK(values(out_dw) == std::vector<double>{1 + 4, 6 + 7});
}

TEST_CASE("reference: pooling with ceil_mode and count_include_pad=false by hand") {
  Backend& be = reference_backend();
  Tensor x = ref_f64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  // 2x2, stride 2, ceil_mode: a last, partial window in each direction (windows {0,1} and {2}).
  Conv2dGeometry ceil2{1, 1, 3, 3, 2, 2, 2, 2};
  ceil2.ceil_mode = true;
  REQUIRE(ceil2.out_h() == 2);
  Tensor out = Tensor::empty({1, 1, 2, 2}, DType::F64, Device::Reference);
  Tensor idx = Tensor::empty({1, 1, 2, 2}, DType::I64, Device::Reference);
  be.max_pool2d(x, ceil2, out, idx);
  CHECK(values(out) == std::vector<double>{5, 6, 8, 9});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{4, 5, 7, 8});
  be.avg_pool2d(x, ceil2, out);  // the overhanging windows are divided by their clipped size: 4, 2, 2, 1
  CHECK(values(out) == std::vector<double>{3, 4.5, 7.5, 9});
  Tensor gx = full({1, 1, 3, 3}, kNaN, DType::F64, Device::Reference);
  be.avg_pool2d_backward(ref_f64({4, 4, 4, 4}, {1, 1, 2, 2}), ceil2, gx);
  CHECK(values(gx) == std::vector<double>{1, 1, 2, 1, 1, 2, 2, 2, 4});
  // 2x2, stride 2, padding 1, count_include_pad=false: divisors are the real pixels (1, 2, 2, 4).
  Conv2dGeometry real{1, 1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1};
  real.count_include_pad = false;
  be.avg_pool2d(x, real, out);
  CHECK(values(out) == std::vector<double>{1, 2.5, 5.5, 7});
  // ceil_mode keeps no window that would start in the right padding: still 2x2 here.
  real.ceil_mode = true;
  CHECK(real.out_h() == 2);
  CHECK(real.out_w() == 2);
}

TEST_CASE("reference: col2im is the adjoint of im2col") {
  // <im2col(x), y> == <x, col2im(y)> for every geometry, in float64.
  Backend& be = reference_backend();
  Generator g(7);
  for (const auto& geo : geometries()) {
    INFO(geom_str(geo));
    Tensor x = randn(input_shape(geo), g, DType::F64, Device::Reference);
    Tensor y = randn(cols_shape(geo), g, DType::F64, Device::Reference);
    Tensor cx = Tensor::empty(cols_shape(geo), DType::F64, Device::Reference);
    Tensor ty = Tensor::empty(input_shape(geo), DType::F64, Device::Reference);
    be.im2col(x, geo, cx);
    be.col2im(y, geo, ty);
    double lhs = 0, rhs = 0;
    auto vcx = values(cx), vy = values(y), vx = values(x), vty = values(ty);
    for (size_t i = 0; i < vcx.size(); ++i) lhs += vcx[i] * vy[i];
    for (size_t i = 0; i < vx.size(); ++i) rhs += vx[i] * vty[i];
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
}

TEST_CASE("reference: random values are a pure function of (seed, stream, offset + i)") {
  Backend& be = reference_backend();
  Tensor u = Tensor::empty({50}, DType::F32, Device::Reference);
  be.random(RandomKind::Uniform, u, 11, 3, 100, -0.3, 0.7);  // bounds not exact in float: pins the formula
  Tensor d = Tensor::empty({50}, DType::F64, Device::Reference);
  be.random(RandomKind::Uniform, d, 11, 3, 100, -2, 3);
  Tensor n = Tensor::empty({50}, DType::F64, Device::Reference);
  be.random(RandomKind::Normal, n, 11, 3, 100, 1, 2);
  Tensor k = Tensor::empty({50}, DType::I64, Device::Reference);
  be.random(RandomKind::Randint, k, 11, 3, 100, -3, 4);
  auto vu = u.to_vector<float>();
  auto vd = values(d), vn = values(n);
  auto vk = k.to_vector<int64_t>();
  for (uint64_t i = 0; i < 50; ++i) {
    CHECK(vu[i] == float(-0.3 + (0.7 - -0.3) * double(Generator::uniform_float(11, 3, 100 + i))));
    CHECK(vd[i] == -2 + 5 * Generator::uniform_double(11, 3, 100 + i));
    CHECK(vn[i] == 1 + 2 * Generator::normal(11, 3, 100 + i));
    CHECK(vk[i] == -3 + int64_t(Generator::below(11, 3, 100 + i, 7)));
    CHECK((vu[i] >= -0.3f && vu[i] < 0.7f));
    CHECK((vk[i] >= -3 && vk[i] < 4));
  }
}

// ======================================================================================================
// 2. Agreement of the cpu backend with the reference backend.
// ======================================================================================================

TEST_CASE("agree: fill and copy over dense, permuted and broadcast views, all dtype pairs") {
  Generator g(1);
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    // fill a permuted view of a [4,7] buffer: only the 3x5 window changes.
    Pair base = out_buffer({4, 7}, dt);
    Pair v = view(base, {5, 3}, {1, 7}, 8);
    for (int k : {0, 1}) backend(k).fill(v[k], 2.5);
    expect_agree(base, "fill view");
    Pair scalar = out_buffer({}, dt);
    for (int k : {0, 1}) backend(k).fill(scalar[k], -3);
    expect_agree(scalar, "fill 0-d");
  }
  for (DType from : {DType::F32, DType::F64, DType::I64})
    for (DType to : {DType::F32, DType::F64, DType::I64}) {
      INFO(dname(from) << " -> " << dname(to));
      Pair src = from == DType::I64 ? int_pair({6, 9}, -50, 50, g, from) : uniform_pair({6, 9}, -20, 20, g, from);
      // dense -> dense
      Pair dst = out_buffer({6, 9}, to);
      for (int k : {0, 1}) backend(k).copy(src[k], dst[k]);
      expect_agree(dst, "copy dense");
      // permuted source [9,6] -> view with gaps inside a [9,8] buffer
      Pair gapped = out_buffer({9, 8}, to);
      Pair perm = view(src, {9, 6}, {1, 9}, 0), dview = view(gapped, {9, 6}, {8, 1}, 1);
      for (int k : {0, 1}) backend(k).copy(perm[k], dview[k]);
      expect_agree(gapped, "copy permuted");
      // broadcast: row 2 of src repeated (stride 0), size-1 dims included
      Pair bc = view(src, {1, 4, 1, 9}, {0, 0, 0, 1}, 18);
      Pair dst2 = out_buffer({1, 4, 1, 9}, to);
      for (int k : {0, 1}) backend(k).copy(bc[k], dst2[k]);
      expect_agree(dst2, "copy broadcast");
    }
}

TEST_CASE("agree: every unary op on dense, permuted and in-place inputs") {
  struct Case { UnaryOp op; const char* name; double lo, hi, a, b; };
  const Case cases[] = {
      {UnaryOp::Neg, "neg", -3, 3, 0, 0},         {UnaryOp::Exp, "exp", -5, 5, 0, 0},
      {UnaryOp::Log, "log", 0.01, 5, 0, 0},       {UnaryOp::Sqrt, "sqrt", 0, 5, 0, 0},
      {UnaryOp::Abs, "abs", -3, 3, 0, 0},         {UnaryOp::Tanh, "tanh", -4, 4, 0, 0},
      {UnaryOp::Sigmoid, "sigmoid", -6, 6, 0, 0}, {UnaryOp::Sigmoid, "sigmoid wide", -200, 200, 0, 0},
      {UnaryOp::Relu, "relu", -3, 3, 0, 0},       {UnaryOp::Sign, "sign", -3, 3, 0, 0},
      {UnaryOp::Square, "square", -3, 3, 0, 0},   {UnaryOp::Reciprocal, "reciprocal", 0.1, 4, 0, 0},
      {UnaryOp::LeakyRelu, "leaky_relu", -3, 3, 0.1, 0},
      {UnaryOp::PowScalar, "pow 1.7", 0.01, 3, 1.7, 0}, {UnaryOp::PowScalar, "pow -0.5", 0.1, 3, -0.5, 0},
      {UnaryOp::PowScalar, "pow 2", -3, 3, 2, 0}, {UnaryOp::Clamp, "clamp", -3, 3, -0.5, 0.8},
      {UnaryOp::AddScalar, "add_scalar", -3, 3, 0.3, 0}, {UnaryOp::MulScalar, "mul_scalar", -3, 3, -1.5, 0},
      {UnaryOp::Affine, "affine", -3, 3, 2, -1},
  };
  Generator g(2);
  for (DType dt : kFloatTypes)
    for (const Case& c : cases) {
      INFO(std::string(c.name) << " " << dname(dt));
      Pair x = uniform_pair({7, 13}, c.lo, c.hi, g, dt);
      Pair y = out_buffer({7, 13}, dt);
      for (int k : {0, 1}) backend(k).unary(c.op, x[k], y[k], c.a, c.b);
      expect_agree(y, "dense");
      // permuted source [13,7] into a view with gaps of a [13,9] buffer
      Pair gapped = out_buffer({13, 9}, dt);
      Pair xt = view(x, {13, 7}, {1, 13}, 0), yv = view(gapped, {13, 7}, {9, 1}, 2);
      for (int k : {0, 1}) backend(k).unary(c.op, xt[k], yv[k], c.a, c.b);
      expect_agree(gapped, "permuted");
      // exact small integers, zero included (sign(0), relu(0), abs(0), ...), where the domain allows
      if (c.lo < 0) {
        Pair xi = int_pair({5, 11}, -3, 4, g, dt), yi = out_buffer({5, 11}, dt);
        for (int k : {0, 1}) backend(k).unary(c.op, xi[k], yi[k], c.a, c.b);
        expect_agree(yi, "integers");
      }
      // in place on a larger tensor with size-1 dims (exercises parallel chunks of the cpu backend)
      Pair big = uniform_pair({1, 301, 1, 257}, c.lo, c.hi, g, dt);
      for (int k : {0, 1}) backend(k).unary(c.op, big[k], big[k], c.a, c.b);
      expect_agree(big, "in place");
    }
}

TEST_CASE("agree: every binary op with broadcast, permuted and gapped views, float and int64") {
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow,
                          BinaryOp::Minimum, BinaryOp::Maximum, BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt,
                          BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge, BinaryOp::PassPositive};
  Generator g(3);
  for (DType dt : {DType::F32, DType::F64, DType::I64})
    for (BinaryOp op : ops) {
      INFO("binary op " << int(op) << " " << dname(dt));
      const bool ints = dt == DType::I64;
      // Inputs: small integers (ties for comparisons/min/max), or positive bases for Pow, non-zero divisors.
      auto make_a = [&](const Shape& s) {
        if (op == BinaryOp::Pow) return ints ? int_pair(s, -3, 4, g, dt) : uniform_pair(s, 0.1, 3, g, dt);
        if (ints || op >= BinaryOp::Minimum) return int_pair(s, -9, 10, g, dt);
        return uniform_pair(s, -3, 3, g, dt);
      };
      auto make_b = [&](const Shape& s) {
        if (op == BinaryOp::Pow) return ints ? int_pair(s, 0, 4, g, dt) : uniform_pair(s, -2, 2, g, dt);
        if (op == BinaryOp::Div) return ints ? int_pair(s, 1, 5, g, dt) : uniform_pair(s, 0.5, 3, g, dt);
        if (ints || op >= BinaryOp::Minimum) return int_pair(s, -9, 10, g, dt);
        return uniform_pair(s, -3, 3, g, dt);
      };
      // dense, odd sizes
      Pair a = make_a({7, 13}), b = make_b({7, 13}), y = out_buffer({7, 13}, dt);
      for (int k : {0, 1}) backend(k).binary(op, a[k], b[k], y[k]);
      expect_agree(y, "dense");
      // a: [4,1] broadcast to [3,4,5] (strides 0); b: permuted [5,4,3]; dst: gapped view of [3,4,7]
      Pair a_small = make_a({4, 1}), b_base = make_b({5, 4, 3}), gapped = out_buffer({3, 4, 7}, dt);
      Pair av = view(a_small, {3, 4, 5}, {0, 1, 0}, 0), bv = view(b_base, {3, 4, 5}, {1, 3, 12}, 0);
      Pair yv = view(gapped, {3, 4, 5}, {28, 7, 1}, 1);
      for (int k : {0, 1}) backend(k).binary(op, av[k], bv[k], yv[k]);
      expect_agree(gapped, "broadcast/permuted");
      // in place (dst aliases a), larger with size-1 dims
      Pair a2 = make_a({301, 1, 257}), b2 = make_b({301, 1, 257});
      for (int k : {0, 1}) backend(k).binary(op, a2[k], b2[k], a2[k]);
      expect_agree(a2, "in place");
    }
}

TEST_CASE("agree: where with broadcast condition") {
  Generator g(4);
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    INFO(dname(dt));
    Pair cond = int_pair({7, 13}, 0, 2, g, dt), a = int_pair({7, 13}, -50, 50, g, dt), b = int_pair({7, 13}, -50, 50, g, dt);
    if (dt != DType::I64) a = uniform_pair({7, 13}, -3, 3, g, dt), b = uniform_pair({7, 13}, -3, 3, g, dt);
    Pair y = out_buffer({7, 13}, dt);
    for (int k : {0, 1}) backend(k).where(cond[k], a[k], b[k], y[k]);
    expect_agree(y, "dense");
    // cond row 0 broadcast over rows, a transposed, b row 0 broadcast over columns, into a gapped buffer
    Pair cv = view(cond, {13, 7}, {0, 1}, 0), av = view(a, {13, 7}, {1, 13}, 0), bv = view(b, {13, 7}, {1, 0}, 0);
    Pair gapped = out_buffer({13, 8}, dt), yv = view(gapped, {13, 7}, {8, 1}, 0);
    for (int k : {0, 1}) backend(k).where(cv[k], av[k], bv[k], yv[k]);
    expect_agree(gapped, "views");
  }
}

namespace {
struct ReduceShape { int64_t outer, n, inner; };
const ReduceShape kReduceShapes[] = {{1, 1, 1}, {7, 13, 1}, {1, 13, 7}, {3, 5, 4}, {5, 1, 3}, {1, 1, 9}, {4, 300, 37},
                                     {1, 1000, 1}};
}  // namespace

TEST_CASE("agree: reduce and arg_reduce, with ties") {
  Generator g(5);
  for (DType dt : {DType::F32, DType::F64, DType::I64})
    for (const auto& s : kReduceShapes) {
      INFO(dname(dt) << " outer " << s.outer << " n " << s.n << " inner " << s.inner);
      Pair x = dt == DType::I64 ? int_pair({s.outer, s.n, s.inner}, -100, 100, g, dt)
                                : uniform_pair({s.outer, s.n, s.inner}, -2, 2, g, dt);
      Pair y = out_buffer({s.outer, s.inner}, dt);
      for (int k : {0, 1}) backend(k).reduce(ReduceOp::Sum, x[k], s.outer, s.n, s.inner, y[k]);
      expect_agree(y, "sum");
      if (dt == DType::I64) continue;  // max/min/arg are float-only
      Pair ties = int_pair({s.outer, s.n, s.inner}, -3, 4, g, dt);
      for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min})
        for (const Pair* in : {&x, &ties}) {
          Pair r = out_buffer({s.outer, s.inner}, dt), idx = out_buffer({s.outer, s.inner}, DType::I64);
          for (int k : {0, 1}) backend(k).reduce(op, (*in)[k], s.outer, s.n, s.inner, r[k]);
          for (int k : {0, 1}) backend(k).arg_reduce(op, (*in)[k], s.outer, s.n, s.inner, idx[k]);
          expect_agree(r, op == ReduceOp::Max ? "max" : "min");
          expect_agree(idx, op == ReduceOp::Max ? "argmax" : "argmin");
        }
    }
  // n == 0: the sum is 0
  for (DType dt : {DType::F32, DType::I64}) {
    Pair x = out_buffer({3, 0, 2}, dt), y = out_buffer({3, 2}, dt);
    for (int k : {0, 1}) backend(k).reduce(ReduceOp::Sum, x[k], 3, 0, 2, y[k]);
    expect_agree(y, "sum over n = 0");
    CHECK(values(y[0]) == std::vector<double>(6, 0.0));
  }
}

TEST_CASE("agree: gather and scatter_add") {
  Generator g(6);
  for (DType dt : kFloatTypes)
    for (const auto& s : kReduceShapes) {
      INFO(dname(dt) << " outer " << s.outer << " n " << s.n << " inner " << s.inner);
      Pair src = uniform_pair({s.outer, s.n, s.inner}, -2, 2, g, dt);
      Pair idx = int_pair({s.outer, s.inner}, 0, s.n, g, DType::I64);
      Pair y = out_buffer({s.outer, s.inner}, dt);
      for (int k : {0, 1}) backend(k).gather(src[k], idx[k], s.outer, s.n, s.inner, y[k]);
      expect_agree(y, "gather");
      // scatter_add reads dst: start from src's values and add y back in
      for (int k : {0, 1}) backend(k).scatter_add(y[k], idx[k], s.outer, s.n, s.inner, src[k]);
      expect_agree(src, "scatter_add");
    }
}

TEST_CASE("agree: softmax and log_softmax, including inputs of magnitude 1e4") {
  Generator g(7);
  for (DType dt : kFloatTypes)
    for (const auto& s : kReduceShapes)
      for (double scale : {1.0, 1e4})
        for (bool log : {false, true}) {
          INFO(dname(dt) << " outer " << s.outer << " n " << s.n << " inner " << s.inner << " scale " << scale
                              << " log " << log);
          Pair x = uniform_pair({s.outer, s.n, s.inner}, -scale, scale, g, dt);
          Pair y = out_buffer({s.outer, s.n, s.inner}, dt);
          for (int k : {0, 1}) backend(k).softmax(x[k], s.outer, s.n, s.inner, log, y[k]);
          expect_agree(y, "softmax");
          CHECK(all_finite(y[0]));
          CHECK(all_finite(y[1]));
        }
}

TEST_CASE("agree: gemm, every trans combination, alpha/beta, batch strides including 0") {
  struct Case { int64_t batch, M, N, K; };
  const Case cases[] = {{1, 1, 1, 1}, {1, 7, 13, 5}, {3, 7, 13, 5}, {2, 1, 9, 4}, {2, 6, 1, 3}, {2, 5, 4, 1},
                        {1, 33, 40, 70}, {2, 64, 65, 31}};
  struct Scale { double alpha, beta; };
  const Scale scales[] = {{1, 0}, {0.5, 1}, {-2, 0.25}};
  Generator g(8);
  for (DType dt : kFloatTypes)
    for (const Case& c : cases)
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (int share = 0; share < 3; ++share)  // 0: none; 1: A shared (stride 0); 2: B shared
            for (const Scale& sc : scales) {
              INFO(dname(dt) << " batch " << c.batch << " M " << c.M << " N " << c.N << " K " << c.K << " ta "
                                  << ta << " tb " << tb << " share " << share << " alpha " << sc.alpha << " beta "
                                  << sc.beta);
              // Batches sit a few elements apart (gaps must stay untouched), or all at 0 when shared.
              const int64_t sa = share == 1 ? 0 : c.M * c.K + 3, sb = share == 2 ? 0 : c.K * c.N + 1;
              const int64_t sc_ = c.M * c.N + 2;
              Pair A = uniform_pair({sa * (c.batch - 1) + c.M * c.K}, -1, 1, g, dt);
              Pair B = uniform_pair({sb * (c.batch - 1) + c.K * c.N}, -1, 1, g, dt);
              // beta == 0 must ignore C, even NaN: C starts as NaN then, as random values otherwise.
              Pair C = sc.beta == 0 ? out_buffer({sc_ * c.batch}, dt) : uniform_pair({sc_ * c.batch}, -1, 1, g, dt);
              for (int k : {0, 1})
                backend(k).gemm(ta, tb, c.batch, c.M, c.N, c.K, sc.alpha, A[k], sa, B[k], sb, sc.beta, C[k], sc_);
              expect_agree(C, "gemm");
              if (sc.beta == 0)
                for (int k : {0, 1}) {
                  auto v = values(C[k]);
                  bool finite = true;
                  for (int64_t b = 0; b < c.batch; ++b)
                    for (int64_t i = 0; i < c.M * c.N; ++i) finite = finite && std::isfinite(v[size_t(b * sc_ + i)]);
                  CHECK_MESSAGE(finite, std::string(backend(k).name()) << ": beta = 0 let NaN from C through");
                }
            }
}

TEST_CASE("agree: im2col and col2im") {
  Generator g(9);
  for (DType dt : kFloatTypes)
    for (const auto& geo : geometries()) {
      INFO(dname(dt) << " " << geom_str(geo));
      Pair x = uniform_pair(input_shape(geo), -1, 1, g, dt);
      Pair cols = out_buffer(cols_shape(geo), dt);
      for (int k : {0, 1}) backend(k).im2col(x[k], geo, cols[k]);
      expect_agree(cols, "im2col");
      Pair y = uniform_pair(cols_shape(geo), -1, 1, g, dt);
      Pair back = out_buffer(input_shape(geo), dt);  // NaN: col2im must overwrite every pixel
      for (int k : {0, 1}) backend(k).col2im(y[k], geo, back[k]);
      expect_agree(back, "col2im");
      CHECK(all_finite(back[0]));
    }
}

TEST_CASE("agree: whole convolution, forward (with and without bias), input and weight gradients") {
  // The cpu backend runs these per sample with cached columns and sums the weight gradient in groups of
  // samples; the reference composes im2col and one batched GEMM. Batch 37 spans several groups.
  Generator g(12);
  std::vector<Conv2dGeometry> geos = geometries();
  Conv2dGeometry big = geos.back();
  big.batch = 37;
  geos.push_back(big);
  // 12*25 = 300 input rows per column (more than one block of K in the float GEMM kernel) and, below,
  // 9 output channels (a full tile of 8 rows plus one).
  geos.push_back({2, 12, 6, 7, 5, 5, 1, 1, 2, 2, 1, 1});
  // Grouped (groups 2 and 3) and depthwise (groups = channels, with a channel multiplier of 1 and 2), with
  // stride, padding, dilation; unit-stride "same" ones take the cpu backend's widened input-gradient path.
  struct Grouped {
    Conv2dGeometry geo;
    int64_t O;
  };
  std::vector<Grouped> grouped = {
      {{2, 4, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2}, 6},      // groups 2, "same"
      {{1, 6, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 3}, 9},      // groups 3, stride 2
      {{2, 8, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 8}, 8},      // depthwise "same"
      {{3, 5, 8, 7, 3, 2, 2, 1, 1, 0, 2, 1, 5}, 10},     // depthwise x2, stride/padding/dilation mixed
      {{37, 4, 6, 6, 5, 5, 1, 1, 2, 2, 1, 1, 4}, 4},     // depthwise 5x5, batch over several weight groups
  };
  for (const auto& geo : geos) grouped.push_back({geo, geo.channels == 12 ? 9 : 4});
  for (DType dt : kFloatTypes)
    for (const Grouped& c : grouped)
      for (bool with_bias : {false, true}) {
        const Conv2dGeometry& geo = c.geo;
        const int64_t O = c.O;
        INFO(dname(dt) << " " << geom_str(geo) << " groups " << geo.groups << " O " << O << " bias " << with_bias);
        const Shape out_shape{geo.batch, O, geo.out_h(), geo.out_w()},
            w_shape{O, geo.channels_per_group(), geo.kernel_h, geo.kernel_w};
        Pair x = uniform_pair(input_shape(geo), -1, 1, g, dt), w = uniform_pair(w_shape, -1, 1, g, dt);
        Pair b = with_bias ? uniform_pair({O}, -1, 1, g, dt) : Pair{Tensor(), Tensor()};
        Pair out = out_buffer(out_shape, dt);  // NaN: every output must be written
        for (int k : {0, 1}) backend(k).conv2d(x[k], w[k], b[k], geo, out[k]);
        expect_agree(out, "conv2d");
        CHECK(all_finite(out[0]));
        Pair go = uniform_pair(out_shape, -1, 1, g, dt);
        Pair gx = out_buffer(input_shape(geo), dt), gw = out_buffer(w_shape, dt);
        for (int k : {0, 1}) {
          backend(k).conv2d_backward_input(go[k], w[k], geo, gx[k]);
          backend(k).conv2d_backward_weight(go[k], x[k], geo, gw[k]);
        }
        expect_agree(gx, "conv2d_backward_input");
        expect_agree(gw, "conv2d_backward_weight");
        CHECK(all_finite(gx[1]));
        CHECK(all_finite(gw[1]));
      }
  // An infinite weight: the cpu backend's widened input-gradient GEMM would put inf * 0 = NaN where the
  // reference has none, so it must fall back to col2im; both give the same infinities and NaNs.
  for (DType dt : kFloatTypes) {
    const Conv2dGeometry geo = geometries().back();  // 5x5 "same": the widened path's shape
    const Shape w_shape{4, geo.channels, 5, 5}, out_shape{geo.batch, 4, geo.out_h(), geo.out_w()};
    Tensor w0 = uniform(w_shape, -1, 1, g, dt, Device::Reference);
    w0.as_strided({w0.numel()}, {1}, 0).set({5}, std::numeric_limits<double>::infinity());  // tap kh 1, kw 0
    Pair w = both(w0), go = uniform_pair(out_shape, -1, 1, g, dt), gx = out_buffer(input_shape(geo), dt);
    for (int k : {0, 1}) backend(k).conv2d_backward_input(go[k], w[k], geo, gx[k]);
    expect_agree(gx, "conv2d_backward_input with an infinite weight");
  }
}

// Every geometry, also with ceil_mode (a last partial window where the size allows) and with
// count_include_pad off.
std::vector<Conv2dGeometry> pooling_geometries() {
  std::vector<Conv2dGeometry> all;
  for (const auto& geo : geometries())
    for (bool ceil : {false, true})
      for (bool include_pad : {true, false}) {
        Conv2dGeometry g = geo;
        g.ceil_mode = ceil, g.count_include_pad = include_pad;
        all.push_back(g);
      }
  return all;
}

TEST_CASE("agree: max_pool2d and avg_pool2d, forward and backward, with ties") {
  Generator g(10);
  for (DType dt : kFloatTypes)
    for (const auto& geo : pooling_geometries())
      for (bool ties : {false, true}) {
        INFO(dname(dt) << " " << geom_str(geo) << " ceil_mode " << geo.ceil_mode << " count_include_pad "
                       << geo.count_include_pad << " ties " << ties);
        Pair x = ties ? int_pair(input_shape(geo), -2, 2, g, dt) : uniform_pair(input_shape(geo), -1, 1, g, dt);
        Pair out = out_buffer(pooled_shape(geo), dt), idx = out_buffer(pooled_shape(geo), DType::I64);
        for (int k : {0, 1}) backend(k).max_pool2d(x[k], geo, out[k], idx[k]);
        expect_agree(out, "max_pool2d");
        expect_agree(idx, "max_pool2d idx");

        // Backward from the reference's indices (checked equal above) on both.
        Pair go = uniform_pair(pooled_shape(geo), -1, 1, g, dt);
        Pair ref_idx = both(idx[0]);
        Pair gx = out_buffer(input_shape(geo), dt);
        for (int k : {0, 1}) backend(k).max_pool2d_backward(go[k], ref_idx[k], geo, gx[k]);
        expect_agree(gx, "max_pool2d_backward");
        CHECK(all_finite(gx[0]));

        Pair avg = out_buffer(pooled_shape(geo), dt);
        for (int k : {0, 1}) backend(k).avg_pool2d(x[k], geo, avg[k]);
        expect_agree(avg, "avg_pool2d");
        Pair gavg = out_buffer(input_shape(geo), dt);
        for (int k : {0, 1}) backend(k).avg_pool2d_backward(go[k], geo, gavg[k]);
        expect_agree(gavg, "avg_pool2d_backward");
        CHECK(all_finite(gavg[0]));
      }
}

TEST_CASE("cpu: grouped convolution and the pooling options are bit-identical at 1, 2 and 3 threads") {
  // Work is split by samples and planes and the weight gradient summed in fixed sample groups, so the thread
  // count changes nothing. Batch 37: several weight-gradient groups.
  const int saved = num_threads();
  Generator g(14);
  Conv2dGeometry geo{37, 8, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 4};
  Conv2dGeometry pool{37, 8, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1};
  pool.ceil_mode = true, pool.count_include_pad = false;
  const Shape out_shape{geo.batch, 8, geo.out_h(), geo.out_w()}, w_shape{8, 2, 3, 3};
  Tensor x = uniform(input_shape(geo), -1, 1, g), w = uniform(w_shape, -1, 1, g), b = uniform({8}, -1, 1, g);
  Tensor go = uniform(out_shape, -1, 1, g), go_pool = uniform(pooled_shape(pool), -1, 1, g);
  auto run = [&] {
    Backend& be = cpu_backend();
    std::vector<Tensor> r = {Tensor::empty(out_shape), Tensor::empty(input_shape(geo)), Tensor::empty(w_shape),
                             Tensor::empty(pooled_shape(pool)), Tensor::empty(input_shape(pool))};
    be.conv2d(x, w, b, geo, r[0]);
    be.conv2d_backward_input(go, w, geo, r[1]);
    be.conv2d_backward_weight(go, x, geo, r[2]);
    be.avg_pool2d(x, pool, r[3]);
    be.avg_pool2d_backward(go_pool, pool, r[4]);
    return r;
  };
  set_num_threads(1);
  std::vector<Tensor> one = run();
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    std::vector<Tensor> other = run();
    for (size_t i = 0; i < one.size(); ++i)
      CHECK_MESSAGE(bitwise_equal(one[i], other[i]), "result ", i, " differs at ", threads, " threads");
  }
  set_num_threads(saved);
}

TEST_CASE("agree: max_pool2d with NaN inputs (the last NaN in a window wins, as in PyTorch)") {
  // The cpu 2x2 fast path computes with plain comparisons and redoes a row pair only when it saw a NaN.
  Generator g(13);
  for (DType dt : kFloatTypes)
    for (const auto& geo : pooling_geometries()) {
      INFO(dname(dt) << " " << geom_str(geo));
      Tensor x = uniform(input_shape(geo), -1, 1, g, dt, Device::Reference);
      const int64_t n = x.numel();
      Tensor flat = x.as_strided({n}, {1}, 0);
      for (int64_t i = 0; i < n; i += 5) flat.set({i}, 0.0);  // ties too
      for (int64_t i = 3; i < n; i += 7) flat.set({i}, std::nan(""));
      Pair p = both(x);
      Pair out = out_buffer(pooled_shape(geo), dt), idx = out_buffer(pooled_shape(geo), DType::I64);
      for (int k : {0, 1}) backend(k).max_pool2d(p[k], geo, out[k], idx[k]);
      expect_agree(out, "max_pool2d with NaN");
      expect_agree(idx, "max_pool2d idx with NaN");
      bool any_nan = false;
      for (double v : values(out[0])) any_nan = any_nan || std::isnan(v);
      if (n > 3) CHECK(any_nan);
    }
}

namespace {
const double kInf = std::numeric_limits<double>::infinity();
// The special values every NaN test below feeds in, in this order.
const std::vector<double> kSpecials = {kNaN, kInf, -kInf, 0.0, -0.0, 1.0, -1.0};

// `reps` copies of v end to end: long enough (> 64k elements) for the cpu backend's vector loops and
// parallel chunks, not just a scalar tail.
std::vector<double> tiled(const std::vector<double>& v, int64_t reps) {
  std::vector<double> out;
  for (int64_t r = 0; r < reps; ++r) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// Bit-level agreement with an expected vector: NaN where it has NaN, and the sign of zero too.
void expect_bitwise(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  const std::vector<double> v = values(got);
  REQUIRE(v.size() % want.size() == 0);
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < v.size(); ++i) {
    const double w = want[i % want.size()];
    const bool ok = std::isnan(w) ? std::isnan(v[i]) : (v[i] == w && std::signbit(v[i]) == std::signbit(w));
    if (!ok && bad++ == 0) first = int64_t(i);
  }
  std::ostringstream msg;
  if (bad) msg << what << ": " << bad << " wrong, first at " << first << ": got " << v[size_t(first)] << " want " << want[size_t(first) % want.size()];
  CHECK_MESSAGE(bad == 0, msg.str());
}
}  // namespace

// Expected values printed by PyTorch 1.13 (python3-torch) for the inputs kSpecials, forward and backward:
// relu(NaN) is NaN (not 0) and relu(-0) is -0; relu's backward passes the gradient where the output is NaN.
TEST_CASE("both backends: NaN, +-inf and +-0 through relu, leaky_relu, clamp, minimum/maximum as PyTorch") {
  struct UCase { UnaryOp op; const char* name; double a, b; std::vector<double> want; };
  const UCase ucases[] = {
      {UnaryOp::Relu, "relu", 0, 0, {kNaN, kInf, 0.0, 0.0, -0.0, 1.0, 0.0}},
      {UnaryOp::LeakyRelu, "leaky_relu 0.25", 0.25, 0, {kNaN, kInf, -kInf, 0.0, -0.0, 1.0, -0.25}},
      {UnaryOp::Clamp, "clamp -0.5 0.5", -0.5, 0.5, {kNaN, 0.5, -0.5, 0.0, -0.0, 0.5, -0.5}},
      {UnaryOp::Clamp, "clamp 0 1", 0, 1, {kNaN, 1.0, 0.0, 0.0, -0.0, 1.0, 0.0}},
      {UnaryOp::Sign, "sign", 0, 0, {0.0, 1.0, -1.0, 0.0, 0.0, 1.0, -1.0}},
  };
  // maximum/minimum(kSpecials, b): against zeros, and against kSpecials reversed (NaN on either side).
  const std::vector<double> zeros7(7, 0.0), reversed(kSpecials.rbegin(), kSpecials.rend());
  struct BCase { BinaryOp op; const char* name; const std::vector<double>* b; std::vector<double> want; };
  const BCase bcases[] = {
      {BinaryOp::Maximum, "maximum(x, 0)", &zeros7, {kNaN, kInf, 0.0, 0.0, -0.0, 1.0, 0.0}},
      {BinaryOp::Minimum, "minimum(x, 0)", &zeros7, {kNaN, 0.0, -kInf, 0.0, -0.0, 0.0, -1.0}},
      {BinaryOp::Maximum, "maximum(x, reversed)", &reversed, {kNaN, kInf, -0.0, 0.0, -0.0, kInf, kNaN}},
      {BinaryOp::Minimum, "minimum(x, reversed)", &reversed, {kNaN, 1.0, -kInf, 0.0, -kInf, 1.0, kNaN}},
  };
  // relu's backward: gradient 1 through the relu outputs of kSpecials (NaN passes, as threshold_backward).
  const std::vector<double> relu_out = {kNaN, kInf, 0.0, 0.0, -0.0, 1.0, 0.0};
  const std::vector<double> relu_grad = {1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0};
  for (DType dt : kFloatTypes)
    for (int64_t reps : {int64_t(1), int64_t(12001)})
      for (int k : {0, 1}) {
        INFO(dname(dt) << " " << backend(k).name() << " " << reps * 7 << " elements");
        const Shape shape{reps * 7};
        Tensor x = from_vector(tiled(kSpecials, reps), shape, Device::Reference).to(dt).to(k ? Device::CPU : Device::Reference);
        for (const UCase& c : ucases) {
          Tensor y = Tensor::empty(shape, dt, x.device());
          backend(k).unary(c.op, x, y, c.a, c.b);
          expect_bitwise(y, c.want, c.name);
        }
        for (const BCase& c : bcases) {
          Tensor b = from_vector(tiled(*c.b, reps), shape, Device::Reference).to(dt).to(x.device());
          Tensor y = Tensor::empty(shape, dt, x.device());
          backend(k).binary(c.op, x, b, y);
          expect_bitwise(y, c.want, c.name);
        }
        Tensor ones = full(shape, 1.0, dt, x.device());
        Tensor out = from_vector(tiled(relu_out, reps), shape, Device::Reference).to(dt).to(x.device());
        Tensor gx = Tensor::empty(shape, dt, x.device());
        backend(k).binary(BinaryOp::PassPositive, ones, out, gx);
        expect_bitwise(gx, relu_grad, "relu backward (PassPositive)");
      }
}

// Expected outputs and indices printed by PyTorch 1.13's F.max_pool2d(..., return_indices=True) on the
// same inputs: the LAST NaN of a window is chosen (PyTorch's CPU kernel takes `val > max || isnan(val)`),
// a NaN beats +inf, and a window of -inf picks its first pixel.
TEST_CASE("both backends: max_pool2d picks PyTorch's index for NaN, inf and -inf windows") {
  // 8x16 plane: x = flat index - 64, with NaN, inf and -inf placed; 2x2/2 gives 8 outputs a row (the
  // float fast path's 8-wide blocks).
  std::vector<double> plane(128);
  for (int i = 0; i < 128; ++i) plane[size_t(i)] = i - 64;
  for (int i : {1, 16, 52, 66, 67, 83}) plane[size_t(i)] = kNaN;
  plane[37] = kInf;
  for (int i : {104, 105, 120, 121}) plane[size_t(i)] = -kInf;
  const std::vector<double> want2 = {kNaN, -45, -43, -41, -39, -37, -35, -33, -15, -13, kNaN, -9, -7, -5, -3, -1,
                                     17, kNaN, 21, 23, 25, 27, 29, 31, 49, 51, 53, 55, -kInf, 59, 61, 63};
  const std::vector<int64_t> idx2 = {16, 19, 21, 23, 25, 27, 29, 31, 49, 51, 52, 55, 57, 59, 61, 63,
                                     81, 83, 85, 87, 89, 91, 93, 95, 113, 115, 117, 119, 104, 123, 125, 127};
  // 4x5 plane through the general path: 3x3 stride 1, 3x3 stride 2 pad 1, 2x2 stride 1.
  const std::vector<double> small = {1, kNaN, 3, -kInf, 2, kNaN, 5, 6, kNaN, 0, 7, 8, 9, kInf, kNaN, -1, kNaN, -2, -3, -4};
  struct Case { Conv2dGeometry geo; const std::vector<double>* in; std::vector<double> want; std::vector<int64_t> idx; };
  const Case cases[] = {
      {{1, 1, 8, 16, 2, 2, 2, 2, 0, 0, 1, 1}, &plane, want2, idx2},
      {{1, 1, 4, 5, 3, 3, 1, 1, 0, 0, 1, 1}, &small, {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN}, {5, 8, 14, 16, 16, 14}},
      {{1, 1, 4, 5, 3, 3, 2, 2, 1, 1, 1, 1}, &small, {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN}, {5, 8, 8, 16, 16, 14}},
      {{1, 1, 4, 5, 2, 2, 1, 1, 0, 0, 1, 1}, &small, {kNaN, kNaN, kNaN, kNaN, kNaN, 9, kNaN, kNaN, kNaN, kNaN, kInf, kNaN},
       {5, 1, 8, 8, 5, 12, 8, 14, 16, 16, 13, 14}},
  };
  for (DType dt : kFloatTypes)
    for (const Case& c : cases)
      for (int k : {0, 1}) {
        INFO(dname(dt) << " " << backend(k).name() << " " << geom_str(c.geo));
        const Device dev = k ? Device::CPU : Device::Reference;
        Tensor x = from_vector(*c.in, input_shape(c.geo), Device::Reference).to(dt).to(dev);
        Tensor out = Tensor::empty(pooled_shape(c.geo), dt, dev), idx = Tensor::empty(pooled_shape(c.geo), DType::I64, dev);
        backend(k).max_pool2d(x, c.geo, out, idx);
        expect_bitwise(out, c.want, "max_pool2d values");
        CHECK(idx.to_vector<int64_t>() == c.idx);
      }
}

// Agreement on inputs full of NaN, +-inf and +-0 (random positions), for every unary and binary op that
// is defined there: NaN positions must match exactly (expect_agree), and the sign of every zero too.
TEST_CASE("agree: unary and binary ops on NaN, +-inf and +-0 inputs, bitwise") {
  Generator g(21);
  auto specials = [&](const Shape& s, DType dt) {
    Tensor pick = randint(0, 10, s, g, Device::Reference);
    Tensor u = uniform(s, -3, 3, g, DType::F64, Device::Reference);
    std::vector<double> v = u.to_vector<double>();
    const std::vector<int64_t> p = pick.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i)
      if (p[i] < 7) v[i] = kSpecials[size_t(p[i])];  // 70% specials, 30% ordinary numbers
    return both(from_vector(v, s, Device::Reference).to(dt));
  };
  auto signs_agree = [](const Pair& p, const std::string& what) {
    const auto r = values(p[0]), c = values(p[1]);
    int64_t bad = 0;
    for (size_t i = 0; i < r.size(); ++i)
      if (r[i] == 0 && c[i] == 0 && std::signbit(r[i]) != std::signbit(c[i])) ++bad;
    CHECK_MESSAGE(bad == 0, what << ": " << bad << " zeros with different signs");
  };
  const UnaryOp uops[] = {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Abs, UnaryOp::Tanh, UnaryOp::Sigmoid,
                          UnaryOp::Relu, UnaryOp::Sign, UnaryOp::Square, UnaryOp::LeakyRelu, UnaryOp::Clamp,
                          UnaryOp::AddScalar, UnaryOp::MulScalar};
  const BinaryOp bops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Minimum, BinaryOp::Maximum,
                           BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt, BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge,
                           BinaryOp::PassPositive};
  for (DType dt : kFloatTypes)
    for (const Shape& s : {Shape{7, 13}, Shape{301, 257}}) {
      for (UnaryOp op : uops) {
        const std::string what = "unary op " + std::to_string(int(op)) + " " + dname(dt) + " " + std::to_string(s[0]);
        Pair x = specials(s, dt), y = out_buffer(s, dt);
        for (int k : {0, 1}) backend(k).unary(op, x[k], y[k], op == UnaryOp::Clamp ? -0.5 : 0.1, 0.8);
        expect_agree(y, what);
        signs_agree(y, what);
      }
      for (BinaryOp op : bops) {
        const std::string what = "binary op " + std::to_string(int(op)) + " " + dname(dt) + " " + std::to_string(s[0]);
        Pair a = specials(s, dt), b = specials(s, dt), y = out_buffer(s, dt);
        for (int k : {0, 1}) backend(k).binary(op, a[k], b[k], y[k]);
        expect_agree(y, what);
        signs_agree(y, what);
      }
      // max_pool2d on such planes (2x2/2 fast path and a 3x3 general window): same values and indices.
      for (const Conv2dGeometry& geo : {Conv2dGeometry{1, 1, s[0] - 1, s[1] - 1, 2, 2, 2, 2, 0, 0, 1, 1},
                                        Conv2dGeometry{1, 1, s[0], s[1], 3, 3, 2, 2, 1, 1, 1, 1}}) {
        Pair x = specials(input_shape(geo), dt);
        Pair out = out_buffer(pooled_shape(geo), dt), idx = out_buffer(pooled_shape(geo), DType::I64);
        for (int k : {0, 1}) backend(k).max_pool2d(x[k], geo, out[k], idx[k]);
        expect_agree(out, "max_pool2d on specials " + geom_str(geo));
        expect_agree(idx, "max_pool2d idx on specials " + geom_str(geo));
      }
    }
}

TEST_CASE("agree: lstm_cell and lstm_cell_backward") {
  Generator g(77);
  for (DType dt : kFloatTypes) {
    for (const auto& shape : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 5}, {37, 20}, {128, 128}}) {
      // Named copies, not a structured binding: doctest's INFO captures in a lambda (C++20 for bindings).
      const int64_t rows = shape.first, H = shape.second;
      INFO(dname(dt) << " rows " << rows << " H " << H);
      // Pre-activations from -12 to 12 reach the saturated ends of sigmoid and tanh.
      Pair gates = uniform_pair({rows, 4 * H}, -12, 12, g, dt), c_prev = uniform_pair({rows, H}, -2, 2, g, dt);
      Pair c = out_buffer({rows, H}, dt), h = out_buffer({rows, H}, dt);
      for (int k = 0; k < 2; ++k) backend(k).lstm_cell(gates[k], c_prev[k], c[k], h[k]);
      expect_agree(gates, "activations");
      expect_agree(c, "c");
      expect_agree(h, "h");
      Pair dh = uniform_pair({rows, H}, -1, 1, g, dt), dc = uniform_pair({rows, H}, -1, 1, g, dt);
      Pair dgates = out_buffer({rows, 4 * H}, dt), dc_prev = out_buffer({rows, H}, dt);
      // Both backends start from the reference activations and cell states (so only the backward differs).
      Pair act = both(gates[0]), cc = both(c[0]);
      for (int k = 0; k < 2; ++k)
        backend(k).lstm_cell_backward(act[k], c_prev[k], cc[k], dh[k], dc[k], dgates[k], dc_prev[k]);
      expect_agree(dgates, "dgates");
      expect_agree(dc_prev, "dc_prev");
    }
  }
}

TEST_CASE("reference: lstm_cell by hand") {
  // One row, H = 1: gates (i, f, g, o) pre-activations 0, 0, 0, 0 -> 0.5, 0.5, 0, 0.5; c = 0.5 * 2 = 1.
  Tensor gates = zeros({1, 4}, DType::F64, Device::Reference);
  Tensor c_prev = full({1, 1}, 2.0, DType::F64, Device::Reference);
  Tensor c = zeros({1, 1}, DType::F64, Device::Reference), h = zeros({1, 1}, DType::F64, Device::Reference);
  reference_backend().lstm_cell(gates, c_prev, c, h);
  CHECK(gates.to_vector<double>() == std::vector<double>{0.5, 0.5, 0.0, 0.5});
  CHECK(c.item() == doctest::Approx(1.0));
  CHECK(h.item() == doctest::Approx(0.5 * std::tanh(1.0)));
}

TEST_CASE("reference: the threat-model projections by hand") {
  // L-inf: clamp into [x - eps, x + eps] and [0,1]; a NaN gives x.
  Tensor x = from_vector(std::vector<float>{0.5f, 0.0f, 1.0f, 0.3f}, {}, Device::Reference);
  Tensor adv = from_vector(std::vector<float>{0.9f, -1.0f, std::nanf(""), 0.31f}, {}, Device::Reference);
  Tensor out = zeros({4}, DType::F32, Device::Reference);
  reference_backend().project_linf(adv, x, 0.25, out);
  CHECK(out.to_vector<float>() == std::vector<float>{0.75f, 0.0f, 1.0f, 0.31f});
  // Rounding toward x: the float nearest 0.1f + 0.2 lies above it; the result is the float just below.
  Tensor x1 = full({1}, 0.1, DType::F32, Device::Reference), a1 = full({1}, 1.0, DType::F32, Device::Reference);
  Tensor o1 = zeros({1}, DType::F32, Device::Reference);
  reference_backend().project_linf(a1, x1, 0.2, o1);
  const float got = o1.to_vector<float>()[0], x1f = 0.1f;
  CHECK(double(got) - double(x1f) <= 0.2);
  CHECK(double(std::nextafter(got, 1.0f)) - double(x1f) > 0.2);
  // L2: (0.3, 0.4) has norm 0.5; into the ball of radius 0.25 it halves. A NaN entry counts as 0 and stays x.
  Tensor x2 = zeros({2, 3}, DType::F64, Device::Reference);
  Tensor a2 = from_vector(std::vector<double>{0.3, 0.4, kNaN, 0.1, 0.0, 0.0}, {2, 3}, Device::Reference);
  Tensor o2 = zeros({2, 3}, DType::F64, Device::Reference);
  reference_backend().project_l2(a2, x2, 2, 0.25, o2);
  auto v = o2.to_vector<double>();
  CHECK(v[0] == doctest::Approx(0.15));
  CHECK(v[1] == doctest::Approx(0.2));
  CHECK(v[2] == 0.0);
  CHECK(v[3] == doctest::Approx(0.1));  // already inside: unchanged
  CHECK(v[4] == 0.0);
}

TEST_CASE("agree: the threat-model projections, bit for bit, at the [0,1] borders and with NaN") {
  Generator g(91);
  for (DType dt : kFloatTypes)
    for (const Shape& shape : std::vector<Shape>{{5, 3, 4, 4}, {1, 1}, {3, 7}, {0, 3}}) {
      INFO(dname(dt) << " " << shape_str(shape));
      // x with many values exactly at 0 and 1; adv up to 1 away from it (far outside small balls), 5% NaN.
      std::vector<double> xv = values(uniform(shape, -0.3, 1.3, g, DType::F64, Device::Reference));
      std::vector<double> noise = values(uniform(shape, -1, 1, g, DType::F64, Device::Reference));
      std::vector<double> pick = values(uniform(shape, 0, 1, g, DType::F64, Device::Reference));
      std::vector<double> av(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) {
        xv[i] = std::min(std::max(xv[i], 0.0), 1.0);
        av[i] = pick[i] < 0.05 ? kNaN : xv[i] + noise[i];
      }
      Pair x = both(from_vector(xv, shape, Device::Reference).to(dt));
      Pair adv = both(from_vector(av, shape, Device::Reference).to(dt));
      for (double eps : {0.0, 0.03, 0.3, 2.0}) {
        INFO("eps " << eps);
        Pair linf = out_buffer(shape, dt), l2 = out_buffer(shape, dt);
        for (int k = 0; k < 2; ++k) {
          backend(k).project_linf(adv[k], x[k], eps, linf[k]);
          backend(k).project_l2(adv[k], x[k], shape[0], eps, l2[k]);
        }
        CHECK(bitwise_equal(linf[0], linf[1]));
        CHECK(bitwise_equal(l2[0], l2[1]));
        CHECK(all_finite(linf[0]));
      }
    }
}

TEST_CASE("agree: random values are bit-identical and depend only on (seed, stream, offset + i)") {
  struct Case { RandomKind kind; DType dt; double a, b; const char* name; };
  const Case cases[] = {{RandomKind::Uniform, DType::F32, -0.3, 0.7, "uniform f32"},
                        {RandomKind::Uniform, DType::F64, -0.3, 0.7, "uniform f64"},
                        {RandomKind::Normal, DType::F32, 1, 2, "normal f32"},
                        {RandomKind::Normal, DType::F64, 1, 2, "normal f64"},
                        {RandomKind::Randint, DType::I64, -3, 1000, "randint"}};
  const int64_t n = 10007;  // large and odd: spans several parallel chunks of the cpu backend
  for (const Case& c : cases) {
    INFO(std::string(c.name));
    auto fill = [&](int k, int64_t count, uint64_t seed, uint64_t stream, uint64_t offset) {
      Tensor t = Tensor::empty({count}, c.dt, k == 0 ? Device::Reference : Device::CPU);
      backend(k).random(c.kind, t, seed, stream, offset, c.a, c.b);
      return t;
    };
    for (int k : {0, 1}) {
      INFO(std::string(backend(k).name()));
      Tensor full_run = fill(k, n, 42, 5, 1000);
      CHECK(bitwise_equal(full_run, fill(0, n, 42, 5, 1000)));  // same as the reference, bit for bit
      // A later offset gives the tail of the same sequence.
      Tensor tail = fill(k, n - 3, 42, 5, 1003);
      CHECK(bitwise_equal(tail, full_run.as_strided({n - 3}, {1}, 3).clone()));
      // Another stream or seed gives other values.
      CHECK_FALSE(bitwise_equal(full_run, fill(k, n, 42, 6, 1000)));
      CHECK_FALSE(bitwise_equal(full_run, fill(k, n, 43, 5, 1000)));
      if (c.kind != RandomKind::Normal) {
        auto v = values(full_run);
        bool in_range = true;
        // The bounds as the dtype holds them (float(-0.3) < -0.3); the upper one is never reached.
        const double lo = c.dt == DType::F32 ? double(float(c.a)) : c.a, hi = c.dt == DType::F32 ? double(float(c.b)) : c.b;
        for (double x : v) in_range = in_range && x >= lo && x < hi;
        CHECK(in_range);
      }
    }
  }
  // Through the Tensor API: the same generator state gives the same values on both devices.
  Generator g1(99), g2(99);
  CHECK(bitwise_equal(rand({7, 13}, g1, DType::F32, Device::Reference), rand({7, 13}, g2, DType::F32, Device::CPU)));
  CHECK(bitwise_equal(randn({5}, g1, DType::F64, Device::Reference), randn({5}, g2, DType::F64, Device::CPU)));
  CHECK(bitwise_equal(randint(0, 10, {9}, g1, Device::Reference), randint(0, 10, {9}, g2, Device::CPU)));
}

TEST_CASE("conv_gemm: the float kernel against a double-precision product, every tile shape") {
  // Rows 1..17 (tails of the 8-row tiles), columns around the 16-float vectors and 48-column tiles,
  // K around the 256 block (0: C is zeroed or kept), row strides wider than N, accumulating or not.
  Generator g(14);
  for (int64_t M : {1, 3, 7, 8, 9, 17})
    for (int64_t N : {1, 15, 16, 17, 33, 48, 50, 97})
      for (int64_t K : {0, 1, 5, 256, 300})
        for (bool accumulate : {false, true}) {
          INFO("M " << M << " N " << N << " K " << K << " accumulate " << accumulate);
          const int64_t ldb = N + 3, ldc = N + 2;
          auto at = uniform({K * M}, -1, 1, g, DType::F32).to_vector<float>();
          auto b = uniform({K * ldb + conv_gemm::kSlack}, -1, 1, g, DType::F32).to_vector<float>();
          auto c = uniform({M * ldc}, -1, 1, g, DType::F32).to_vector<float>();
          const std::vector<float> c0 = c;
          conv_gemm::gemm(M, N, K, at.data(), b.data(), ldb, c.data(), ldc, accumulate);
          int64_t bad = 0;
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const size_t o = size_t(i * ldc + j);
              if (j >= N) {  // outside C's N columns: untouched
                bad += c[o] != c0[o];
                continue;
              }
              double want = accumulate ? double(c0[o]) : 0.0, scale = std::fabs(want);
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(at[size_t(k * M + i)]) * double(b[size_t(k * ldb + j)]);
                want += p, scale += std::fabs(p);
              }
              bad += std::fabs(double(c[o]) - want) > 1e-6 * (scale + 1);
            }
          CHECK(bad == 0);
        }
}
