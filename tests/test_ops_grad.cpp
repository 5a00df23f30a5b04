// Gradient tests for every differentiable op in autograd/ops.h.
//
//  1. gradcheck (full Jacobian against float64 central differences) for each op, on Device::CPU and
//     Device::Reference. Inputs come from a fixed-seed Generator and are kept away from the points where
//     an op is not differentiable. check_op() also compares the forward results of the two devices.
//  2. gradcheck itself: it must reject a deliberately wrong backward and refuse float32 inputs.
//  3. Forward values of a handful of ops against hand-computed numbers, tie-breaking rules of the
//     gradient, and the stability of cross_entropy for huge logits in float32.
//  4. Error types and messages for misuse.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/function.h"
#include "advgrad/autograd/gradcheck.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"
#include "advgrad/core/tensor.h"

using namespace advgrad;

namespace {

const Device kDevices[] = {Device::CPU, Device::Reference};

using Inputs = std::vector<Tensor>;
using Fn = std::function<Tensor(const Inputs&)>;
using Make = std::function<Inputs(Device)>;

std::string label(const std::string& what, Device d) { return what + " [" + device_name(d) + "]"; }

// ---- inputs ----

Tensor normal(const Shape& s, Generator& g, Device d) { return randn(s, g, DType::F64, d); }
Tensor positive(const Shape& s, Generator& g, Device d, double lo = 0.5, double hi = 2.0) {
  return uniform(s, lo, hi, g, DType::F64, d);
}
// A dense copy of t with f applied to every element (mapped on the host, copied back to t's device).
Tensor map_values(const Tensor& t, const std::function<double(double)>& f) {
  std::vector<double> v = t.to_vector<double>();
  for (double& e : v) e = f(e);
  Tensor out = t.clone();
  out.copy_from_host_(v.data(), v.size() * sizeof(double));
  return out;
}
// Normal values pushed at least `margin` away from 0 (for abs, relu, leaky_relu, denominators).
Tensor nonzero(const Shape& s, Generator& g, Device d, double margin = 0.2) {
  return map_values(normal(s, g, d), [margin](double v) { return v >= 0 ? v + margin : v - margin; });
}
// Uniform values in [lo, hi] moved at least `margin` away from each of `points` (for clamp bounds).
Tensor away_from(const Shape& s, Generator& g, Device d, double lo, double hi, std::vector<double> points,
                 double margin = 0.05) {
  return map_values(uniform(s, lo, hi, g, DType::F64, d), [points, margin](double v) {
    for (double p : points)
      if (std::fabs(v - p) < margin) v = v >= p ? p + margin : p - margin;
    return v;
  });
}
Tensor labels(const std::vector<int64_t>& v, Device d) { return from_vector(v, Shape{int64_t(v.size())}, d); }
Tensor values(const std::vector<double>& v, const Shape& s, Device d) { return from_vector(v, s, d); }

std::string vec_str(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ---- the checks ----

// gradcheck of f on make(dev) for both devices; then the forward results of the two devices must agree.
void check_op(const std::string& what, const Fn& f, const Make& make, const GradcheckOptions& opt = {}) {
  std::vector<std::vector<double>> forward;
  std::vector<Shape> shapes;
  for (Device dev : kDevices) {
    const std::string where = label(what, dev);
    INFO(where);
    try {
      Inputs in = make(dev);
      auto r = gradcheck(f, in, opt);
      CHECK_MESSAGE(r.ok, r.to_string());
      Tensor out = f(in);
      CHECK(out.device() == dev);
      CHECK(out.dtype() == DType::F64);
      forward.push_back(out.to_vector<double>());
      shapes.push_back(out.shape());
    } catch (const std::exception& e) {
      FAIL_CHECK((std::string("threw: ") + e.what()));
    }
  }
  if (forward.size() != 2) return;
  const std::string differ = what + ": cpu and reference forwards differ";
  INFO(differ);
  REQUIRE(shapes[0] == shapes[1]);
  double worst = 0;
  for (size_t i = 0; i < forward[0].size(); ++i)
    worst = std::max(worst, std::fabs(forward[0][i] - forward[1][i]) / (1.0 + std::fabs(forward[1][i])));
  CHECK_MESSAGE(worst <= 1e-10, ("max relative difference " + std::to_string(worst)));
}

// Broadcasting shape pairs used for every binary op: [3,1,4] with [2,1] (both stretch), the reverse,
// equal shapes, a 0-d second operand, and [1,3] with [2,1].
const std::vector<std::pair<Shape, Shape>> kBinaryShapes = {
    {{3, 1, 4}, {2, 1}}, {{2, 1}, {3, 1, 4}}, {{2, 3}, {2, 3}}, {{2, 3}, {}}, {{1, 3}, {2, 1}}};

std::string shapes_str(const Shape& a, const Shape& b) { return shape_str(a) + " with " + shape_str(b); }

// Asserts that a call throws E and that what() contains every one of `parts`.
template <class E, class F>
void check_throws_with(F&& f, const std::vector<std::string>& parts) {
  bool thrown = false;
  try {
    f();
  } catch (const E& e) {
    thrown = true;
    std::string msg = e.what();
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, ("'" + msg + "' lacks '" + p + "'"));
  } catch (const std::exception& e) {
    FAIL_CHECK((std::string("wrong exception type: ") + e.what()));
    return;
  }
  CHECK_MESSAGE(thrown, "no exception thrown");
}

void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  auto v = t.to_vector<double>();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i)
    CHECK_MESSAGE(std::fabs(v[i] - expected[i]) <= tol * (1 + std::fabs(expected[i])),
                  ("element " + std::to_string(i) + ": got " + vec_str(v) + ", expected " + vec_str(expected)));
}

}  // namespace

// =====================================================================================================
// Element-wise
// =====================================================================================================

TEST_CASE("gradcheck: add, sub, mul with broadcasting") {
  const std::vector<std::pair<std::string, Fn>> ops = {
      {"add", [](const Inputs& in) { return add(in[0], in[1]); }},
      {"sub", [](const Inputs& in) { return sub(in[0], in[1]); }},
      {"mul", [](const Inputs& in) { return mul(in[0], in[1]); }},
      {"operator+ - *", [](const Inputs& in) { return (in[0] + in[1]) * in[1] - in[0]; }},
  };
  for (const auto& [name, f] : ops)
    for (const auto& [sa, sb] : kBinaryShapes)
      check_op(name + " " + shapes_str(sa, sb), f, [sa = sa, sb = sb](Device d) {
        Generator g(11);
        return Inputs{normal(sa, g, d), normal(sb, g, d)};
      });
}

TEST_CASE("gradcheck: div with broadcasting (denominators away from 0)") {
  for (const auto& [sa, sb] : kBinaryShapes) {
    check_op("div " + shapes_str(sa, sb), [](const Inputs& in) { return div(in[0], in[1]); },
             [sa = sa, sb = sb](Device d) {
               Generator g(12);
               return Inputs{normal(sa, g, d), nonzero(sb, g, d, 0.5)};
             });
    check_op("operator/ " + shapes_str(sa, sb), [](const Inputs& in) { return in[0] / in[1]; },
             [sa = sa, sb = sb](Device d) {
               Generator g(13);
               return Inputs{normal(sa, g, d), nonzero(sb, g, d, 0.5)};
             });
  }
}

TEST_CASE("gradcheck: pow with a tensor exponent and broadcasting (positive base)") {
  for (const auto& [sa, sb] : kBinaryShapes) {
    check_op("pow " + shapes_str(sa, sb), [](const Inputs& in) { return pow(in[0], in[1]); },
             [sa = sa, sb = sb](Device d) {
               Generator g(14);
               return Inputs{positive(sa, g, d), normal(sb, g, d)};
             });
  }
  // Only the base differentiated, negative base with integer exponents.
  check_op("pow negative base, integer exponent tensor", [](const Inputs& in) { return pow(in[0], in[1]); },
           [](Device d) {
             Generator g(15);
             Tensor a = nonzero({3, 1, 4}, g, d).requires_grad_();
             Tensor b = values({2.0, 3.0}, {2, 1}, d);
             return Inputs{a, b};
           });
}

TEST_CASE("gradcheck: minimum and maximum with broadcasting") {
  for (const auto& [sa, sb] : kBinaryShapes) {
    check_op("minimum " + shapes_str(sa, sb), [](const Inputs& in) { return minimum(in[0], in[1]); },
             [sa = sa, sb = sb](Device d) {
               Generator g(16);
               return Inputs{normal(sa, g, d), normal(sb, g, d)};
             });
    check_op("maximum " + shapes_str(sa, sb), [](const Inputs& in) { return maximum(in[0], in[1]); },
             [sa = sa, sb = sb](Device d) {
               Generator g(17);
               return Inputs{normal(sa, g, d), normal(sb, g, d)};
             });
  }
}

TEST_CASE("gradcheck: scalar variants of add, sub, rsub, mul, div") {
  const std::vector<std::pair<std::string, Fn>> ops = {
      {"add(a, 1.5)", [](const Inputs& in) { return add(in[0], 1.5); }},
      {"sub(a, 0.75)", [](const Inputs& in) { return sub(in[0], 0.75); }},
      {"rsub(2.0, a)", [](const Inputs& in) { return rsub(2.0, in[0]); }},
      {"mul(a, -3.0)", [](const Inputs& in) { return mul(in[0], -3.0); }},
      {"div(a, 4.0)", [](const Inputs& in) { return div(in[0], 4.0); }},
      {"div(a, -0.25)", [](const Inputs& in) { return div(in[0], -0.25); }},
      {"scalar operators", [](const Inputs& in) { return (2.0 - in[0]) * 3.0 + (1.0 + in[0] / 2.0) - 0.5 * in[0]; }},
  };
  for (const auto& [name, f] : ops)
    check_op(name, f, [](Device d) {
      Generator g(21);
      return Inputs{normal({2, 3}, g, d)};
    });
}

TEST_CASE("gradcheck: pow with a scalar exponent") {
  // Positive base for every exponent; integer exponents also on a base of either sign.
  for (double e : {2.0, 3.0, 0.5, -1.5, 1.7, 0.0, 1.0}) {
    check_op("pow(positive, " + std::to_string(e) + ")", [e](const Inputs& in) { return pow(in[0], e); },
             [](Device d) {
               Generator g(22);
               return Inputs{positive({2, 3}, g, d)};
             });
  }
  for (double e : {2.0, 3.0, -2.0}) {
    check_op("pow(normal, " + std::to_string(e) + ")", [e](const Inputs& in) { return pow(in[0], e); },
             [](Device d) {
               Generator g(23);
               return Inputs{nonzero({2, 3}, g, d, 0.3)};
             });
  }
}

