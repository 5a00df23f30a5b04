// The engine: backward vs grad, NoGradGuard, detach, frozen inputs, version counters, deep graphs, custom ops.
#include <doctest/doctest.h>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/function.h"
#include "advgrad/autograd/gradcheck.h"
#include "advgrad/autograd/ops.h"

using namespace advgrad;

TEST_CASE("backward accumulates into leaves; grad() leaves .grad untouched") {
  Tensor x = from_vector(std::vector<double>{1, 2, 3}).requires_grad_();
  Tensor w = from_vector(std::vector<double>{0.5, -1, 2}).requires_grad_();
  Tensor loss = sum(mul(mul(x, w), x));  // sum w x^2: d/dx = 2 w x, d/dw = x^2
  backward(loss);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, -4, 12});
  CHECK(w.grad().to_vector<double>() == std::vector<double>{1, 4, 9});
  backward(loss);  // accumulates
  CHECK(w.grad().to_vector<double>() == std::vector<double>{2, 8, 18});

  Tensor x_grad_before = x.grad(), w_grad_before = w.grad();
  auto g = grad({loss}, {x});
  CHECK(g[0].to_vector<double>() == std::vector<double>{1, -4, 12});
  CHECK(bitwise_equal(x.grad(), x_grad_before));  // unchanged
  CHECK(bitwise_equal(w.grad(), w_grad_before));
  CHECK((x.grad().impl_ptr() == x_grad_before.impl_ptr()));
}

TEST_CASE("grad() evaluates only the part of the graph leading to its inputs") {
  // A custom op records which input gradients the engine asked for.
  std::vector<bool> asked;
  auto spy = [&](const Tensor& a, const Tensor& b) {
    Tensor out;
    {
      NoGradGuard ng;
      out = mul(a, b);
    }
    SavedTensor sa(a, "spy"), sb(b, "spy");
    return record("spy", {a, b}, out, [&asked, sa, sb](const Tensor& g, const std::vector<bool>& need) {
      asked = need;
      return std::vector<Tensor>{need[0] ? mul(g, sb.unpack()) : Tensor(), need[1] ? mul(g, sa.unpack()) : Tensor()};
    });
  };
  Tensor x = from_vector(std::vector<double>{1, 2}).requires_grad_();
  Tensor weight = from_vector(std::vector<double>{3, 4}).requires_grad_();
  auto g = grad({sum(spy(x, weight))}, {x});
  CHECK(asked == std::vector<bool>{true, false});  // the weight's gradient was never computed
  CHECK(g[0].to_vector<double>() == std::vector<double>{3, 4});
  CHECK_FALSE(weight.grad().defined());

  // Frozen parameter: requires_grad false means no edge at all, even under backward().
  Tensor frozen = from_vector(std::vector<double>{3, 4});
  backward(sum(spy(x, frozen)));
  CHECK(asked == std::vector<bool>{true, false});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 4});
  CHECK_FALSE(frozen.grad().defined());
}

TEST_CASE("a graph is recorded only when needed") {
  Tensor a = ones({2}, DType::F64), b = ones({2}, DType::F64).requires_grad_();
  CHECK_FALSE(add(a, a).requires_grad());
  CHECK(add(a, b).requires_grad());
  CHECK((add(a, b).grad_fn() != nullptr));
  {
    NoGradGuard ng;
    Tensor c = add(a, b);
    CHECK_FALSE(c.requires_grad());
    CHECK((c.grad_fn() == nullptr));
    {
      EnableGradGuard eg;
      CHECK(add(a, b).requires_grad());
    }
  }
  CHECK(GradMode::is_enabled());
  Tensor m = mul(b, 2.0);
  Tensor d = m.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.shares_storage_with(m));
  CHECK_THROWS_AS(backward(sum(d)), AutogradError);
  CHECK_THROWS_AS(mul(b, 2.0).requires_grad_(false), AutogradError);  // not a leaf
  CHECK_THROWS_AS(ones({2}, DType::I64).requires_grad_(), TypeError);
}

