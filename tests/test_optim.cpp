// Optimizers, gradient clipping and LR schedules: against PyTorch fixtures (tests/data/golden/optim_*,
// made by tests/golden/make_optim_fixtures.py) and by properties that need no fixtures.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"
#include "advgrad/nn/optim.h"
#include "advgrad/nn/schedule.h"
#include "advgrad/nn/serialize.h"

using namespace advgrad;

namespace {

SafetensorsFile golden(const std::string& name) {
  return load_safetensors(std::string(ADVGRAD_TEST_DATA) + "/golden/" + name + ".safetensors");
}

double meta_double(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  REQUIRE_MESSAGE(it != f.metadata.end(), "fixture metadata lacks " << key);
  return std::stod(it->second);  // Python's repr round-trips exactly through strtod
}

double meta_double_or(const SafetensorsFile& f, const std::string& key, double fallback) {
  return f.metadata.count(key) ? meta_double(f, key) : fallback;
}

bool meta_bool_or(const SafetensorsFile& f, const std::string& key, bool fallback) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? fallback : it->second == "true";
}

const Tensor& entry(const SafetensorsFile& f, const std::string& key) {
  auto it = f.tensors.find(key);
  REQUIRE_MESSAGE(it != f.tensors.end(), "fixture lacks " << key);
  return it->second;
}

// The optimizer a fixture describes, over `params`.
std::unique_ptr<Optimizer> make_optimizer(const SafetensorsFile& f, std::vector<Tensor> params) {
  const std::string kind = f.metadata.at("optimizer");
  const double lr = meta_double(f, "lr");
  if (kind == "SGD")
    return std::make_unique<SGD>(params, lr, meta_double_or(f, "momentum", 0), meta_double_or(f, "dampening", 0),
                                 meta_double_or(f, "weight_decay", 0), meta_bool_or(f, "nesterov", false));
  const double b1 = meta_double(f, "beta1"), b2 = meta_double(f, "beta2"), eps = meta_double(f, "eps");
  if (kind == "Adam") return std::make_unique<Adam>(params, lr, b1, b2, eps, meta_double_or(f, "weight_decay", 0));
  REQUIRE(kind == "AdamW");
  return std::make_unique<AdamW>(params, lr, b1, b2, eps, meta_double(f, "weight_decay"));
}

// A fixed, reproducible gradient for parameter p at step s (for tests that need no fixture).
Tensor gradient_for(const Tensor& p, int64_t s, uint64_t salt) {
  Generator gen(1000 + salt * 97 + uint64_t(s));
  return randn(p.shape(), gen, p.dtype(), p.device());
}

std::vector<Tensor> make_params(DType dt, uint64_t seed) {
  Generator gen(seed);
  return {randn({3, 4}, gen, dt).requires_grad_(), randn({5}, gen, dt).requires_grad_()};
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.clone().requires_grad_());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Against PyTorch

TEST_CASE("optimizers match PyTorch step by step (float64 at 1e-10, float32 at 1e-5, both backends)") {
  for (const char* config : {"sgd", "sgd_momentum", "sgd_nesterov", "adam", "adam_wd", "adamw"}) {
    const SafetensorsFile f = golden(std::string("optim_") + config);
    for (DType dt : {DType::F64, DType::F32})
      for (Device dev : {Device::CPU, Device::Reference}) {
        const std::string where = std::string(config) + " " + dtype_name(dt) + " " + device_name(dev);
        CAPTURE(where);
        const double tol = dt == DType::F64 ? 1e-10 : 1e-5;
        std::vector<Tensor> params;
        for (int i = 0; i < 2; ++i)
          params.push_back(entry(f, "init." + std::to_string(i)).to(dt).to(dev).clone().requires_grad_());
        auto opt = make_optimizer(f, params);
        for (int s = 1; s <= 3; ++s) {
          for (int i = 0; i < 2; ++i) {
            const std::string g = "grad." + std::to_string(s) + "." + std::to_string(i);
            if (f.tensors.count(g)) params[size_t(i)].set_grad(f.tensors.at(g).to(dt).to(dev).clone());
            else params[size_t(i)].zero_grad();  // no gradient this step: the parameter is skipped
          }
          opt->step();
          for (int i = 0; i < 2; ++i) {
            const Tensor& want = entry(f, "after." + std::to_string(s) + "." + std::to_string(i));
            CHECK_MESSAGE(max_abs_diff(params[size_t(i)].to(DType::F64), want) <= tol, "step " << s << " param " << i);
          }
        }
        // Buffers after the last step: the same names and values as PyTorch's optimizer.state_dict().
        const StateDict st = opt->state();
        CHECK(st.at("step").item() == 3);
        size_t expected = 1;
        for (const auto& [key, want] : f.tensors) {
          if (key.rfind("state.", 0) != 0) continue;
          ++expected;
          const std::string name = key.substr(6);
          REQUIRE_MESSAGE(st.count(name), "state() lacks " << name);
          CHECK_MESSAGE(max_abs_diff(st.at(name).to(DType::F64), want) <= tol, name);
        }
        CHECK(st.size() == expected);
      }
  }
}