TEST_CASE("gradcheck: unary ops") {
  struct Case {
    std::string name;
    Fn f;
    std::function<Tensor(Generator&, Device)> input;
  };
  const Shape s{3, 4};
  const std::vector<Case> cases = {
      {"neg", [](const Inputs& in) { return neg(in[0]); }, [s](Generator& g, Device d) { return normal(s, g, d); }},
      {"unary operator-", [](const Inputs& in) { return -in[0]; },
       [s](Generator& g, Device d) { return normal(s, g, d); }},
      {"exp", [](const Inputs& in) { return exp(in[0]); }, [s](Generator& g, Device d) { return normal(s, g, d); }},
      {"log", [](const Inputs& in) { return log(in[0]); },
       [s](Generator& g, Device d) { return positive(s, g, d, 0.2, 3.0); }},
      {"sqrt", [](const Inputs& in) { return sqrt(in[0]); },
       [s](Generator& g, Device d) { return positive(s, g, d, 0.2, 3.0); }},
      {"abs", [](const Inputs& in) { return abs(in[0]); }, [s](Generator& g, Device d) { return nonzero(s, g, d); }},
      {"square", [](const Inputs& in) { return square(in[0]); },
       [s](Generator& g, Device d) { return normal(s, g, d); }},
      {"tanh", [](const Inputs& in) { return tanh(in[0]); }, [s](Generator& g, Device d) { return normal(s, g, d); }},
      {"sigmoid", [](const Inputs& in) { return sigmoid(in[0]); },
       [s](Generator& g, Device d) { return mul(normal(s, g, d), 2.0); }},
      {"relu", [](const Inputs& in) { return relu(in[0]); }, [s](Generator& g, Device d) { return nonzero(s, g, d); }},
      {"leaky_relu default slope", [](const Inputs& in) { return leaky_relu(in[0]); },
       [s](Generator& g, Device d) { return nonzero(s, g, d); }},
      {"leaky_relu slope 0.2", [](const Inputs& in) { return leaky_relu(in[0], 0.2); },
       [s](Generator& g, Device d) { return nonzero(s, g, d); }},
      {"leaky_relu slope 1.5", [](const Inputs& in) { return leaky_relu(in[0], 1.5); },
       [s](Generator& g, Device d) { return nonzero(s, g, d); }},
      {"clamp(-0.5, 0.5)", [](const Inputs& in) { return clamp(in[0], -0.5, 0.5); },
       [s](Generator& g, Device d) { return away_from(s, g, d, -1.5, 1.5, {-0.5, 0.5}); }},
      {"clamp(0.2, 1.0)", [](const Inputs& in) { return clamp(in[0], 0.2, 1.0); },
       [s](Generator& g, Device d) { return away_from(s, g, d, -0.5, 1.5, {0.2, 1.0}); }},
  };
  for (const auto& c : cases) {
    check_op(c.name, c.f, [&c](Device d) {
      Generator g(31);
      return Inputs{c.input(g, d)};
    });
  }
  // The inputs above must really straddle the kinks (else relu/abs/clamp would be tested on one side only).
  Generator g(31);
  auto v = nonzero(s, g, Device::CPU).to_vector<double>();
  int neg_count = 0;
  for (double x : v) neg_count += x < 0;
  CHECK(neg_count > 0);
  CHECK(neg_count < int(v.size()));
}

TEST_CASE("gradcheck: unary ops on non-contiguous views") {
  // A transposed view as input: kernels must walk strides.
  const std::vector<std::pair<std::string, Fn>> ops = {
      {"exp(transpose)", [](const Inputs& in) { return exp(transpose(in[0], 0, 1)); }},
      {"tanh(slice step 2)", [](const Inputs& in) { return tanh(slice(in[0], 1, 0, 4, 2)); }},
      {"mul(transpose, expand)",
       [](const Inputs& in) { return mul(transpose(in[0], 0, 1), expand(transpose(slice(in[0], 1, 0, 1), 0, 1), {4, 3})); }},
  };
  for (const auto& [name, f] : ops)
    check_op(name, f, [](Device d) {
      Generator g(32);
      return Inputs{normal({3, 4}, g, d)};
    });
}

TEST_CASE("gradcheck: where with broadcasting") {
  // cond is float64 (it must share a and b's dtype) and is not differentiated: only a and b are marked.
  auto make = [](const Shape& sc, const Shape& sa, const Shape& sb) {
    return [sc, sa, sb](Device d) {
      Generator g(41);
      Tensor cond = map_values(normal(sc, g, d), [](double v) { return v > 0 ? 1.0 : 0.0; });
      Tensor a = normal(sa, g, d).requires_grad_();
      Tensor b = normal(sb, g, d).requires_grad_();
      return Inputs{cond, a, b};
    };
  };
  Fn f = [](const Inputs& in) { return where(in[0], in[1], in[2]); };
  check_op("where cond [1,2,4], a [3,1,4], b [2,1]", f, make({1, 2, 4}, {3, 1, 4}, {2, 1}));
  check_op("where cond [3,4], a [3,4], b [3,4]", f, make({3, 4}, {3, 4}, {3, 4}));
  check_op("where cond [3,1], a [4], b []", f, make({3, 1}, {4}, {}));
  // The condition really picks from both sides.
  Generator g(41);
  auto c = map_values(normal({1, 2, 4}, g, Device::CPU), [](double v) { return v > 0 ? 1.0 : 0.0; })
               .to_vector<double>();
  double ones_count = 0;
  for (double v : c) ones_count += v;
  CHECK(ones_count > 0);
  CHECK(ones_count < double(c.size()));
}

// =====================================================================================================
// Reductions
// =====================================================================================================

TEST_CASE("gradcheck: sum, mean, max, logsumexp over axes") {
  using Reduce = Tensor (*)(const Tensor&, const std::vector<int64_t>&, bool);
  const std::vector<std::pair<std::string, Reduce>> ops = {
      {"sum", &sum}, {"mean", &mean}, {"max", &max}, {"logsumexp", &logsumexp}};
  const std::vector<std::vector<int64_t>> axes_list = {{}, {0}, {1}, {-1}, {0, 2}, {2, 0}, {-1, 1}, {0, 1, 2}};
  for (const auto& [name, op] : ops)
    for (const auto& axes : axes_list)
      for (bool keepdim : {false, true}) {
        std::string axes_s = "{";
        for (size_t i = 0; i < axes.size(); ++i) axes_s += (i ? "," : "") + std::to_string(axes[i]);
        axes_s += "}";
        check_op(name + " axes " + axes_s + (keepdim ? " keepdim" : ""),
                 [op = op, axes, keepdim](const Inputs& in) { return op(in[0], axes, keepdim); },
                 [](Device d) {
                   Generator g(51);
                   return Inputs{normal({2, 3, 4}, g, d)};
                 });
      }
  // Default arguments: all axes, no keepdim -> 0-d.
  check_op("sum()", [](const Inputs& in) { return sum(in[0]); },
           [](Device d) { Generator g(52); return Inputs{normal({3, 4}, g, d)}; });
  check_op("mean()", [](const Inputs& in) { return mean(in[0]); },
           [](Device d) { Generator g(52); return Inputs{normal({3, 4}, g, d)}; });
  check_op("max()", [](const Inputs& in) { return max(in[0]); },
           [](Device d) { Generator g(52); return Inputs{normal({3, 4}, g, d)}; });
  check_op("logsumexp()", [](const Inputs& in) { return logsumexp(in[0]); },
           [](Device d) { Generator g(52); return Inputs{normal({3, 4}, g, d)}; });
  // Reductions of a non-contiguous view.
  check_op("sum(permute) axis 1", [](const Inputs& in) { return sum(permute(in[0], {2, 0, 1}), {1}); },
           [](Device d) { Generator g(53); return Inputs{normal({2, 3, 4}, g, d)}; });
  check_op("max(transpose) axis 0", [](const Inputs& in) { return max(transpose(in[0], 0, 1), {0}); },
           [](Device d) { Generator g(53); return Inputs{normal({3, 4}, g, d)}; });
  // logsumexp of large values (the max shift must keep the gradient exact).
  check_op("logsumexp of values ~ 500", [](const Inputs& in) { return logsumexp(add(in[0], 500.0), {1}); },
           [](Device d) { Generator g(54); return Inputs{normal({2, 3}, g, d)}; });
}

TEST_CASE("reduction shapes with and without keepdim") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(55);
    Tensor x = normal({2, 3, 4}, g, d);
    CHECK(sum(x, {0, 2}).shape() == Shape{3});
    CHECK(sum(x, {0, 2}, true).shape() == Shape{1, 3, 1});
    CHECK(mean(x, {-1}).shape() == Shape{2, 3});
    CHECK(max(x, {1}, true).shape() == Shape{2, 1, 4});
    CHECK(logsumexp(x).shape() == Shape{});
    CHECK(logsumexp(x, {}, true).shape() == Shape{1, 1, 1});
  }
}

// =====================================================================================================
// Shape and movement
// =====================================================================================================

