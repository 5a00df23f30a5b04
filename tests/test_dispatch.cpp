// The cpu backend's CPU paths (core/cpu_features.h): each path this machine can run is forced in turn and
// checked against the reference backend on convolutions, GEMM, pooling and element-wise ops; across
// paths, the ops without matrix products give the same bits, and switching paths switches kernels.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "advgrad/core/backend.h"
#include "advgrad/core/cpu_features.h"
#include "advgrad/core/error.h"
#include "advgrad/core/tensor.h"

using namespace advgrad;

namespace {

// Restores the path chosen at start-up when a test case ends.
struct PathGuard {
  CpuPath saved = cpu_path();
  ~PathGuard() { set_cpu_path(saved); }
};

// Largest |a - b| / (1 + |b|) over two dense tensors of one shape (NaN where one is NaN and not the other).
double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    const double d = std::fabs(x[i] - y[i]) / (1 + std::fabs(y[i]));
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

// The ops under test, run on `be`; inputs made from a fixed seed on the reference device, then copied.
struct Results {
  std::vector<Tensor> products;  // gemm, conv2d, conv2d_backward_input, conv2d_backward_weight
  std::vector<Tensor> others;    // pooling, unary, binary, reduce, softmax, random
};

Results run_ops(Backend& be, Device dev) {
  Generator g(2024);
  auto input = [&](const Shape& s) { return uniform(s, -1, 1, g, DType::F32, Device::Reference).to(dev); };
  Results r;
  // GEMM 70x90x130, one operand transposed: several kernel tiles and a remainder.
  {
    Tensor a = input({130, 70}), b = input({130, 90}), c = Tensor::empty({70, 90}, DType::F32, dev);
    be.gemm(true, false, 1, 70, 90, 130, 1.0, a, 0, b, 0, 0.0, c, 0);
    r.products.push_back(c);
  }
  // A 5x5 "same" convolution 12 -> 9 channels (K = 300: two blocks of the float kernel), batch 3.
  Conv2dGeometry geo{3, 12, 10, 11, 5, 5, 1, 1, 2, 2, 1, 1};
  const Shape x_shape{3, 12, 10, 11}, w_shape{9, 12, 5, 5}, o_shape{3, 9, geo.out_h(), geo.out_w()};
  {
    Tensor x = input(x_shape), w = input(w_shape), bias = input({9}), go = input(o_shape);
    Tensor out = Tensor::empty(o_shape, DType::F32, dev), gx = Tensor::empty(x_shape, DType::F32, dev),
           gw = Tensor::empty(w_shape, DType::F32, dev);
    be.conv2d(x, w, bias, geo, out);
    be.conv2d_backward_input(go, w, geo, gx);
    be.conv2d_backward_weight(go, x, geo, gw);
    r.products.insert(r.products.end(), {out, gx, gw});
  }
  // 2x2/2 max pooling (the fast path) and 3x3/2 average pooling with padding, forward and backward.
  {
    Conv2dGeometry mp{2, 3, 12, 14, 2, 2, 2, 2, 0, 0, 1, 1}, ap{2, 3, 12, 14, 3, 3, 2, 2, 1, 1, 1, 1};
    const Shape in{2, 3, 12, 14}, mp_out{2, 3, mp.out_h(), mp.out_w()}, ap_out{2, 3, ap.out_h(), ap.out_w()};
    Tensor x = input(in), gmo = input(mp_out), gao = input(ap_out);
    Tensor mo = Tensor::empty(mp_out, DType::F32, dev), idx = Tensor::empty(mp_out, DType::I64, dev),
           mgx = Tensor::empty(in, DType::F32, dev), ao = Tensor::empty(ap_out, DType::F32, dev),
           agx = Tensor::empty(in, DType::F32, dev);
    be.max_pool2d(x, mp, mo, idx);
    be.max_pool2d_backward(gmo, idx, mp, mgx);
    be.avg_pool2d(x, ap, ao);
    be.avg_pool2d_backward(gao, ap, agx);
    r.others.insert(r.others.end(), {mo, idx, mgx, ao, agx});
  }
  // Element-wise maps over 70000 elements (several chunks), a broadcast binary op, a reduction, softmax.
  {
    Tensor x = input({7, 10000}), y = input({7, 10000}), row = input({1, 10000});
    for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Relu, UnaryOp::Square}) {
      Tensor out = Tensor::empty({7, 10000}, DType::F32, dev);
      be.unary(op, x, out, 0, 0);
      r.others.push_back(out);
    }
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum}) {
      Tensor out = Tensor::empty({7, 10000}, DType::F32, dev);
      be.binary(op, x, op == BinaryOp::Mul ? row.as_strided({7, 10000}, {0, 1}, 0) : y, out);
      r.others.push_back(out);
    }
    Tensor sum = Tensor::empty({7}, DType::F32, dev), soft = Tensor::empty({7, 10000}, DType::F32, dev);
    be.reduce(ReduceOp::Sum, x, 7, 10000, 1, sum);
    be.softmax(x, 7, 10000, 1, false, soft);
    Tensor noise = Tensor::empty({5000}, DType::F32, dev);
    be.random(RandomKind::Normal, noise, 7, 1, 0, 0.5, 2.0);
    r.others.insert(r.others.end(), {sum, soft, noise});
  }
  return r;
}

}  // namespace