TEST_CASE("schedules match PyTorch's schedulers") {
  const SafetensorsFile f = golden("optim_schedules");
  auto d = [&](const std::string& k) { return meta_double(f, k); };
  auto n = [&](const std::string& k) { return int64_t(meta_double(f, k)); };
  auto onecycle = [&](const std::string& p) {
    OneCycleOptions o;
    o.pct_start = d(p + ".pct_start");
    o.anneal = f.metadata.at(p + ".anneal_strategy") == "linear" ? Anneal::Linear : Anneal::Cos;
    o.div_factor = d(p + ".div_factor");
    o.final_div_factor = d(p + ".final_div_factor");
    o.three_phase = meta_bool_or(f, p + ".three_phase", false);
    o.base_momentum = d(p + ".base_momentum");
    o.max_momentum = d(p + ".max_momentum");
    return std::make_shared<OneCycleLR>(d(p + ".max_lr"), n(p + ".total_steps"), o);
  };
  std::vector<int64_t> milestones;
  {
    std::string s = f.metadata.at("multistep_lr.milestones") + ",";
    for (size_t pos; (pos = s.find(',')) != std::string::npos; s = s.substr(pos + 1))
      milestones.push_back(std::stoll(s.substr(0, pos)));
  }
  std::vector<std::pair<std::string, std::shared_ptr<const LRSchedule>>> schedules = {
      {"step_lr", std::make_shared<StepLR>(d("step_lr.base"), n("step_lr.step_size"), d("step_lr.gamma"))},
      {"multistep_lr", std::make_shared<MultiStepLR>(d("multistep_lr.base"), milestones, d("multistep_lr.gamma"))},
      {"cosine", std::make_shared<CosineAnnealingLR>(d("cosine.base"), n("cosine.T_max"), d("cosine.eta_min"))},
      {"onecycle_cos", onecycle("onecycle_cos")},
      {"onecycle_linear", onecycle("onecycle_linear")},
      {"onecycle_three_phase", onecycle("onecycle_three_phase")},
      {"linear_warmup", std::make_shared<LinearWarmup>(std::make_shared<Constant>(d("linear_warmup.base")),
                                                      n("linear_warmup.warmup"), d("linear_warmup.start_factor"))},
      {"warmup_cosine",
       std::make_shared<LinearWarmup>(
           std::make_shared<CosineAnnealingLR>(d("warmup_cosine.base"), n("warmup_cosine.T_max"),
                                               d("warmup_cosine.eta_min")),
           n("warmup_cosine.warmup"), d("warmup_cosine.start_factor"))},
  };
  for (const auto& entry_pair : schedules) {
    const std::string& name = entry_pair.first;  // named, not bound: CAPTURE captures it in a lambda
    const auto& sched = entry_pair.second;
    CAPTURE(name);
    const std::vector<double> lrs = entry(f, name + ".lr").to_vector<double>();
    std::vector<double> moms;
    if (f.tensors.count(name + ".momentum")) moms = f.tensors.at(name + ".momentum").to_vector<double>();
    REQUIRE(lrs.size() >= 12);
    // Drive a real optimizer through apply_schedule, as a training loop would.
    Tensor w = zeros({1}, DType::F64).requires_grad_();
    SGD opt({w}, 1.0, 0.9);
    for (size_t k = 0; k < lrs.size(); ++k) {
      CAPTURE(k);
      apply_schedule(opt, *sched, int64_t(k));
      CHECK(std::abs(opt.lr() - lrs[k]) <= 1e-10 * std::abs(lrs[k]) + 1e-15);
      if (!moms.empty()) CHECK(std::abs(opt.momentum() - moms[k]) <= 1e-10);
      else CHECK(opt.momentum() == 0.9);  // schedules without momentum leave it alone
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Properties

TEST_CASE("SGD and Adam minimise a quadratic") {
  // f(x) = sum(a * (x - c)^2) / 2 with curvatures a in [1, 4]: minimum at x = c.
  const Tensor a = from_vector(std::vector<double>{1, 2, 3, 4}), c = from_vector(std::vector<double>{1, -2, 0.5, 3});
  auto run = [&](Optimizer& opt, Tensor& x, int steps) {
    for (int k = 0; k < steps; ++k) {
      opt.zero_grad();
      Tensor diff = sub(x, c);
      backward(mul(sum(mul(a, mul(diff, diff))), 0.5));
      opt.step();
    }
    return max_abs_diff(x, c);
  };
  {
    Tensor x = zeros({4}, DType::F64).requires_grad_();
    SGD opt({x}, 0.1);
    CHECK(run(opt, x, 300) < 1e-10);
  }
  {
    Tensor x = zeros({4}, DType::F64).requires_grad_();
    SGD opt({x}, 0.05, 0.9, 0, 0, true);
    CHECK(run(opt, x, 400) < 1e-10);
  }
  {
    Tensor x = zeros({4}, DType::F64).requires_grad_();
    Adam opt({x}, 0.05);
    CHECK(run(opt, x, 2000) < 1e-3);
  }
}

TEST_CASE("hand-computed single steps") {
  // Adam's first step moves every weight by lr * g / (|g| + eps): the bias corrections cancel exactly.
  Tensor p = from_vector(std::vector<double>{1, 2, 3}).requires_grad_();
  p.set_grad(from_vector(std::vector<double>{0.5, -2, 1e-3}));
  Adam adam({p}, 0.1);
  adam.step();
  CHECK(std::abs(p.at({0}) - (1 - 0.1 * 0.5 / (0.5 + 1e-8))) < 1e-14);
  CHECK(std::abs(p.at({1}) - (2 + 0.1 * 2 / (2 + 1e-8))) < 1e-14);
  CHECK(std::abs(p.at({2}) - (3 - 0.1 * 1e-3 / (1e-3 + 1e-8))) < 1e-14);

  // AdamW with a zero gradient only decays: p * (1 - lr * wd).
  Tensor q = from_vector(std::vector<double>{4, -8}).requires_grad_();
  q.set_grad(zeros({2}, DType::F64));
  AdamW adamw({q}, 0.1, 0.9, 0.999, 1e-8, 0.5);
  adamw.step();
  CHECK(q.to_vector<double>() == std::vector<double>{4 * 0.95, -8 * 0.95});

  // SGD with momentum: buf starts as g, then momentum * buf + (1 - dampening) * g.
  Tensor r = from_vector(std::vector<double>{0}).requires_grad_();
  SGD sgd({r}, 0.5, 0.9, 0.5);
  r.set_grad(from_vector(std::vector<double>{2}));
  sgd.step();  // buf = 2; r = -1
  CHECK(r.item() == -1);
  sgd.step();  // buf = 0.9 * 2 + 0.5 * 2 = 2.8; r = -1 - 1.4
  CHECK(std::abs(r.item() - (-2.4)) < 1e-15);
  CHECK(std::abs(sgd.state().at("0.momentum_buffer").item() - 2.8) < 1e-15);
}

TEST_CASE("updates are in place: handles stay valid, versions move, skipped parameters stay put") {
  Tensor w = ones({2, 2}, DType::F32).requires_grad_();
  Tensor b = ones({2}, DType::F32).requires_grad_();
  Tensor w_view = w.detach();  // another handle on the same storage, as a Module holds
  SGD opt({w, b}, 0.5, 0.9);
  w.set_grad(ones({2, 2}, DType::F32));
  const uint64_t v0 = w.version();
  opt.step();
  CHECK(w.version() > v0);
  CHECK(w_view.to_vector<float>() == std::vector<float>(4, 0.5f));
  CHECK(b.to_vector<float>() == std::vector<float>(2, 1.f));  // no gradient: untouched
  CHECK(w.grad().to_vector<float>() == std::vector<float>(4, 1.f));  // the gradient itself is never changed
  const StateDict st = opt.state();
  CHECK(st.count("0.momentum_buffer") == 1);
  CHECK(st.count("1.momentum_buffer") == 0);  // no state for a parameter that was never updated
  opt.zero_grad();
  CHECK(!w.grad().defined());
  CHECK(!b.grad().defined());
  const std::vector<float> before = w.to_vector<float>();
  opt.step();  // nothing has a gradient: nothing changes
  CHECK(w.to_vector<float>() == before);
  CHECK(opt.step_count() == 2);
}

TEST_CASE("clip_grad_norm returns the global norm and scales all gradients together") {
  Tensor a = zeros({2}, DType::F64).requires_grad_(), b = zeros({1}, DType::F32).requires_grad_();
  Tensor c = zeros({3}, DType::F64).requires_grad_();  // no gradient: ignored
  a.set_grad(from_vector(std::vector<double>{3, 4}));
  b.set_grad(from_vector(std::vector<float>{12}));
  const double norm = clip_grad_norm({a, b, c}, 6.5);
  CHECK(norm == 13);
  const double coef = 6.5 / (13 + 1e-6);
  CHECK(a.grad().to_vector<double>() == std::vector<double>{3 * coef, 4 * coef});
  CHECK(std::abs(b.grad().item() - 12 * coef) < 1e-5);
  CHECK(!c.grad().defined());
  // Below the threshold nothing changes, bit for bit.
  const Tensor before = a.grad().clone();
  CHECK(std::abs(clip_grad_norm({a, b}, 100) - 6.5) < 1e-5);
  CHECK(bitwise_equal(a.grad(), before));
  CHECK(clip_grad_norm({c}, 1.0) == 0);
  CHECK_THROWS_AS(clip_grad_norm({a}, -1.0), ValueError);
}

TEST_CASE("state() / load_state() resume training bit-exactly") {
  for (int kind = 0; kind < 3; ++kind) {
    CAPTURE(kind);
    auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
      if (kind == 0) return std::make_unique<SGD>(ps, 0.1, 0.9, 0.1, 1e-3);
      if (kind == 1) return std::make_unique<Adam>(ps, 1e-2, 0.9, 0.99, 1e-8, 1e-3);
      return std::make_unique<AdamW>(ps, 1e-2);
    };
    auto train = [&](Optimizer& opt, int64_t from, int64_t to) {
      for (int64_t s = from; s < to; ++s) {
        for (size_t i = 0; i < opt.params().size(); ++i) {
          // Parameter 1 gets no gradient on step 1: per-parameter step counts differ from then on.
          if (i == 1 && s == 1) opt.params()[i].zero_grad();
          else opt.params()[i].set_grad(gradient_for(opt.params()[i], s, i));
        }
        opt.step();
      }
    };
    std::vector<Tensor> params = make_params(DType::F32, 7);
    auto opt = make(params);
    train(*opt, 0, 4);
    const std::vector<Tensor> saved_params = clones(params);
    const StateDict saved = opt->state();
    train(*opt, 4, 8);

    std::vector<Tensor> resumed_params = clones(saved_params);
    auto resumed = make(resumed_params);
    resumed->load_state(saved);
    CHECK(resumed->step_count() == 4);
    train(*resumed, 4, 8);
    for (size_t i = 0; i < params.size(); ++i) CHECK(bitwise_equal(resumed_params[i], params[i]));
    const StateDict a = opt->state(), b = resumed->state();
    REQUIRE(a.size() == b.size());
    for (const auto& kv : a) CHECK_MESSAGE(bitwise_equal(kv.second, b.at(kv.first)), kv.first);
    if (kind > 0) CHECK(a.at("1.step").item() == a.at("0.step").item() - 1);
  }
}

TEST_CASE("load_state rejects bad state and changes nothing then") {
  std::vector<Tensor> params = make_params(DType::F64, 3);
  Adam opt(params, 0.01);
  for (Tensor& p : params) p.set_grad(ones_like(p));
  opt.step();
  const StateDict good = opt.state();
  auto expect_error = [&](StateDict bad, const std::string& needle) {
    CAPTURE(needle);
    try {
      opt.load_state(bad);
      FAIL("no error");
    } catch (const ValueError& e) {
      CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
    const StateDict now = opt.state();  // unchanged
    for (const auto& [k, t] : good) CHECK(bitwise_equal(now.at(k), t));
  };
  StateDict bad = good;
  bad["0.exp_avg"] = zeros({4, 3}, DType::F64);
  expect_error(bad, "'0.exp_avg' has shape [4,3] but parameter 0 has shape [3,4]");
  bad = good;
  bad["1.exp_avg_sq"] = zeros({5}, DType::F32);
  expect_error(bad, "'1.exp_avg_sq' is float32");
  bad = good;
  bad["0.momentum_buffer"] = zeros({3, 4}, DType::F64);
  expect_error(bad, "unknown entry '0.momentum_buffer'");
  bad = good;
  bad["2.exp_avg"] = zeros({5}, DType::F64);
  expect_error(bad, "refers to parameter 2");
  bad = good;
  bad.erase("1.exp_avg_sq");
  expect_error(bad, "without '1.exp_avg_sq'");
  bad = good;
  bad.erase("step");
  expect_error(bad, "missing 'step'");
  bad = good;
  bad["0.step"] = scalar_tensor(-1, DType::F64);
  expect_error(bad, "is not a step count");
  bad = good;
  bad["lr"] = scalar_tensor(0.1, DType::F64);
  expect_error(bad, "unknown entry 'lr'");
  // A state for fewer updated parameters is fine (the others start fresh), as is the unchanged state.
  bad = good;
  for (const char* k : {"1.exp_avg", "1.exp_avg_sq", "1.step"}) bad.erase(k);
  opt.load_state(bad);
  CHECK(opt.state().count("1.exp_avg") == 0);
  opt.load_state(good);
  CHECK(opt.state().count("1.exp_avg") == 1);
}

// A NaN momentum buffer in a checkpoint makes every later step NaN while the gradients stay finite (so a
// NaN-gradient guard never fires): load_state refuses it, naming the entry, unless allow_non_finite.
TEST_CASE("load_state refuses NaN and inf buffers unless allow_non_finite") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  {
    std::vector<Tensor> params = make_params(DType::F32, 4);
    SGD opt(params, 0.1, 0.9);
    for (Tensor& p : params) p.set_grad(ones_like(p));
    opt.step();
    const StateDict good = opt.state();
    StateDict bad = good;
    Tensor buf = good.at("1.momentum_buffer").clone();
    buf.set({2}, nan);
    bad["1.momentum_buffer"] = buf;
    CHECK_THROWS_WITH_AS(opt.load_state(bad),
                         doctest::Contains("SGD.load_state: '1.momentum_buffer' (buffer of parameter 1) holds 1 "
                                           "non-finite value (the first, NaN, at flat index 2)"),
                         ValueError);
    for (const auto& kv : good) CHECK_MESSAGE(bitwise_equal(opt.state().at(kv.first), kv.second), kv.first);
    // Allowed, it does what the guard cannot see: finite gradients, NaN weights after one step.
    opt.load_state(bad, /*allow_non_finite=*/true);
    for (Tensor& p : params) p.set_grad(ones_like(p));
    opt.step();
    CHECK(std::isnan(params[1].to_vector<double>()[2]));
  }
  {
    std::vector<Tensor> params = make_params(DType::F64, 5);
    Adam opt(params, 0.01);
    for (Tensor& p : params) p.set_grad(ones_like(p));
    opt.step();
    StateDict bad = opt.state();
    Tensor v = bad.at("0.exp_avg_sq").clone();
    v.set({1, 3}, inf);
    bad["0.exp_avg_sq"] = v;
    CHECK_THROWS_WITH_AS(opt.load_state(bad),
                         doctest::Contains("'0.exp_avg_sq' (buffer of parameter 0) holds 1 non-finite value (the "
                                           "first, +inf, at flat index 7)"),
                         ValueError);
    opt.load_state(bad, true);
    CHECK(opt.state().at("0.exp_avg_sq").to_vector<double>()[7] == inf);
  }
}

TEST_CASE("hyper-parameter checks") {
  Tensor p = zeros({2}).requires_grad_();
  CHECK_THROWS_AS(SGD({p}, -0.1), ValueError);
  CHECK_THROWS_AS(SGD({p}, 0.1, 0.9, 0.1, 0, true), ValueError);  // nesterov needs zero dampening
  CHECK_THROWS_AS(SGD({p}, 0.1, 0, 0, 0, true), ValueError);      // and momentum
  CHECK_THROWS_AS(SGD({p, p}, 0.1), ValueError);                  // duplicate parameter
  CHECK_THROWS_AS(SGD({Tensor()}, 0.1), ValueError);
  CHECK_THROWS_AS(Adam({p}, 0.1, 1.0), ValueError);
  CHECK_THROWS_AS(Adam({p}, 0.1, 0.9, -0.1), ValueError);
  Adam adam({p}, 0.1);
  CHECK_THROWS_AS(adam.set_beta1(1.5), ValueError);
  CHECK_THROWS_AS(adam.set_lr(std::nan("")), ValueError);
  p.set_grad(zeros({3}));
  CHECK_THROWS_AS(adam.step(), ShapeError);
  p.set_grad(zeros({2}, DType::F64));
  CHECK_THROWS_AS(adam.step(), TypeError);
}

TEST_CASE("schedules: hand-computed points") {
  OneCycleLR oc(1.0, 100);  // pct_start * total = 30: warm-up ends exactly at step 29
  CHECK(oc.lr_at(0) == doctest::Approx(1.0 / 25).epsilon(1e-14));
  CHECK(*oc.momentum_at(0) == doctest::Approx(0.95).epsilon(1e-14));
  CHECK(oc.lr_at(29) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(*oc.momentum_at(29) == doctest::Approx(0.85).epsilon(1e-14));
  CHECK(oc.lr_at(28) < oc.lr_at(29));
  CHECK(oc.lr_at(30) < oc.lr_at(29));
  CHECK(oc.lr_at(99) == doctest::Approx(1.0 / 25 / 1e4).epsilon(1e-12));
  CHECK(*oc.momentum_at(99) == doctest::Approx(0.95).epsilon(1e-14));
  CHECK_NOTHROW(oc.lr_at(100));  // PyTorch allows one more scheduler.step()
  CHECK_THROWS_AS(oc.lr_at(101), ValueError);
  CHECK_THROWS_AS(oc.lr_at(-1), ValueError);
  // Linear: halfway through the warm-up phase (29 steps) lies halfway between 0.04 and 1.
  OneCycleOptions lin;
  lin.anneal = Anneal::Linear;
  lin.cycle_momentum = false;
  OneCycleLR ol(1.0, 59, lin);  // 0.3 * 59 = 17.7: warm-up ends at 16.7
  CHECK(ol.lr_at(0) == doctest::Approx(0.04).epsilon(1e-14));
  CHECK(ol.lr_at(8) == doctest::Approx(0.04 + 0.96 * 8 / 16.7).epsilon(1e-12));
  CHECK(!ol.momentum_at(3).has_value());
  CHECK_THROWS_AS(OneCycleLR(1.0, 0), ValueError);

  StepLR st(0.1, 30, 0.1);
  CHECK(st.lr_at(29) == 0.1);
  CHECK(st.lr_at(30) == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(st.lr_at(95) == doctest::Approx(1e-4).epsilon(1e-14));
  MultiStepLR ms(1.0, {8, 3}, 0.5);  // unsorted milestones are fine
  CHECK(ms.lr_at(2) == 1.0);
  CHECK(ms.lr_at(3) == 0.5);
  CHECK(ms.lr_at(8) == 0.25);
  CosineAnnealingLR cos(0.2, 10, 0.02);
  CHECK(cos.lr_at(0) == doctest::Approx(0.2).epsilon(1e-15));
  CHECK(cos.lr_at(5) == doctest::Approx(0.11).epsilon(1e-14));
  CHECK(cos.lr_at(10) == doctest::Approx(0.02).epsilon(1e-14));
  LinearWarmup warm(std::make_shared<StepLR>(1.0, 2, 0.5), 4, 0.2);
  CHECK(warm.lr_at(0) == doctest::Approx(0.2));
  CHECK(warm.lr_at(2) == doctest::Approx(0.6));
  CHECK(warm.lr_at(4) == 1.0);   // inner step 0
  CHECK(warm.lr_at(6) == 0.5);   // inner step 2
  CHECK(Constant(0.3).lr_at(1000) == 0.3);

  // apply_schedule drives Adam's beta1 with a momentum-cycling schedule.
  Tensor p = zeros({1}).requires_grad_();
  Adam adam({p}, 1.0);
  apply_schedule(adam, oc, 29);
  CHECK(adam.lr() == doctest::Approx(1.0));
  CHECK(adam.beta1() == doctest::Approx(0.85));
  apply_schedule(adam, Constant(0.5), 30);
  CHECK(adam.beta1() == doctest::Approx(0.85));  // a schedule without momentum leaves beta1 alone
}