TEST_CASE("gradcheck: reshape, flatten, unsqueeze, squeeze") {
  auto x234 = [](Device d) {
    Generator g(61);
    return Inputs{normal({2, 3, 4}, g, d)};
  };
  check_op("reshape {4,-1}", [](const Inputs& in) { return reshape(in[0], {4, -1}); }, x234);
  check_op("reshape {24}", [](const Inputs& in) { return reshape(in[0], {24}); }, x234);
  check_op("reshape {2,2,6}", [](const Inputs& in) { return reshape(in[0], {2, 2, 6}); }, x234);
  check_op("reshape of a permuted view", [](const Inputs& in) { return reshape(permute(in[0], {2, 0, 1}), {4, 6}); },
           x234);
  check_op("flatten()", [](const Inputs& in) { return flatten(in[0]); }, x234);
  check_op("flatten(1)", [](const Inputs& in) { return flatten(in[0], 1); }, x234);
  check_op("flatten(0, 1)", [](const Inputs& in) { return flatten(in[0], 0, 1); }, x234);
  check_op("flatten(-2, -1) of transpose", [](const Inputs& in) { return flatten(transpose(in[0], 0, 2), -2, -1); },
           x234);
  check_op("unsqueeze 0", [](const Inputs& in) { return unsqueeze(in[0], 0); }, x234);
  check_op("unsqueeze 2", [](const Inputs& in) { return unsqueeze(in[0], 2); }, x234);
  check_op("unsqueeze -1", [](const Inputs& in) { return unsqueeze(in[0], -1); }, x234);
  auto x213 = [](Device d) {
    Generator g(62);
    return Inputs{normal({2, 1, 3}, g, d)};
  };
  check_op("squeeze 1", [](const Inputs& in) { return squeeze(in[0], 1); }, x213);
  check_op("squeeze -2", [](const Inputs& in) { return squeeze(in[0], -2); }, x213);
  check_op("squeeze(unsqueeze)", [](const Inputs& in) { return squeeze(unsqueeze(in[0], 3), 3); }, x213);
}

TEST_CASE("gradcheck: permute, transpose, expand, contiguous") {
  auto x234 = [](Device d) {
    Generator g(63);
    return Inputs{normal({2, 3, 4}, g, d)};
  };
  check_op("permute {2,0,1}", [](const Inputs& in) { return permute(in[0], {2, 0, 1}); }, x234);
  check_op("permute {1,2,0}", [](const Inputs& in) { return permute(in[0], {1, 2, 0}); }, x234);
  check_op("permute {0,-1,1}", [](const Inputs& in) { return permute(in[0], {0, -1, 1}); }, x234);
  check_op("transpose 0,2", [](const Inputs& in) { return transpose(in[0], 0, 2); }, x234);
  check_op("transpose 1,-1", [](const Inputs& in) { return transpose(in[0], 1, -1); }, x234);
  check_op("expand [3,1] -> [2,3,4]", [](const Inputs& in) { return expand(in[0], {2, 3, 4}); },
           [](Device d) { Generator g(64); return Inputs{normal({3, 1}, g, d)}; });
  check_op("expand [1,4] -> [3,4]", [](const Inputs& in) { return expand(in[0], {3, 4}); },
           [](Device d) { Generator g(64); return Inputs{normal({1, 4}, g, d)}; });
  check_op("expand [3,1,1] -> [3,2,5]", [](const Inputs& in) { return expand(in[0], {3, 2, 5}); },
           [](Device d) { Generator g(64); return Inputs{normal({3, 1, 1}, g, d)}; });
  check_op("expand [] -> [2,3]", [](const Inputs& in) { return expand(in[0], {2, 3}); },
           [](Device d) { Generator g(64); return Inputs{normal({}, g, d)}; });
  check_op("contiguous(permute)", [](const Inputs& in) { return contiguous(permute(in[0], {2, 0, 1})); }, x234);
  check_op("contiguous(transpose 0,1)", [](const Inputs& in) { return contiguous(transpose(in[0], 0, 1)); }, x234);
  check_op("contiguous(slice step 2)", [](const Inputs& in) { return contiguous(slice(in[0], 2, 0, 4, 2)); }, x234);
  check_op("contiguous(expand)", [](const Inputs& in) { return contiguous(expand(in[0], {2, 3, 4})); },
           [](Device d) { Generator g(65); return Inputs{normal({3, 1}, g, d)}; });
  check_op("contiguous of a dense result", [](const Inputs& in) { return contiguous(mul(in[0], 2.0)); }, x234);
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(66);
    Tensor x = normal({2, 3, 4}, g, d);
    Tensor p = permute(x, {2, 0, 1});
    CHECK_FALSE(p.is_contiguous());
    Tensor c = contiguous(p);
    CHECK(c.is_contiguous());
    CHECK(c.shape() == Shape{4, 2, 3});
    CHECK(c.at({3, 1, 2}) == x.at({1, 2, 3}));
  }
}

TEST_CASE("gradcheck: slice with steps and negative bounds") {
  auto x37 = [](Device d) {
    Generator g(71);
    return Inputs{normal({3, 7}, g, d)};
  };
  check_op("slice axis 1 [1:-1:2]", [](const Inputs& in) { return slice(in[0], 1, 1, -1, 2); }, x37);
  check_op("slice axis 1 [-5:100:3]", [](const Inputs& in) { return slice(in[0], 1, -5, 100, 3); }, x37);
  check_op("slice axis 0 [-2:3]", [](const Inputs& in) { return slice(in[0], 0, -2, 3); }, x37);
  check_op("slice axis -1 [-100:-3]", [](const Inputs& in) { return slice(in[0], -1, -100, -3); }, x37);
  check_op("slice axis -1 [0:7:7]", [](const Inputs& in) { return slice(in[0], -1, 0, 7, 7); }, x37);
  check_op("slice of slice", [](const Inputs& in) { return slice(slice(in[0], 1, 1, 7, 2), 0, 0, 3, 2); }, x37);
  check_op("slice of transpose", [](const Inputs& in) { return slice(transpose(in[0], 0, 1), 0, 1, 6, 2); }, x37);
  check_op("sum of overlapping slices",
           [](const Inputs& in) { return add(slice(in[0], 1, 0, 5), slice(in[0], 1, 2, 7)); }, x37);
}

TEST_CASE("gradcheck: pad") {
  auto x234 = [](Device d) {
    Generator g(72);
    return Inputs{normal({2, 3, 4}, g, d)};
  };
  check_op("pad {1,2}", [](const Inputs& in) { return pad(in[0], {1, 2}); }, x234);
  check_op("pad {1,0,2,1} value 0.5", [](const Inputs& in) { return pad(in[0], {1, 0, 2, 1}, 0.5); }, x234);
  check_op("pad {0,1,1,0,2,1}", [](const Inputs& in) { return pad(in[0], {0, 1, 1, 0, 2, 1}, -1.0); }, x234);
  check_op("pad {} (no padding)", [](const Inputs& in) { return pad(in[0], {0, 0}); }, x234);
  check_op("pad of a permuted view", [](const Inputs& in) { return pad(permute(in[0], {2, 0, 1}), {1, 1}); }, x234);
}

TEST_CASE("gradcheck: concat and stack") {
  check_op("concat axis 1 of [2,1,3],[2,2,3],[2,3,3]",
           [](const Inputs& in) { return concat({in[0], in[1], in[2]}, 1); },
           [](Device d) {
             Generator g(73);
             return Inputs{normal({2, 1, 3}, g, d), normal({2, 2, 3}, g, d), normal({2, 3, 3}, g, d)};
           });
  check_op("concat axis -1 of [2,2],[2,3]", [](const Inputs& in) { return concat({in[0], in[1]}, -1); },
           [](Device d) {
             Generator g(74);
             return Inputs{normal({2, 2}, g, d), normal({2, 3}, g, d)};
           });
  check_op("concat axis 0 of [1,3],[2,3] (a view)", [](const Inputs& in) { return concat({in[0], transpose(in[1], 0, 1)}, 0); },
           [](Device d) {
             Generator g(75);
             return Inputs{normal({1, 3}, g, d), normal({3, 2}, g, d)};
           });
  check_op("concat of one input used twice", [](const Inputs& in) { return concat({in[0], in[0]}, 0); },
           [](Device d) {
             Generator g(76);
             return Inputs{normal({2, 3}, g, d)};
           });
  auto three23 = [](Device d) {
    Generator g(77);
    return Inputs{normal({2, 3}, g, d), normal({2, 3}, g, d), normal({2, 3}, g, d)};
  };
  check_op("stack axis 0", [](const Inputs& in) { return stack({in[0], in[1], in[2]}, 0); }, three23);
  check_op("stack axis 1", [](const Inputs& in) { return stack({in[0], in[1], in[2]}, 1); }, three23);
  check_op("stack axis 2", [](const Inputs& in) { return stack({in[0], in[1], in[2]}, 2); }, three23);
  check_op("stack axis -1", [](const Inputs& in) { return stack({in[0], in[1]}, -1); }, three23);
}

TEST_CASE("gradcheck: split (both overloads)") {
  auto x37 = [](Device d) {
    Generator g(78);
    return Inputs{normal({3, 7}, g, d)};
  };
  // split(x, 3, 1): pieces of 3, 3, 1. Each piece checked separately, then all pieces used together.
  for (int k = 0; k < 3; ++k)
    check_op("split(x, 3, 1) piece " + std::to_string(k), [k](const Inputs& in) { return split(in[0], 3, 1)[size_t(k)]; },
             x37);
  check_op("split(x, 2, 0) pieces recombined with weights",
           [](const Inputs& in) {
             auto p = split(in[0], 2, 0);  // [2,7], [1,7]
             return add(mul(p[0], 2.0), mul(p[1], -3.0));
           },
           x37);
  const std::vector<int64_t> sizes{2, 4, 1};
  for (int k = 0; k < 3; ++k)
    check_op("split(x, {2,4,1}, -1) piece " + std::to_string(k),
             [k, sizes](const Inputs& in) { return split(in[0], sizes, -1)[size_t(k)]; }, x37);
  check_op("split(x, {1,2}, 0) pieces recombined",
           [](const Inputs& in) {
             auto p = split(in[0], std::vector<int64_t>{1, 2}, 0);
             return concat({mul(p[1], p[1]), p[0]}, 0);
           },
           x37);
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(78);
    Tensor x = normal({3, 7}, g, d);
    auto p = split(x, 3, 1);
    REQUIRE(p.size() == 3);
    CHECK(p[0].shape() == Shape{3, 3});
    CHECK(p[2].shape() == Shape{3, 1});
    CHECK(allclose(concat(p, 1), x, 0, 0));
    auto q = split(x, std::vector<int64_t>{2, 4, 1}, 1);
    REQUIRE(q.size() == 3);
    CHECK(q[1].shape() == Shape{3, 4});
    CHECK(allclose(concat(q, 1), x, 0, 0));
  }
}

// =====================================================================================================
// Linear algebra
// =====================================================================================================