TEST_CASE("cpu paths: the built and runnable lists, names, and refusals") {
  const std::vector<CpuPath> built = cpu_paths_built(), runnable = cpu_paths_runnable();
  REQUIRE(!runnable.empty());
  for (CpuPath p : runnable) CHECK(cpu_path_runnable(p));
  CHECK(cpu_path_runnable(cpu_path()));
  const char* forced = std::getenv("ADVGRAD_CPU_PATH");  // else the fastest runnable path is chosen
  CHECK(cpu_path() == (forced && *forced ? parse_cpu_path(forced) : runnable.front()));
  for (CpuPath p : {CpuPath::Baseline, CpuPath::Avx2, CpuPath::Avx512, CpuPath::Native})
    CHECK(parse_cpu_path(cpu_path_name(p)) == p);
  CHECK_THROWS_WITH_AS(parse_cpu_path("sse9"), doctest::Contains("unknown CPU path 'sse9'"), ValueError);
#if defined(__x86_64__)
  if (built.size() == 3) {  // the portable x86-64 build: all three copies, native is not one of them
    CHECK(built == std::vector<CpuPath>{CpuPath::Avx512, CpuPath::Avx2, CpuPath::Baseline});
    CHECK(cpu_path_runnable(CpuPath::Baseline));
    CHECK_THROWS_WITH_AS(set_cpu_path(CpuPath::Native), doctest::Contains("this binary has no native path"),
                         ValueError);
    if (__builtin_cpu_supports("avx512f")) CHECK(cpu_path_runnable(CpuPath::Avx512));
    if (!__builtin_cpu_supports("avx2"))
      CHECK_THROWS_WITH_AS(set_cpu_path(CpuPath::Avx2), doctest::Contains("this CPU lacks AVX2 and FMA"),
                           ValueError);
  }
#endif
  if (built.size() == 1) CHECK_THROWS_AS(set_cpu_path(CpuPath::Avx2), ValueError);
}

TEST_CASE("cpu paths: each runnable path agrees with the reference backend") {
  PathGuard guard;
  const Results ref = run_ops(reference_backend(), Device::Reference);
  for (CpuPath p : cpu_paths_runnable()) {
    set_cpu_path(p);
    INFO("path " << cpu_path_name(p));
    const Results got = run_ops(cpu_backend(), Device::CPU);
    for (size_t i = 0; i < ref.products.size(); ++i) CHECK_MESSAGE(max_rel_diff(got.products[i], ref.products[i]) < 1e-5, "product ", i);
    for (size_t i = 0; i < ref.others.size(); ++i) CHECK_MESSAGE(max_rel_diff(got.others[i], ref.others[i]) < 1e-5, "op ", i);
  }
}

TEST_CASE("cpu paths: a path switch changes the kernels; ops without matrix products give the same bits") {
  PathGuard guard;
  std::set<const Backend*> instances;
  set_cpu_path(cpu_paths_runnable().front());
  const Results fastest = run_ops(cpu_backend(), Device::CPU);
  set_cpu_path(cpu_paths_runnable().back());  // the slowest (baseline): the yardstick
  const Results base = run_ops(cpu_backend(), Device::CPU);
  for (CpuPath p : cpu_paths_runnable()) {
    set_cpu_path(p);
    CHECK(cpu_path() == p);
    instances.insert(&cpu_backend());
    INFO("path " << cpu_path_name(p));
    const Results got = run_ops(cpu_backend(), Device::CPU);
    for (size_t i = 0; i < base.others.size(); ++i)
      CHECK_MESSAGE(bitwise_equal(got.others[i], base.others[i]), "op ", i, " differs from the baseline path");
    // The same path twice: bit-identical (determinism holds per path).
    int same = 0, same_fastest = 0;  // not a promise (FMA or not, vector widths): reported for the docs
    for (size_t i = 0; i < got.products.size(); ++i) {
      same += bitwise_equal(got.products[i], base.products[i]);
      same_fastest += bitwise_equal(got.products[i], fastest.products[i]);
    }
    MESSAGE(std::string(cpu_path_name(p)), ": of ", got.products.size(), " products (gemm, conv2d, its input and ",
            "weight gradients), ", same, " bit-identical to the baseline path's, ", same_fastest, " to the ",
            std::string(cpu_path_name(cpu_paths_runnable().front())), " path's");
    const Results again = run_ops(cpu_backend(), Device::CPU);
    for (size_t i = 0; i < got.products.size(); ++i) CHECK(bitwise_equal(again.products[i], got.products[i]));
  }
  CHECK(instances.size() == cpu_paths_runnable().size());  // each path has its own copy of the backend
}
