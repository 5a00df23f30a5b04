// Tensor basics: creation, views and storage sharing, broadcasting, element access, printing, RNG, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"

using namespace advgrad;

TEST_CASE("creation functions") {
  for (Device dev : {Device::CPU, Device::Reference}) {
    CHECK(zeros({2, 3}, DType::F32, dev).to_vector<float>() == std::vector<float>(6, 0.f));
    CHECK(ones({4}, DType::F64, dev).to_vector<double>() == std::vector<double>(4, 1.0));
    CHECK(full({2}, 7.5, DType::F32, dev).to_vector<float>() == std::vector<float>{7.5f, 7.5f});
    CHECK(arange(5, DType::I64, dev).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
    CHECK(arange(1.0, 2.0, 0.25, DType::F64, dev).to_vector<double>() == std::vector<double>{1, 1.25, 1.5, 1.75});
    Tensor s = scalar_tensor(3.0, DType::F64, dev);
    CHECK(s.dim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.item() == 3.0);
  }
  Tensor v = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(v.shape() == Shape{2, 3});
  CHECK(v.at({1, 2}) == 6.0);
  CHECK(v.at({-1, 0}) == 4.0);
  double raw[4] = {1.5, 2.5, 3.5, 4.5};
  Tensor b = from_blob(raw, {2, 2}, DType::F64);
  raw[0] = 100;  // from_blob copies
  CHECK(b.at({0, 0}) == 1.5);
  CHECK_THROWS_AS(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), ShapeError);
  CHECK_THROWS_AS(zeros({2, -1}), ValueError);
  CHECK_THROWS_AS(v.at({2, 0}), ValueError);
  CHECK_THROWS_AS(v.at({0}), ShapeError);
  CHECK_THROWS_AS(v.item(), ShapeError);
  CHECK_THROWS_AS(v.data<double>(), TypeError);
  CHECK_THROWS_AS(Tensor().shape(), ValueError);
}

TEST_CASE("rank 6 tensors and broadcasting") {
  Tensor a = ones({2, 1, 3, 1, 2, 1}, DType::F64);
  Tensor b = arange(4, DType::F64);  // [4] broadcasts against the last dim
  Tensor c = add(a, b);
  CHECK(c.shape() == Shape{2, 1, 3, 1, 2, 4});
  CHECK(c.at({1, 0, 2, 0, 1, 3}) == 4.0);
  CHECK(broadcast_shapes({5, 1, 4}, {3, 1}, "t") == Shape{5, 3, 4});
  try {
    add(ones({2, 3}), ones({4}));
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    std::string m = e.what();
    CHECK(m.find("add") != std::string::npos);
    CHECK(m.find("[2,3]") != std::string::npos);
    CHECK(m.find("[4]") != std::string::npos);
  }
}

TEST_CASE("views share storage: reshape, first-axis slice, permute, expand") {
  Tensor x = arange(24, DType::F32).as_strided({2, 3, 4}, {12, 4, 1}, 0);
  Tensor r = reshape(x, {6, 4});
  CHECK(r.shares_storage_with(x));
  CHECK(r.is_contiguous());
  Tensor f = flatten(x);
  CHECK(f.shares_storage_with(x));
  CHECK(f.shape() == Shape{24});
  Tensor s = slice(x, 0, 1, 2);  // second sample: a dense view at an offset
  CHECK(s.shares_storage_with(x));
  CHECK(s.is_contiguous());
  CHECK(s.offset() == 12);
  CHECK(s.at({0, 0, 0}) == 12.0);
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shares_storage_with(x));
  CHECK_FALSE(p.is_contiguous());
  CHECK(p.at({3, 1, 2}) == x.at({1, 2, 3}));
  Tensor pc = contiguous(p);
  CHECK(pc.is_contiguous());
  CHECK_FALSE(pc.shares_storage_with(x));
  CHECK(pc.to_vector<float>() == p.to_vector<float>());
  CHECK(p.dense().is_contiguous());
  Tensor e = expand(reshape(arange(3, DType::F32), {3, 1}), {3, 5});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(e.at({2, 4}) == 2.0);
  // Writing through a view is visible in the base tensor.
  {
    NoGradGuard ng;
    s.fill_(-1.0);
  }
  CHECK(x.at({1, 2, 3}) == -1.0);
  CHECK(x.at({0, 2, 3}) == 11.0);
  CHECK_THROWS_AS(e.fill_(0.0), ValueError);  // expanded views cannot be written
  CHECK_THROWS_AS(x.as_strided({100}, {1}, 0), ValueError);  // out of storage
  CHECK_THROWS_AS(reshape(x, {5, 5}), ShapeError);
}