TEST_CASE("gradcheck: matmul (2-D, batched, broadcast batch dims)") {
  auto make = [](const Shape& sa, const Shape& sb) {
    return [sa, sb](Device d) {
      Generator g(81);
      return Inputs{normal(sa, g, d), normal(sb, g, d)};
    };
  };
  Fn mm = [](const Inputs& in) { return matmul(in[0], in[1]); };
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 2}},       {{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}},       {{1, 3, 4}, {2, 4, 5}},
      {{3, 4}, {2, 4, 5}},    {{2, 1, 2, 3}, {3, 3, 2}}, {{1, 1}, {1, 3}},       {{2, 3, 1}, {1, 2}}};
  for (const auto& [sa, sb] : cases) check_op("matmul " + shape_str(sa) + " x " + shape_str(sb), mm, make(sa, sb));
  check_op("matmul of transposed views", [](const Inputs& in) { return matmul(transpose(in[0], -1, -2), in[1]); },
           make({2, 4, 3}, {4, 2}));
  check_op("matmul of an expanded view", [](const Inputs& in) { return matmul(in[0], expand(in[1], {2, 4, 2})); },
           make({2, 3, 4}, {4, 2}));
  check_op("matmul(a, a^T)", [](const Inputs& in) { return matmul(in[0], transpose(in[0], 0, 1)); },
           [](Device d) { Generator g(82); return Inputs{normal({3, 4}, g, d)}; });
}