TEST_CASE("grad() errors and options") {
  Tensor x = ones({2}, DType::F64).requires_grad_();
  Tensor unused = ones({2}, DType::F64).requires_grad_();
  Tensor y = sum(mul(x, 3.0));
  CHECK_THROWS_AS(grad({y}, {unused}), AutogradError);
  auto g = grad({y}, {x, unused}, {}, /*allow_unused=*/true);
  CHECK(g[0].to_vector<double>() == std::vector<double>{3, 3});
  CHECK_FALSE(g[1].defined());
  CHECK_THROWS_AS(backward(mul(x, 2.0)), ShapeError);  // non-scalar root needs an explicit gradient
  backward(mul(x, 2.0), from_vector(std::vector<double>{1, 10}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 20});
  // Gradient w.r.t. an intermediate tensor.
  Tensor h = mul(x, x);
  Tensor z = sum(mul(h, 5.0));
  CHECK(grad({z}, {h})[0].to_vector<double>() == std::vector<double>{5, 5});
  // The same input twice, and several outputs with weights.
  auto g2 = grad({sum(x), sum(mul(x, x))}, {x, x}, {scalar_tensor(1, DType::F64), scalar_tensor(2, DType::F64)});
  CHECK(g2[0].to_vector<double>() == std::vector<double>{5, 5});
  CHECK(g2[1].to_vector<double>() == std::vector<double>{5, 5});
}

TEST_CASE("version counters catch in-place changes of saved tensors") {
  Tensor x = from_vector(std::vector<double>{0.5, 1.5}).requires_grad_();
  Tensor y = exp(x);  // saves its output
  Tensor z = sum(y);
  {
    NoGradGuard ng;
    Tensor alias = y.detach();  // shares storage with y
    alias.mul_(2.0);
  }
  try {
    backward(z);
    FAIL("backward through a modified saved tensor must throw");
  } catch (const AutogradError& e) {
    CHECK(std::string(e.what()).find("exp") != std::string::npos);
    CHECK(std::string(e.what()).find("modified in place") != std::string::npos);
  }
  // In-place on a tensor that requires grad is refused while grad mode is on, allowed under NoGradGuard.
  CHECK_THROWS_AS(x.add_(ones({2}, DType::F64)), AutogradError);
  {
    NoGradGuard ng;
    x.add_(ones({2}, DType::F64), 0.5);
  }
  CHECK(x.to_vector<double>() == std::vector<double>{1.0, 2.0});
}

TEST_CASE("a chain of 100,000 ops neither overflows on backward nor on destruction") {
  Tensor x = from_vector(std::vector<double>{1.0}).requires_grad_();
  {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = add(y, 1e-5);  // each step one node
    Tensor y2 = mul(y, 2.0);
    backward(sum(y2));
    CHECK(x.grad().item() == doctest::Approx(2.0));
    CHECK(y.item() == doctest::Approx(2.0));
  }  // the whole chain is released here
  Tensor w = from_vector(std::vector<double>{2.0}).requires_grad_();
  Tensor z = w;
  for (int i = 0; i < 100000; ++i) z = mul(z, 1.0);
  auto g = grad({sum(z)}, {w});
  CHECK(g[0].item() == 1.0);
}

TEST_CASE("backward returning a wrong shape is reported with the op's name") {
  Tensor x = ones({3}, DType::F64).requires_grad_();
  Tensor y = record("bad_op", {x}, x.detach(), [](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{sum(g)};  // scalar instead of [3]
  });
  try {
    backward(sum(y));
    FAIL("expected an error");
  } catch (const AutogradError& e) {
    CHECK(std::string(e.what()).find("bad_op") != std::string::npos);
  }
}

TEST_CASE("gradcheck works on a composite function and reports failures") {
  Generator gen(7);
  Tensor a = randn({3, 4}, gen, DType::F64), b = randn({4, 2}, gen, DType::F64);
  auto f = [](const std::vector<Tensor>& in) { return tanh(matmul(in[0], in[1])); };
  auto r = gradcheck(f, {a, b});
  CHECK_MESSAGE(r.ok, r.to_string());
  CHECK(r.max_abs_error < 1e-7);
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor out = in[0].detach().clone();
    return record("twice", {in[0]}, out, [](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{mul(g, 2.0)};
    });
  };
  auto r2 = gradcheck(wrong, {a});
  CHECK_FALSE(r2.ok);
  CHECK(r2.max_abs_error == doctest::Approx(1.0));
}