TEST_CASE("in-place updates, clone, dtype and device conversion") {
  Tensor a = from_vector(std::vector<float>{1, -2, 3});
  uint64_t v0 = a.version();
  a.add_(from_vector(std::vector<float>{1, 1, 1}), 2.0);
  CHECK(a.to_vector<float>() == std::vector<float>{3, 0, 5});
  CHECK(a.version() > v0);
  a.mul_(0.5).clamp_(0.0, 2.0);
  CHECK(a.to_vector<float>() == std::vector<float>{1.5f, 0, 2});
  a.copy_(scalar_tensor(4.0));  // broadcasts
  CHECK(a.to_vector<float>() == std::vector<float>{4, 4, 4});
  Tensor c = a.clone();
  CHECK_FALSE(c.shares_storage_with(a));
  Tensor d = a.to(DType::F64);
  CHECK(d.dtype() == DType::F64);
  CHECK(d.to_vector<double>() == std::vector<double>{4, 4, 4});
  Tensor r = a.to(Device::Reference);
  CHECK(r.device() == Device::Reference);
  CHECK(r.to_vector<float>() == a.to_vector<float>());
  CHECK_THROWS_AS(add(a, r), TypeError);   // devices differ
  CHECK_THROWS_AS(add(a, d), TypeError);   // dtypes differ
  Tensor labels = from_vector(std::vector<int64_t>{2, 0});
  CHECK(labels.to(DType::F32).to_vector<float>() == std::vector<float>{2, 0});
}

TEST_CASE("printing and comparisons") {
  Tensor t = from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::ostringstream os;
  os << t;
  CHECK(os.str().find("float32[2,2] cpu") != std::string::npos);
  CHECK(os.str().find("[[1, 2],") != std::string::npos);
  CHECK(os.str().find("[3, 4]]") != std::string::npos);
  CHECK(zeros({1000}).to_string().find("1000 elements") != std::string::npos);
  Tensor u = from_vector(std::vector<float>{1, 2, 3, 4.00001f}, {2, 2});
  CHECK(allclose(t, u, 1e-4));
  CHECK_FALSE(allclose(t, u, 1e-7, 0));
  CHECK_FALSE(bitwise_equal(t, u));
  CHECK(bitwise_equal(t, t.clone()));
  CHECK(max_abs_diff(t, u) == doctest::Approx(1e-5).epsilon(0.1));
  Tensor n = from_vector(std::vector<float>{NAN});
  CHECK_FALSE(allclose(n, n));
}

TEST_CASE("counter-based generator: values depend on seed, stream and index only") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = rand({1000}, g1), b = rand({1000}, g2), c = rand({1000}, g3);
  CHECK(bitwise_equal(a, b));
  CHECK_FALSE(bitwise_equal(a, c));
  // The second draw continues the counter: it equals elements [1000, 2000) of one big draw.
  Tensor a2 = rand({1000}, g1);
  Generator g4(42);
  Tensor big = rand({2000}, g4);
  CHECK(bitwise_equal(a2, slice(big, 0, 1000, 2000).clone()));
  // Streams are independent.
  Generator s1 = Generator(42).fork(1);
  CHECK_FALSE(bitwise_equal(rand({1000}, s1), a));
  // Ranges and rough moments.
  auto u = a.to_vector<float>();
  double mean = 0;
  for (float x : u) {
    CHECK(x >= 0.f);
    CHECK(x < 1.f);
    mean += x / u.size();
  }
  CHECK(mean == doctest::Approx(0.5).epsilon(0.05));
  Generator gn(1);
  auto n = randn({20000}, gn, DType::F64).to_vector<double>();
  double m = 0, v = 0;
  for (double x : n) m += x / n.size();
  for (double x : n) v += (x - m) * (x - m) / n.size();
  CHECK(std::fabs(m) < 0.03);
  CHECK(v == doctest::Approx(1.0).epsilon(0.05));
  Generator gi(5);
  auto ints = randint(3, 7, {2000}, gi).to_vector<int64_t>();
  std::set<int64_t> seen(ints.begin(), ints.end());
  CHECK(seen == std::set<int64_t>{3, 4, 5, 6});
  Generator gu(9);
  for (float x : uniform({500}, -0.1, 0.1, gu).to_vector<float>()) CHECK(std::fabs(x) <= 0.1f);
  CHECK_THROWS_AS(randint(3, 3, {2}, gi), ValueError);
}

TEST_CASE("non-differentiable ops") {
  Tensor x = from_vector(std::vector<float>{-2, 0, 3, 1}, {2, 2});
  CHECK(sign(x).to_vector<float>() == std::vector<float>{-1, 0, 1, 1});
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(argmax(x, 0, true).shape() == Shape{1, 2});
  Tensor y = from_vector(std::vector<float>{-2, 1, 0, 1}, {2, 2});
  CHECK(eq(x, y).to_vector<float>() == std::vector<float>{1, 0, 0, 1});
  CHECK(lt(x, y).to_vector<float>() == std::vector<float>{0, 1, 0, 0});
  CHECK(ge(x, y).to_vector<float>() == std::vector<float>{1, 0, 1, 1});
  Tensor labels = from_vector(std::vector<int64_t>{2, 0});
  Tensor oh = one_hot(labels, 3);
  CHECK(oh.shape() == Shape{2, 3});
  CHECK(oh.to_vector<float>() == std::vector<float>{0, 0, 1, 1, 0, 0});
  CHECK_THROWS_AS(one_hot(from_vector(std::vector<int64_t>{3}), 3), ValueError);
  CHECK(sum(eq(argmax(x, 1), from_vector(std::vector<int64_t>{1, 1}))).item() == 1.0);  // int64 accuracy count
}