TEST_CASE("gradcheck: linear") {
  check_op("linear [3,4] x W[5,4] + b[5]", [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
           [](Device d) {
             Generator g(83);
             return Inputs{normal({3, 4}, g, d), normal({5, 4}, g, d), normal({5}, g, d)};
           });
  check_op("linear [3,4] x W[5,4], no bias", [](const Inputs& in) { return linear(in[0], in[1]); },
           [](Device d) {
             Generator g(84);
             return Inputs{normal({3, 4}, g, d), normal({5, 4}, g, d)};
           });
  check_op("linear 3-D [2,3,4] x W[2,4] + b[2]", [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
           [](Device d) {
             Generator g(85);
             return Inputs{normal({2, 3, 4}, g, d), normal({2, 4}, g, d), normal({2}, g, d)};
           });
  check_op("linear 3-D [2,3,4] x W[3,4], no bias", [](const Inputs& in) { return linear(in[0], in[1]); },
           [](Device d) {
             Generator g(86);
             return Inputs{normal({2, 3, 4}, g, d), normal({3, 4}, g, d)};
           });
  check_op("linear 1-D [4] x W[3,4] + b[3]", [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
           [](Device d) {
             Generator g(87);
             return Inputs{normal({4}, g, d), normal({3, 4}, g, d), normal({3}, g, d)};
           });
  check_op("linear of non-contiguous x and W", [](const Inputs& in) {
             return linear(transpose(in[0], 0, 1), transpose(in[1], 0, 1), in[2]);
           },
           [](Device d) {
             Generator g(88);
             return Inputs{normal({4, 3}, g, d), normal({4, 5}, g, d), normal({5}, g, d)};
           });
  // Only the bias marked: the weight gradient work may be skipped, the bias gradient must still be right.
  check_op("linear, bias only", [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
           [](Device d) {
             Generator g(89);
             return Inputs{normal({3, 4}, g, d), normal({5, 4}, g, d), normal({5}, g, d).requires_grad_()};
           });
  // linear agrees with matmul + add.
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(90);
    Tensor x = normal({2, 3, 4}, g, d), w = normal({5, 4}, g, d), b = normal({5}, g, d);
    CHECK(allclose(linear(x, w, b), add(matmul(x, transpose(w, 0, 1)), b), 1e-12, 1e-12));
  }
}

// =====================================================================================================
// Convolution and pooling
// =====================================================================================================

TEST_CASE("gradcheck: conv2d") {
  check_op("conv2d x[2,2,5,6] w[3,2,2,3] bias, stride 2, padding 1",
           [](const Inputs& in) { return conv2d(in[0], in[1], in[2], 2, 1); },
           [](Device d) {
             Generator g(91);
             return Inputs{normal({2, 2, 5, 6}, g, d), normal({3, 2, 2, 3}, g, d), normal({3}, g, d)};
           });
  check_op("conv2d x[1,2,6,6] w[2,2,3,2] no bias, padding {1,0}, dilation 2",
           [](const Inputs& in) { return conv2d(in[0], in[1], Tensor(), 1, Size2(1, 0), 2); },
           [](Device d) {
             Generator g(92);
             return Inputs{normal({1, 2, 6, 6}, g, d), normal({2, 2, 3, 2}, g, d)};
           });
  check_op("conv2d x[2,1,5,5] w[2,1,3,3] bias, stride {2,1}, padding {0,1}, dilation {1,2}",
           [](const Inputs& in) { return conv2d(in[0], in[1], in[2], Size2(2, 1), Size2(0, 1), Size2(1, 2)); },
           [](Device d) {
             Generator g(93);
             return Inputs{normal({2, 1, 5, 5}, g, d), normal({2, 1, 3, 3}, g, d), normal({2}, g, d)};
           });
  check_op("conv2d defaults x[1,2,4,4] w[2,2,3,3] bias",
           [](const Inputs& in) { return conv2d(in[0], in[1], in[2]); },
           [](Device d) {
             Generator g(94);
             return Inputs{normal({1, 2, 4, 4}, g, d), normal({2, 2, 3, 3}, g, d), normal({2}, g, d)};
           });
  check_op("conv2d stride 3 > kernel 2 (skipped pixels), padding 2, no bias",
           [](const Inputs& in) { return conv2d(in[0], in[1], Tensor(), 3, 2); },
           [](Device d) {
             Generator g(95);
             return Inputs{normal({1, 1, 5, 5}, g, d), normal({2, 1, 2, 2}, g, d)};
           });
  check_op("conv2d of a permuted (non-contiguous) input",
           [](const Inputs& in) { return conv2d(permute(in[0], {0, 3, 1, 2}), in[1], in[2], 1, 1); },
           [](Device d) {
             Generator g(96);
             return Inputs{normal({1, 4, 4, 2}, g, d), normal({2, 2, 2, 2}, g, d), normal({2}, g, d)};
           });
}

TEST_CASE("gradcheck: grouped and depthwise conv2d") {
  check_op("conv2d groups 2: x[2,4,5,6] w[6,2,3,3] bias, stride 2, padding 1",
           [](const Inputs& in) { return conv2d(in[0], in[1], in[2], 2, 1, 1, 2); },
           [](Device d) {
             Generator g(191);
             return Inputs{normal({2, 4, 5, 6}, g, d), normal({6, 2, 3, 3}, g, d), normal({6}, g, d)};
           });
  check_op("conv2d groups 3: x[1,6,6,7] w[3,2,2,3] no bias, padding {1,0}, dilation 2",
           [](const Inputs& in) { return conv2d(in[0], in[1], Tensor(), 1, Size2(1, 0), 2, 3); },
           [](Device d) {
             Generator g(192);
             return Inputs{normal({1, 6, 6, 7}, g, d), normal({3, 2, 2, 3}, g, d)};
           });
  check_op("depthwise conv2d: x[2,3,6,6] w[3,1,3,3] bias, padding 1 (unit stride: the widened path)",
           [](const Inputs& in) { return conv2d(in[0], in[1], in[2], 1, 1, 1, 3); },
           [](Device d) {
             Generator g(193);
             return Inputs{normal({2, 3, 6, 6}, g, d), normal({3, 1, 3, 3}, g, d), normal({3}, g, d)};
           });
  check_op("depthwise conv2d, channel multiplier 2: x[1,3,7,6] w[6,1,3,2] bias, stride {2,1}, padding 1, "
           "dilation {1,2}",
           [](const Inputs& in) { return conv2d(in[0], in[1], in[2], Size2(2, 1), 1, Size2(1, 2), 3); },
           [](Device d) {
             Generator g(194);
             return Inputs{normal({1, 3, 7, 6}, g, d), normal({6, 1, 3, 2}, g, d), normal({6}, g, d)};
           });
}

TEST_CASE("grouped conv2d: each output group sees only its own input channels") {
  // Independent of the kernels' arithmetic: group j of a grouped convolution equals an ordinary
  // convolution of input block j with weight block j, composed here from slice and concat.
  for (Device d : kDevices) {
    INFO(device_name(d));
    Generator g(195);
    Tensor x = normal({2, 6, 5, 5}, g, d), w = normal({4, 3, 3, 3}, g, d), b = normal({4}, g, d);
    Tensor grouped = conv2d(x, w, b, 1, 1, 1, 2);
    Tensor by_hand = concat({conv2d(slice(x, 1, 0, 3), slice(w, 0, 0, 2), slice(b, 0, 0, 2), 1, 1),
                             conv2d(slice(x, 1, 3, 6), slice(w, 0, 2, 4), slice(b, 0, 2, 4), 1, 1)},
                            1);
    check_values(grouped, by_hand.to_vector<double>(), 1e-12);
  }
}

TEST_CASE("conv2d refuses groups that do not divide the channels, naming both") {
  Generator g(196);
  Tensor x = normal({1, 6, 5, 5}, g, Device::CPU), w4 = normal({4, 2, 3, 3}, g, Device::CPU),
         w6 = normal({6, 2, 3, 3}, g, Device::CPU);
  check_throws_with<ValueError>([&] { conv2d(x, w4, Tensor(), 1, 0, 1, 3); },
                                {"conv2d", "groups 3", "input channels (6)", "output channels (4)"});
  check_throws_with<ValueError>([&] { conv2d(x, w6, Tensor(), 1, 0, 1, 0); }, {"conv2d", "groups", ">= 1"});
  check_throws_with<ShapeError>([&] { conv2d(x, w6, Tensor(), 1, 0, 1, 2); }, {"conv2d", "C/groups = 3"});
}

TEST_CASE("gradcheck: max_pool2d and avg_pool2d") {
  struct Cfg {
    std::string name;
    Shape x;
    Size2 kernel, stride, padding;
  };
  const std::vector<Cfg> cfgs = {
      {"x[2,2,5,5] k3 s2 p1", {2, 2, 5, 5}, 3, 2, 1},
      {"x[1,2,5,5] k{2,3} s{1,2} p{1,1}", {1, 2, 5, 5}, Size2(2, 3), Size2(1, 2), Size2(1, 1)},
      {"x[1,2,4,5] k2 default stride", {1, 2, 4, 5}, 2, 0, 0},
      {"x[1,1,6,6] k2 s3 p1 (stride > kernel)", {1, 1, 6, 6}, 2, 3, 1},
      {"x[1,1,4,4] k3 s1 p0 (overlapping)", {1, 1, 4, 4}, 3, 1, 0},
  };
  for (const auto& c : cfgs) {
    auto make = [x = c.x](Device d) {
      Generator g(101);
      return Inputs{normal(x, g, d)};
    };
    check_op("max_pool2d " + c.name,
             [c](const Inputs& in) { return max_pool2d(in[0], c.kernel, c.stride, c.padding); }, make);
    check_op("avg_pool2d " + c.name,
             [c](const Inputs& in) { return avg_pool2d(in[0], c.kernel, c.stride, c.padding); }, make);
  }
}

TEST_CASE("gradcheck: pooling options (max dilation and ceil_mode; avg ceil_mode and count_include_pad)") {
  struct Cfg {
    std::string name;
    Shape x;
    Size2 kernel, stride, padding;
  };
  // Sizes where ceil_mode adds a last, partial window (5 with k2 s2; 6 with k3 s2 p1; 7 with k3 s3).
  const std::vector<Cfg> cfgs = {
      {"x[1,2,5,5] k2 s2", {1, 2, 5, 5}, 2, 2, 0},
      {"x[2,1,6,6] k3 s2 p1", {2, 1, 6, 6}, 3, 2, 1},
      {"x[1,1,7,5] k{3,2} s{3,2} p{1,0}", {1, 1, 7, 5}, Size2(3, 2), Size2(3, 2), Size2(1, 0)},
  };
  for (const auto& c : cfgs) {
    auto make = [x = c.x](Device d) {
      Generator g(102);
      return Inputs{normal(x, g, d)};
    };
    for (bool ceil : {false, true}) {
      const std::string mode = ceil ? " ceil_mode" : "";
      check_op("max_pool2d " + c.name + mode + " dilation 2", [c, ceil](const Inputs& in) {
        return max_pool2d(in[0], c.kernel, c.stride, c.padding, 2, ceil);
      }, make);
      for (bool include_pad : {true, false})
        check_op("avg_pool2d " + c.name + mode + (include_pad ? "" : " count_include_pad=false"),
                 [c, ceil, include_pad](const Inputs& in) {
                   return avg_pool2d(in[0], c.kernel, c.stride, c.padding, ceil, include_pad);
                 }, make);
    }
  }
}

TEST_CASE("pooling options: output sizes, windows and border divisors, computed by hand") {
  // x = 1..16 as a 4x4 image; 3x3 windows, stride 2, padding 1. Without ceil_mode: windows start at rows
  // (cols) -1 and 1. With it a third starts at 3, inside the input, and overhangs the padded input (which
  // ends at 5): it covers row 3 and one padding row. count_include_pad counts the padding inside the padded
  // input (divisors 9, 3*2 at the overhanging edges, 2*2 in the corner); without it only real pixels.
  for (Device d : kDevices) {
    INFO(device_name(d));
    std::vector<double> v(16);
    for (int i = 0; i < 16; ++i) v[size_t(i)] = i + 1;
    Tensor x = values(v, {1, 1, 4, 4}, d);
    CHECK(avg_pool2d(x, 3, 2, 1).shape() == Shape{1, 1, 2, 2});
    CHECK(max_pool2d(x, 3, 2, 1).shape() == Shape{1, 1, 2, 2});
    // Window sums: rows {0,1}, {1,2,3}, {3} times the same column sets.
    const std::vector<double> sums = {14, 30, 12, 57, 99, 36, 27, 45, 16};
    const std::vector<double> with_pad = {9, 9, 6, 9, 9, 6, 6, 6, 4}, real = {4, 6, 2, 6, 9, 3, 2, 3, 1};
    std::vector<double> avg_incl(9), avg_real(9);
    for (size_t i = 0; i < 9; ++i) avg_incl[i] = sums[i] / with_pad[i], avg_real[i] = sums[i] / real[i];
    Tensor a = avg_pool2d(x, 3, 2, 1, true);
    REQUIRE(a.shape() == Shape{1, 1, 3, 3});
    check_values(a, avg_incl);
    check_values(avg_pool2d(x, 3, 2, 1, true, false), avg_real);
    check_values(avg_pool2d(x, 3, 2, 1, false, false), {14 / 4.0, 30 / 6.0, 57 / 6.0, 99 / 9.0});
    check_values(max_pool2d(x, 3, 2, 1, 1, true), {6, 8, 8, 14, 16, 16, 14, 16, 16});
    // Dilation 2: the 2x2 window reads pixels two apart.
    check_values(max_pool2d(x, 2, 1, 0, 2), {11, 12, 15, 16});
    // A 3x3 image, 2x2 windows, stride 2, padding 1: ceil_mode's third window would start at 3, in the right
    // padding, so it does not exist (as in PyTorch); ceil_mode then changes nothing here.
    Tensor x3 = values({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, d);
    check_values(max_pool2d(x3, 2, 2, 1, 1, true), {1, 3, 7, 9});
    check_values(avg_pool2d(x3, 2, 2, 1, true, false), {1, 2.5, 5.5, 7});
  }
}

TEST_CASE("pooling refuses padding over half the kernel, naming both") {
  Generator g(103);
  Tensor x = normal({1, 1, 6, 6}, g, Device::CPU);
  check_throws_with<ValueError>([&] { max_pool2d(x, 2, 2, 2, 1, true); }, {"max_pool2d", "padding (2, 2)", "(2, 2)"});
  check_throws_with<ValueError>([&] { avg_pool2d(x, 3, 1, 2, true, false); }, {"avg_pool2d", "padding (2, 2)"});
}

// =====================================================================================================
// Softmax family and losses
// =====================================================================================================

TEST_CASE("gradcheck: softmax and log_softmax over axes 0, 1, -1") {
  auto x234 = [](Device d) {
    Generator g(111);
    return Inputs{normal({2, 3, 4}, g, d)};
  };
  for (int64_t axis : {0, 1, 2, -1, -2}) {
    check_op("softmax axis " + std::to_string(axis), [axis](const Inputs& in) { return softmax(in[0], axis); }, x234);
    check_op("log_softmax axis " + std::to_string(axis), [axis](const Inputs& in) { return log_softmax(in[0], axis); },
             x234);
  }
  check_op("softmax default axis 2-D", [](const Inputs& in) { return softmax(in[0]); },
           [](Device d) { Generator g(112); return Inputs{normal({3, 5}, g, d)}; });
  check_op("log_softmax default axis 2-D", [](const Inputs& in) { return log_softmax(in[0]); },
           [](Device d) { Generator g(112); return Inputs{normal({3, 5}, g, d)}; });
  check_op("softmax of a transposed view axis 0", [](const Inputs& in) { return softmax(transpose(in[0], 0, 1), 0); },
           [](Device d) { Generator g(113); return Inputs{normal({3, 5}, g, d)}; });
  check_op("log_softmax of shifted large values", [](const Inputs& in) { return log_softmax(add(in[0], 300.0), 1); },
           [](Device d) { Generator g(114); return Inputs{normal({2, 4}, g, d)}; });
}

TEST_CASE("gradcheck: cross_entropy, nll_loss, mse_loss with each reduction") {
  const std::vector<std::pair<std::string, Reduction>> reductions = {
      {"Mean", Reduction::Mean}, {"Sum", Reduction::Sum}, {"None", Reduction::None}};
  for (const auto& [rname, red] : reductions) {
    check_op("cross_entropy " + rname, [red = red](const Inputs& in) { return cross_entropy(in[0], in[1], red); },
             [](Device d) {
               Generator g(121);
               return Inputs{mul(normal({4, 5}, g, d), 2.0), labels({1, 0, 4, 2}, d)};
             });
    check_op("nll_loss " + rname, [red = red](const Inputs& in) { return nll_loss(in[0], in[1], red); },
             [](Device d) {
               Generator g(122);
               return Inputs{normal({4, 5}, g, d), labels({3, 3, 0, 4}, d)};
             });
    check_op("nll_loss(log_softmax) " + rname,
             [red = red](const Inputs& in) { return nll_loss(log_softmax(in[0], 1), in[1], red); },
             [](Device d) {
               Generator g(123);
               return Inputs{normal({3, 4}, g, d), labels({2, 0, 3}, d)};
             });
    check_op("mse_loss " + rname, [red = red](const Inputs& in) { return mse_loss(in[0], in[1], red); },
             [](Device d) {
               Generator g(124);
               return Inputs{normal({3, 4}, g, d), normal({3, 4}, g, d)};
             });
    check_op("mse_loss 3-D, input only " + rname, [red = red](const Inputs& in) { return mse_loss(in[0], in[1], red); },
             [](Device d) {
               Generator g(125);
               return Inputs{normal({2, 2, 3}, g, d).requires_grad_(), normal({2, 2, 3}, g, d)};
             });
  }
  check_op("cross_entropy with one row, one class", [](const Inputs& in) { return cross_entropy(in[0], in[1]); },
           [](Device d) {
             Generator g(126);
             return Inputs{normal({1, 1}, g, d), labels({0}, d)};
           });
  // cross_entropy agrees with nll_loss(log_softmax) in value.
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(127);
    Tensor x = normal({4, 5}, g, d);
    Tensor t = labels({1, 0, 4, 2}, d);
    for (const auto& entry : reductions) {
      const std::string& rname = entry.first;  // named: doctest's INFO lambda cannot capture a binding (C++17)
      const Reduction red = entry.second;
      INFO(rname);
      CHECK(allclose(cross_entropy(x, t, red), nll_loss(log_softmax(x, 1), t, red), 1e-12, 1e-12));
    }
    CHECK(cross_entropy(x, t, Reduction::None).shape() == Shape{4});
    CHECK(cross_entropy(x, t).shape() == Shape{});
    CHECK(mse_loss(x, x, Reduction::None).shape() == Shape{4, 5});
  }
}

TEST_CASE("gradcheck: a composite model-like expression") {
  // linear -> tanh -> linear -> cross_entropy, with every parameter checked at once.
  check_op("mlp cross_entropy",
           [](const Inputs& in) {
             Tensor h = tanh(linear(in[0], in[1], in[2]));
             return cross_entropy(linear(h, in[3], in[4]), in[5]);
           },
           [](Device d) {
             Generator g(131);
             return Inputs{normal({3, 4}, g, d), normal({5, 4}, g, d), normal({5}, g, d), normal({3, 5}, g, d),
                           normal({3}, g, d), labels({2, 0, 1}, d)};
           });
  check_op("conv -> relu -> max_pool -> flatten -> linear",
           [](const Inputs& in) {
             Tensor h = max_pool2d(relu(conv2d(in[0], in[1], in[2], 1, 1)), 2);
             return linear(flatten(h, 1), in[3]);
           },
           [](Device d) {
             Generator g(132);
             return Inputs{normal({2, 1, 4, 4}, g, d), normal({2, 1, 3, 3}, g, d), add(normal({2}, g, d), 0.1),
                           normal({3, 8}, g, d)};
           });
}

// =====================================================================================================
// Larger problems: the CPU backend's parallel, tiled and split code paths
// =====================================================================================================

namespace {
// Gradients of sum(f(inputs) * w), w a fixed random weight, with respect to every floating input; the
// forward output comes first. Computed on the inputs' device.
std::vector<std::vector<double>> weighted_grads(const Fn& f, Inputs in) {
  Inputs diff;
  for (auto& t : in)
    if (is_floating(t.dtype())) {
      t.requires_grad_();
      diff.push_back(t);
    }
  Tensor out = f(in);
  Generator g(999);
  Tensor w = randn(out.shape(), g, DType::F64, out.device());
  auto gs = grad({sum(mul(out, w))}, diff);
  std::vector<std::vector<double>> res{out.to_vector<double>()};
  for (const auto& t : gs) res.push_back(t.to_vector<double>());
  return res;
}
}  // namespace

TEST_CASE("cpu and reference gradients agree on larger problems") {
  struct Big {
    std::string name;
    Fn f;
    Make make;
  };
  const std::vector<Big> cases = {
      {"matmul [130,70] x [70,140] (tiled gemm)", [](const Inputs& in) { return matmul(in[0], in[1]); },
       [](Device d) { Generator g(161); return Inputs{normal({130, 70}, g, d), normal({70, 140}, g, d)}; }},
      {"batched matmul [3,40,50] x [50,60]", [](const Inputs& in) { return matmul(in[0], in[1]); },
       [](Device d) { Generator g(162); return Inputs{normal({3, 40, 50}, g, d), normal({50, 60}, g, d)}; }},
      {"linear [200,64] x W[100,64] + b", [](const Inputs& in) { return linear(in[0], in[1], in[2]); },
       [](Device d) {
         Generator g(163);
         return Inputs{normal({200, 64}, g, d), normal({100, 64}, g, d), normal({100}, g, d)};
       }},
      {"conv2d x[2,3,20,20] w[8,3,3,3] p1 bias", [](const Inputs& in) { return conv2d(in[0], in[1], in[2], 1, 1); },
       [](Device d) {
         Generator g(164);
         return Inputs{normal({2, 3, 20, 20}, g, d), normal({8, 3, 3, 3}, g, d), normal({8}, g, d)};
       }},
      {"conv2d x[2,3,21,19] w[4,3,3,2] s2 p1 d2", [](const Inputs& in) { return conv2d(in[0], in[1], Tensor(), 2, 1, 2); },
       [](Device d) { Generator g(165); return Inputs{normal({2, 3, 21, 19}, g, d), normal({4, 3, 3, 2}, g, d)}; }},
      {"sum [2,20000] axis 1 (split fold)", [](const Inputs& in) { return sum(in[0], {1}); },
       [](Device d) { Generator g(166); return Inputs{normal({2, 20000}, g, d)}; }},
      {"sum [300,400] axis 0 (tiles)", [](const Inputs& in) { return sum(in[0], {0}); },
       [](Device d) { Generator g(167); return Inputs{normal({300, 400}, g, d)}; }},
      {"logsumexp [20000]", [](const Inputs& in) { return logsumexp(in[0]); },
       [](Device d) { Generator g(168); return Inputs{normal({20000}, g, d)}; }},
      {"max [3,10000] axis 1", [](const Inputs& in) { return max(in[0], {1}); },
       [](Device d) { Generator g(169); return Inputs{normal({3, 10000}, g, d)}; }},
      {"softmax [4,3000] axis 1", [](const Inputs& in) { return softmax(in[0], 1); },
       [](Device d) { Generator g(170); return Inputs{normal({4, 3000}, g, d)}; }},
      {"log_softmax [50,30,40] axis 1", [](const Inputs& in) { return log_softmax(in[0], 1); },
       [](Device d) { Generator g(171); return Inputs{normal({50, 30, 40}, g, d)}; }},
      {"tanh(a * b) [300,200] x [200]", [](const Inputs& in) { return tanh(mul(in[0], in[1])); },
       [](Device d) { Generator g(172); return Inputs{normal({300, 200}, g, d), normal({200}, g, d)}; }},
      {"where/maximum/div on [200,300]",
       [](const Inputs& in) { return div(maximum(in[0], in[1]), add(square(in[1]), 1.0)); },
       [](Device d) { Generator g(173); return Inputs{normal({200, 300}, g, d), normal({200, 1}, g, d)}; }},
      {"max_pool2d [2,4,32,32] k3 s2 p1", [](const Inputs& in) { return max_pool2d(in[0], 3, 2, 1); },
       [](Device d) { Generator g(174); return Inputs{normal({2, 4, 32, 32}, g, d)}; }},
      {"avg_pool2d [2,4,32,32] k3 s2 p1", [](const Inputs& in) { return avg_pool2d(in[0], 3, 2, 1); },
       [](Device d) { Generator g(175); return Inputs{normal({2, 4, 32, 32}, g, d)}; }},
      {"cross_entropy [500,10]", [](const Inputs& in) { return cross_entropy(in[0], in[1], Reduction::Sum); },
       [](Device d) {
         Generator g(176);
         Tensor x = normal({500, 10}, g, d);
         return Inputs{x, randint(0, 10, {500}, g, d)};
       }},
      {"permute + contiguous + pad [40,30,20]",
       [](const Inputs& in) { return pad(contiguous(permute(in[0], {2, 0, 1})), {1, 2, 3, 0}, 0.5); },
       [](Device d) { Generator g(177); return Inputs{normal({40, 30, 20}, g, d)}; }},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    try {
      auto cpu = weighted_grads(c.f, c.make(Device::CPU));
      auto ref = weighted_grads(c.f, c.make(Device::Reference));
      REQUIRE(cpu.size() == ref.size());
      for (size_t k = 0; k < cpu.size(); ++k) {
        REQUIRE(cpu[k].size() == ref[k].size());
        double worst = 0;
        for (size_t i = 0; i < cpu[k].size(); ++i)
          worst = std::max(worst, std::fabs(cpu[k][i] - ref[k][i]) / (1.0 + std::fabs(ref[k][i])));
        CHECK_MESSAGE(worst <= 1e-9, ((k == 0 ? std::string("forward") : "gradient " + std::to_string(k - 1)) +
                                      ": max relative difference " + std::to_string(worst)));
      }
    } catch (const std::exception& e) {
      FAIL_CHECK((std::string("threw: ") + e.what()));
    }
  }
}

TEST_CASE("fused lstm_sequence: gradcheck, and equal to the composite graph of ops") {
  // x [T,N,I], h0, c0 [N,H], w_ih [4H,I], w_hh [4H,H], b_ih, b_hh [4H]; small values keep gates unsaturated.
  auto make = [](Device d, int64_t T, int64_t N, int64_t I, int64_t H, uint64_t seed) {
    Generator g(seed);
    auto u = [&](const Shape& s) { return uniform(s, -0.8, 0.8, g, DType::F64, d); };
    return Inputs{u({T, N, I}), u({N, H}), u({N, H}), u({4 * H, I}), u({4 * H, H}), u({4 * H}), u({4 * H})};
  };
  const Fn fused = [](const Inputs& in) { return lstm_sequence(in[0], in[1], in[2], in[3], in[4], in[5], in[6]); };
  const Fn composite = [](const Inputs& in) {
    return lstm_sequence_composite(in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
  };
  check_op("lstm_sequence T3 N2 I3 H2", fused, [&](Device d) { return make(d, 3, 2, 3, 2, 181); });
  check_op("lstm_sequence T1 N1 I2 H3", fused, [&](Device d) { return make(d, 1, 1, 2, 3, 182); });
  check_op("lstm_sequence, no biases",
           [](const Inputs& in) { return lstm_sequence(in[0], in[1], in[2], in[3], in[4], Tensor(), Tensor()); },
           [&](Device d) { return make(d, 2, 2, 2, 2, 183); });
  // Fused vs composite on a larger problem (values and every gradient), on both devices, and through
  // a permuted (non-contiguous) input as nn::LSTM passes it.
  for (Device d : kDevices) {
    INFO(device_name(d));
    auto a = weighted_grads(fused, make(d, 7, 5, 6, 16, 184));
    auto b = weighted_grads(composite, make(d, 7, 5, 6, 16, 184));
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      double worst = 0;
      for (size_t i = 0; i < a[k].size(); ++i)
        worst = std::max(worst, std::fabs(a[k][i] - b[k][i]) / (1.0 + std::fabs(b[k][i])));
      CHECK_MESSAGE(worst <= 1e-12, ("entry " + std::to_string(k) + ": max relative difference " + std::to_string(worst)));
    }
  }
  const Fn permuted = [](const Inputs& in) {
    return lstm_sequence(permute(in[0], {1, 0, 2}), in[1], in[2], in[3], in[4], in[5], in[6]);
  };
  check_op("lstm_sequence on a permuted input", permuted, [&](Device d) {
    Inputs in = make(d, 3, 2, 3, 2, 185);
    in[0] = contiguous(permute(in[0], {1, 0, 2}));  // [N,T,I]
    return in;
  });
  // float32 on the cpu backend: within float rounding of the float64 result.
  Inputs in64 = make(Device::CPU, 28, 8, 28, 32, 186);
  Inputs in32;
  for (const auto& t : in64) in32.push_back(t.to(DType::F32));
  auto r64 = fused(in64).to_vector<double>(), r32 = fused(in32).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < r64.size(); ++i) worst = std::max(worst, std::fabs(r64[i] - r32[i]));
  CHECK(worst < 1e-5);
}

TEST_CASE("gradcheck: long reductions (split folds on the cpu backend)") {
  // A few checked elements inside a long fixed tensor: the reduction takes the long-axis path while
  // gradcheck stays cheap (only the marked input is perturbed).
  auto make = [](double shift) {
    return [shift](Device d) {
      Generator g(181);
      Tensor x = add(normal({1, 6}, g, d), shift).requires_grad_();
      return Inputs{x, normal({1, 8200}, g, d)};
    };
  };
  auto joined = [](const Inputs& in) { return concat({in[1], in[0]}, 1); };
  check_op("sum over 8206 elements", [joined](const Inputs& in) { return sum(joined(in), {1}); }, make(0));
  check_op("mean over 8206 elements", [joined](const Inputs& in) { return mean(joined(in)); }, make(0));
  check_op("logsumexp over 8206 elements", [joined](const Inputs& in) { return logsumexp(joined(in), {1}); }, make(2));
  check_op("max over 8206 elements (max among the checked ones)",
           [joined](const Inputs& in) { return max(joined(in), {-1}, true); }, make(10));
  check_op("softmax over 8206 elements", [joined](const Inputs& in) { return slice(softmax(joined(in), 1), 1, -6, 8206); },
           make(3));
}

// =====================================================================================================
// gradcheck itself
// =====================================================================================================

namespace {
// Identity whose backward is deliberately wrong: returns 2 g instead of g.
Tensor bad_identity(const Tensor& x) {
  Tensor y = x.clone();
  return record("bad_identity", {x}, y, [](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, 2.0)};
  });
}
// x^3 with the right backward.
Tensor good_cube(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_graph;
    y = mul(mul(x, x), x);
  }
  if (!should_record({x})) return y;
  SavedTensor sx(x, "good_cube");
  return record("good_cube", {x}, y, [sx](const Tensor& g, const std::vector<bool>&) {
    Tensor xv = sx.unpack();
    return std::vector<Tensor>{mul(g, mul(square(xv), 3.0))};
  });
}
// sum over the last axis whose backward forgets element 0 of each row (one Jacobian column wrong).
Tensor bad_row_sum(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_graph;
    y = sum(x, {-1});
  }
  Shape xs = x.shape();
  return record("bad_row_sum", {x}, y, [xs](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = contiguous(expand(unsqueeze(g, -1), xs)).clone();
    for (int64_t r = 0; r < xs[0]; ++r) gx.set({r, 0}, 0.0);
    return std::vector<Tensor>{gx};
  });
}
// Multiplies a by b but sends no gradient to b.
Tensor mul_forgets_b(const Tensor& a, const Tensor& b) {
  Tensor y;
  {
    NoGradGuard no_graph;
    y = mul(a, b);
  }
  SavedTensor sb(b, "mul_forgets_b");
  return record("mul_forgets_b", {a, b}, y, [sb](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, sb.unpack()), Tensor()};
  });
}
}  // namespace

TEST_CASE("gradcheck detects a wrong backward") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(141);
    Tensor x = normal({2, 3}, g, d);
    auto r = gradcheck([](const Inputs& in) { return bad_identity(in[0]); }, {x});
    CHECK_FALSE(r.ok);
    CHECK(r.max_abs_error == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(r.worst.find("analytic 2") != std::string::npos);
    CHECK(r.to_string().find("FAILED") != std::string::npos);

    auto r2 = gradcheck([](const Inputs& in) { return bad_row_sum(in[0]); }, {x});
    CHECK_FALSE(r2.ok);
    CHECK(r2.max_abs_error == doctest::Approx(1.0).epsilon(1e-6));

    Tensor b = normal({2, 3}, g, d);
    auto r3 = gradcheck([](const Inputs& in) { return mul_forgets_b(in[0], in[1]); }, {x, b});
    CHECK_FALSE(r3.ok);
    CHECK(r3.worst.find("input 1") != std::string::npos);
    // ... but passes when only the first input is checked.
    Tensor xm = x.clone().requires_grad_();
    auto r4 = gradcheck([](const Inputs& in) { return mul_forgets_b(in[0], in[1]); }, {xm, b});
    CHECK_MESSAGE(r4.ok, r4.to_string());

    // A correct custom op passes, and a tiny error beyond tolerance is still caught.
    auto r5 = gradcheck([](const Inputs& in) { return good_cube(in[0]); }, {x});
    CHECK_MESSAGE(r5.ok, r5.to_string());
    auto r6 = gradcheck([](const Inputs& in) { return add(good_cube(in[0]), mul(in[0], 1e-3)); }, {x},
                        GradcheckOptions{});
    CHECK_MESSAGE(r6.ok, r6.to_string());
    auto r7 = gradcheck(
        [](const Inputs& in) {
          Tensor y = in[0].clone();  // forward: x; backward claims 1.01
          return record("off_by_1pct", {in[0]}, y, [](const Tensor& gr, const std::vector<bool>&) {
            return std::vector<Tensor>{mul(gr, 1.01)};
          });
        },
        {x});
    CHECK_FALSE(r7.ok);
  }
}

TEST_CASE("gradcheck refuses float32 inputs and outputs that do not depend on the inputs") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Generator g(142);
    Tensor x32 = randn({2, 2}, g, DType::F32, d);
    CHECK_THROWS_AS(gradcheck([](const Inputs& in) { return exp(in[0]); }, {x32}), TypeError);
    Tensor x64 = normal({2, 2}, g, d);
    CHECK_THROWS_AS(gradcheck([](const Inputs& in) { return add(in[0], in[1]); }, {x64, x32}), TypeError);
    CHECK_THROWS_AS(gradcheck([d](const Inputs&) { return ones({2}, DType::F64, d); }, {x64}), AutogradError);
    // gradcheck works on private copies: the caller's input is neither changed nor marked.
    Tensor before = x64.clone();
    gradcheck([](const Inputs& in) { return exp(in[0]); }, {x64});
    CHECK(bitwise_equal(before, x64));
    CHECK_FALSE(x64.requires_grad());
  }
}

// =====================================================================================================
// Forward values against hand-computed numbers
// =====================================================================================================

TEST_CASE("forward values: reductions, softmax, cross_entropy") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    check_values(logsumexp(values({1, 2, 3}, {3}, d)), {3.0 + std::log(1 + std::exp(-1.0) + std::exp(-2.0))});
    check_values(logsumexp(values({1000, 1000}, {2}, d)), {1000 + std::log(2.0)});
    check_values(logsumexp(values({1, 2, 3, 4}, {2, 2}, d), {1}, true),
                 {2 + std::log(1 + std::exp(-1.0)), 4 + std::log(1 + std::exp(-1.0))});
    check_values(softmax(values({0, std::log(2.0)}, {2}, d)), {1.0 / 3, 2.0 / 3});
    check_values(log_softmax(values({0, std::log(2.0)}, {2}, d)), {std::log(1.0 / 3), std::log(2.0 / 3)});
    check_values(softmax(values({0, 0, std::log(3.0), 0}, {2, 2}, d), 0), {0.25, 0.5, 0.75, 0.5});
    check_values(cross_entropy(values({0, 0}, {1, 2}, d), labels({0}, d)), {std::log(2.0)});
    check_values(cross_entropy(values({0, 0, 0, std::log(3.0)}, {2, 2}, d), labels({0, 1}, d), Reduction::None),
                 {std::log(2.0), std::log(4.0 / 3)});
    check_values(cross_entropy(values({0, 0, 0, std::log(3.0)}, {2, 2}, d), labels({0, 1}, d), Reduction::Sum),
                 {std::log(2.0) + std::log(4.0 / 3)});
    check_values(nll_loss(values({-1, -2, -3, -4}, {2, 2}, d), labels({1, 0}, d)), {2.5});
    check_values(nll_loss(values({-1, -2, -3, -4}, {2, 2}, d), labels({1, 0}, d), Reduction::Sum), {5});
    check_values(mse_loss(values({1, 2, 3}, {3}, d), values({1, 0, 6}, {3}, d)), {13.0 / 3});
    check_values(mse_loss(values({1, 2, 3}, {3}, d), values({1, 0, 6}, {3}, d), Reduction::Sum), {13});
    check_values(mse_loss(values({1, 2, 3}, {3}, d), values({1, 0, 6}, {3}, d), Reduction::None), {0, 4, 9});
    Tensor m = values({1, 5, 3, 4, 2, 6}, {2, 3}, d);
    check_values(sum(m, {0}), {5, 7, 9});
    check_values(mean(m, {1}), {3, 4});
    check_values(max(m, {1}), {5, 6});
    check_values(max(m), {6});
    check_values(pow(values({2, 9}, {2}, d), values({3, 0.5}, {2}, d)), {8, 3});
    check_values(clamp(values({-2, 0.3, 2}, {3}, d), -1, 1), {-1, 0.3, 1});
    check_values(leaky_relu(values({-2, 3}, {2}, d), 0.1), {-0.2, 3});
    check_values(where(values({1, 0, 1}, {3}, d), values({1, 2, 3}, {3}, d), values({-1}, {1}, d)), {1, -1, 3});
  }
}

TEST_CASE("forward values: conv2d, pooling, pad, slice") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Tensor x = values({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, d);
    Tensor k = ones({1, 1, 2, 2}, DType::F64, d);
    Tensor y = conv2d(x, k);
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    check_values(y, {12, 16, 24, 28});
    check_values(conv2d(x, k, values({0.5}, {1}, d)), {12.5, 16.5, 24.5, 28.5});
    // padding 1, stride 2: windows at the corners.
    check_values(conv2d(x, k, Tensor(), 2, 1), {1, 5, 11, 28});
    // dilation 2 with a 2x2 kernel touches the four corners of the 3x3 input.
    check_values(conv2d(x, k, Tensor(), 1, 0, 2), {1 + 3 + 7 + 9});
    // max_pool2d with padding: padding is -inf, so negative inputs are not replaced by 0.
    check_values(max_pool2d(x, 2, 2, 1), {1, 3, 7, 9});
    check_values(max_pool2d(neg(x), 2, 2, 1), {-1, -2, -4, -5});
    check_values(max_pool2d(x, 2, 1), {5, 6, 8, 9});
    // avg_pool2d counts padding in the divisor (count_include_pad).
    check_values(avg_pool2d(x, 2, 2, 1), {0.25, 1.25, 2.75, 7});
    check_values(avg_pool2d(x, 3), {5});
    // pad
    check_values(pad(values({1, 2}, {2}, d), {1, 2}, 9), {9, 1, 2, 9, 9});
    Tensor p = pad(values({1, 2, 3, 4}, {2, 2}, d), {0, 1, 1, 0});
    CHECK(p.shape() == Shape{3, 3});
    check_values(p, {0, 0, 0, 1, 2, 0, 3, 4, 0});
    // slice
    Tensor r = arange(10, DType::F64, d);
    check_values(slice(r, 0, 1, -1, 3), {1, 4, 7});
    check_values(slice(r, 0, -3, 100), {7, 8, 9});
    check_values(slice(r, 0, -100, 2), {0, 1});
    check_values(slice(r, 0, 2, 10, 4), {2, 6});
    CHECK(slice(r, 0, 8, 2).numel() == 0);
    Tensor m = values({1, 2, 3, 4, 5, 6}, {2, 3}, d);
    check_values(slice(m, 1, 0, 3, 2), {1, 3, 4, 6});
    check_values(concat({m, m}, 0), {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
    check_values(stack({values({1, 2}, {2}, d), values({3, 4}, {2}, d)}, 1), {1, 3, 2, 4});
    check_values(matmul(m, transpose(m, 0, 1)), {14, 32, 32, 77});
    check_values(linear(m, values({1, 0, -1}, {1, 3}, d), values({10}, {1}, d)), {8, 8});
  }
}

TEST_CASE("gradient tie rules: max routes to the first maximum, minimum/maximum split ties") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Tensor x = values({1, 3, 3, 2}, {4}, d).requires_grad_();
    auto gx = grad({max(x)}, {x});
    check_values(gx[0], {0, 1, 0, 0});
    Tensor a = values({1, 2, 5}, {3}, d).requires_grad_();
    Tensor b = values({1, 3, 4}, {3}, d).requires_grad_();
    auto gmax = grad({sum(maximum(a, b))}, {a, b});
    check_values(gmax[0], {0.5, 0, 1});
    check_values(gmax[1], {0.5, 1, 0});
    auto gmin = grad({sum(minimum(a, b))}, {a, b});
    check_values(gmin[0], {0.5, 1, 0});
    check_values(gmin[1], {0.5, 0, 1});
    // abs and relu at 0: gradient 0; clamp at the bounds: gradient passes.
    Tensor z = values({0, -1, 1}, {3}, d).requires_grad_();
    check_values(grad({sum(abs(z))}, {z})[0], {0, -1, 1});
    check_values(grad({sum(relu(z))}, {z})[0], {0, 0, 1});
    check_values(grad({sum(clamp(z, -1, 1))}, {z})[0], {1, 1, 1});
    // pow: d/db at a == 0 is 0, not NaN.
    Tensor base = values({0, 2}, {2}, d);
    Tensor ex = values({2, 3}, {2}, d).requires_grad_();
    check_values(grad({sum(pow(base, ex))}, {ex})[0], {0, 8 * std::log(2.0)});
  }
}

TEST_CASE("cross_entropy is finite for logits of magnitude 1e4 in float32") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Tensor logits = from_vector(std::vector<float>{1e4f, -1e4f, 0.f, -1e4f, 1e4f, 5e3f}, {2, 3}, d).requires_grad_();
    Tensor target = labels({1, 1}, d);
    Tensor loss = cross_entropy(logits, target);
    CHECK(loss.dtype() == DType::F32);
    double v = loss.item();
    REQUIRE(std::isfinite(v));
    // Row 0: -(-1e4) + logsumexp(1e4, -1e4, 0) = 2e4; row 1: ~0. Mean 1e4.
    CHECK(v == doctest::Approx(1e4).epsilon(1e-5));
    backward(loss);
    Tensor gl = logits.grad();
    REQUIRE(gl.defined());
    auto gv = gl.to_vector<double>();
    for (double e : gv) CHECK(std::isfinite(e));
    // (softmax - one_hot) / N: row 0 -> [1, -1, 0] / 2, row 1 -> [0, 0, 0].
    const std::vector<double> expected{0.5, -0.5, 0, 0, 0, 0};
    for (size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == doctest::Approx(expected[i]).epsilon(1e-5));
    Tensor none = cross_entropy(logits.detach(), target, Reduction::None);
    for (double e : none.to_vector<double>()) CHECK(std::isfinite(e));
    // log_softmax of the same logits stays finite too.
    for (double e : log_softmax(logits.detach(), 1).to_vector<double>()) CHECK(std::isfinite(e));
  }
}

// =====================================================================================================
// Misuse: error types and messages
// =====================================================================================================

TEST_CASE("errors: matmul shape mismatch names the op and both shapes") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Tensor a = zeros({2, 3}, DType::F64, d), b = zeros({4, 5}, DType::F64, d);
    check_throws_with<ShapeError>([&] { matmul(a, b); }, {"matmul", "[2,3]", "[4,5]"});
    Tensor c = zeros({2, 2, 3}, DType::F64, d), e = zeros({3, 2, 4}, DType::F64, d);
    check_throws_with<ShapeError>([&] { matmul(c, e); }, {"matmul", "[2,2,3]", "[3,2,4]"});  // batch 2 vs 3
    Tensor v = zeros({3}, DType::F64, d);
    check_throws_with<ShapeError>([&] { matmul(v, b); }, {"matmul", "[3]", "[4,5]"});
  }
}

TEST_CASE("errors: loss targets out of range, wrong dtypes") {
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Tensor logits = zeros({2, 3}, DType::F64, d);
    check_throws_with<ValueError>([&] { cross_entropy(logits, labels({0, 3}, d)); }, {"cross_entropy", "3"});
    check_throws_with<ValueError>([&] { cross_entropy(logits, labels({-1, 0}, d)); }, {"cross_entropy", "-1"});
    check_throws_with<ValueError>([&] { nll_loss(logits, labels({5, 0}, d)); }, {"nll_loss"});
    CHECK_THROWS_AS(cross_entropy(logits, zeros({2}, DType::F64, d)), TypeError);   // target not int64
    CHECK_THROWS_AS(cross_entropy(logits, labels({0, 1, 2}, d)), ShapeError);     // target not [N]
    CHECK_THROWS_AS(mse_loss(logits, zeros({3, 2}, DType::F64, d)), ShapeError);
  }
}

TEST_CASE("errors: binary ops with mismatched dtype or device, bad shapes") {
  Generator g(151);
  for (Device d : kDevices) {
    INFO(std::string(device_name(d)));
    Tensor a32 = randn({2, 3}, g, DType::F32, d);
    Tensor b64 = randn({2, 3}, g, DType::F64, d);
    check_throws_with<TypeError>([&] { add(a32, b64); }, {"add", "float32", "float64"});
    check_throws_with<TypeError>([&] { mul(b64, a32); }, {"mul"});
    check_throws_with<TypeError>([&] { sub(a32, b64); }, {"sub"});
    check_throws_with<TypeError>([&] { div(a32, b64); }, {"div"});
    check_throws_with<TypeError>([&] { maximum(a32, b64); }, {"maximum"});
    check_throws_with<TypeError>([&] { matmul(a32, transpose(b64, 0, 1)); }, {"matmul"});
    Tensor c = zeros({4, 3}, DType::F64, d);
    check_throws_with<ShapeError>([&] { add(b64, c); }, {"add", "[2,3]", "[4,3]"});
  }
  Tensor cpu = zeros({2}, DType::F64, Device::CPU), ref = zeros({2}, DType::F64, Device::Reference);
  check_throws_with<TypeError>([&] { add(cpu, ref); }, {"add"});
}

TEST_CASE("errors: lstm_sequence names the argument and the problem, for the fused op and its composite") {
  // T 2, N 3, I 4, H 5: x [2,3,4], h0 c0 [3,5], w_ih [20,4], w_hh [20,5], biases [20].
  Generator g(187);
  auto u = [&](const Shape& s) { return uniform(s, -0.5, 0.5, g); };
  const Tensor x = u({2, 3, 4}), h0 = u({3, 5}), c0 = u({3, 5}), wih = u({20, 4}), whh = u({20, 5}), bih = u({20}),
               bhh = u({20});
  using Lstm = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                          const Tensor&);
  for (Lstm lstm : {Lstm(&lstm_sequence), Lstm(&lstm_sequence_composite)}) {
    check_throws_with<ValueError>([&] { lstm(x, Tensor(), c0, wih, whh, bih, bhh); },
                                  {"lstm_sequence", "h0 is undefined"});
    check_throws_with<ValueError>([&] { lstm(x, h0, c0, wih, whh, bih, Tensor()); },
                                  {"lstm_sequence", "b_hh is undefined", "both biases or neither"});
    check_throws_with<TypeError>([&] { lstm(x, h0, c0, wih, whh.to(DType::F64), bih, bhh); },
                                 {"lstm_sequence", "w_hh is float64", "x is float32"});
    check_throws_with<TypeError>([&] { lstm(x, h0, c0.to(Device::Reference), wih, whh, bih, bhh); },
                                 {"lstm_sequence", "c0", "reference"});
    check_throws_with<ShapeError>([&] { lstm(x, h0, c0, wih, u({20, 4}), bih, bhh); },
                                  {"lstm_sequence", "w_hh [20,4] is not [4H, H]"});
    check_throws_with<ShapeError>([&] { lstm(x, h0, c0, u({20, 3}), whh, bih, bhh); },
                                  {"lstm_sequence", "w_ih [20,3] is not [20,4]"});
    check_throws_with<ShapeError>([&] { lstm(x, u({2, 5}), c0, wih, whh, bih, bhh); },
                                  {"lstm_sequence", "h0 [2,5] is not [3,5]"});
    check_throws_with<ShapeError>([&] { lstm(x, h0, u({3, 4}), wih, whh, bih, bhh); },
                                  {"lstm_sequence", "c0 [3,4] is not [3,5]"});
    check_throws_with<ShapeError>([&] { lstm(x, h0, c0, wih, whh, bih, u({5})); },
                                  {"lstm_sequence", "b_hh [5] is not [20]"});
    check_throws_with<ShapeError>([&] { lstm(reshape(x, {6, 4}), h0, c0, wih, whh, bih, bhh); },
                                  {"lstm_sequence", "x [6,4] is not [T, N, I]"});
  }
}
