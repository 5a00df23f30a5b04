// Modules: names and counts as PyTorch, state dicts, modes, freezing, layer behaviour and loss properties.
// (Numerics against PyTorch are in test_nn_golden.cpp.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/node.h"
#include "advgrad/nn/losses.h"
#include "advgrad/nn/models.h"

using namespace advgrad;

namespace {
Shape predict_shape(Module& m, const Shape& input) {
  NoGradGuard no_grad;
  return m.forward(zeros(input)).shape();
}

std::vector<std::string> keys(const StateDict& sd) {
  std::vector<std::string> k;
  for (const auto& kv : sd) k.push_back(kv.first);
  return k;
}
}  // namespace

TEST_CASE("zoo models have PyTorch's state_dict keys and parameter counts") {
  Generator g(0);
  auto small = make_model("small_cnn", g);
  CHECK(keys(small->state_dict()) == std::vector<std::string>{"0.bias", "0.weight", "3.bias", "3.weight", "7.bias",
                                                                "7.weight", "9.bias", "9.weight"});
  CHECK(small->num_parameters() == 171158);
  CHECK(make_model("madry_cnn", g)->num_parameters() == 3274634);
  auto lstm = make_model("lstm", g);
  CHECK(keys(lstm->state_dict()) == std::vector<std::string>{"fc.bias", "fc.weight", "lstm.bias_hh_l0",
                                                               "lstm.bias_ih_l0", "lstm.weight_hh_l0",
                                                               "lstm.weight_ih_l0"});
  CHECK(lstm->num_parameters() == 82186);
  auto resnet = make_model("cifar_resnet", g);
  auto rk = keys(resnet->state_dict());
  CHECK(std::find(rk.begin(), rk.end(), "layer2.shortcut.1.running_var") != rk.end());
  CHECK(std::find(rk.begin(), rk.end(), "bn1.num_batches_tracked") != rk.end());
  CHECK_THROWS_AS(make_model("vgg", g), ValueError);
  // Forward shapes.
  Tensor x = rand({2, 1, 28, 28}, g);
  CHECK(small->forward(x).shape() == Shape{2, 10});
  CHECK(lstm->forward(x).shape() == Shape{2, 10});
  resnet->eval();
  CHECK(resnet->forward(rand({2, 3, 32, 32}, g)).shape() == Shape{2, 10});
  CHECK(small->summary().find("Conv2d(1, 16") != std::string::npos);
  CHECK(small->summary().find("total parameters: 171158") != std::string::npos);
}

TEST_CASE("the model table: each entry builds its model, taking its input shape and giving its classes") {
  struct Want {
    const char* name;
    Shape input;
    int64_t classes, parameters;
    const char* type;
  };
  const std::vector<Want> want = {{"small_cnn", {1, 28, 28}, 10, 171158, "Sequential"},
                                  {"madry_cnn", {1, 28, 28}, 10, 3274634, "Sequential"},
                                  {"lstm", {1, 28, 28}, 10, 82186, "LSTMClassifier"},
                                  {"cifar_resnet", {3, 32, 32}, 10, 78042, "CifarResNet"}};
  REQUIRE(model_zoo().size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const ModelInfo& info = model_zoo()[i];
    INFO(want[i].name);
    CHECK(info.name == want[i].name);
    CHECK(info.input_shape == want[i].input);
    CHECK(info.num_classes == want[i].classes);
    CHECK_FALSE(info.description.empty());
    Generator g(3);
    std::shared_ptr<Module> m = info.make(g);  // the table's own factory
    CHECK(m->describe() == want[i].type);
    CHECK(m->num_parameters() == want[i].parameters);
    m->eval();
    Shape batch = {2};
    batch.insert(batch.end(), info.input_shape.begin(), info.input_shape.end());
    CHECK(predict_shape(*m, batch) == Shape{2, info.num_classes});
    Generator same(3);
    CHECK(make_model(info.name, same)->state_dict().begin()->second.to_vector<double>() ==
          m->state_dict().begin()->second.to_vector<double>());  // make_model is the table's factory
  }
  Generator g(0);
  try {
    make_model("vgg", g);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()) == "unknown model 'vgg' (known: small_cnn, madry_cnn, lstm, cifar_resnet)");
  }
}

TEST_CASE("default initialisation follows PyTorch's bounds and is seeded") {
  Generator g1(5), g2(5), g3(6);
  Linear a(100, 30, g1), b(100, 30, g2), c(100, 30, g3);
  CHECK(bitwise_equal(a.weight, b.weight));
  CHECK_FALSE(bitwise_equal(a.weight, c.weight));
  double bound = 1.0 / std::sqrt(100.0);
  double maxabs = 0;
  for (float v : a.weight.to_vector<float>()) maxabs = std::max(maxabs, double(std::fabs(v)));
  CHECK(maxabs <= bound);
  CHECK(maxabs > 0.9 * bound);  // the full range is used
  Conv2d conv(3, 8, 5, g1);
  double cb = 1.0 / std::sqrt(3.0 * 25);
  for (float v : conv.bias.to_vector<float>()) CHECK(std::fabs(v) <= cb);
  LSTM lstm(10, 20, g1);
  for (const auto& [name, p] : lstm.named_parameters())
    for (float v : p.to_vector<float>()) CHECK(std::fabs(v) <= 1.0 / std::sqrt(20.0));
}

TEST_CASE("load_state_dict: values copied into the same handles; errors name every problem") {
  Generator g(1);
  auto m1 = make_model("small_cnn", g), m2 = make_model("small_cnn", g);
  Tensor w_handle = m2->named_parameters()[0].second;
  m2->load_state_dict(m1->state_dict());
  CHECK(bitwise_equal(w_handle, m1->named_parameters()[0].second));  // same handle now holds m1's values
  StateDict bad = m1->state_dict();
  bad.erase("9.bias");
  bad["extra.weight"] = zeros({1});
  bad["0.weight"] = zeros({16, 1, 3, 3});
  try {
    m2->load_state_dict(bad);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    std::string msg = e.what();
    CHECK(msg.find("missing key '9.bias'") != std::string::npos);
    CHECK(msg.find("unexpected key 'extra.weight'") != std::string::npos);
    CHECK(msg.find("'0.weight': shape [16,1,3,3]") != std::string::npos);
  }
  StateDict partial;
  partial["9.bias"] = ones({10});
  m2->load_state_dict(partial, /*strict=*/false);
  CHECK(m2->state_dict()["9.bias"].to_vector<float>() == std::vector<float>(10, 1.f));
  StateDict wrong_shape;
  wrong_shape["9.bias"] = ones({11});
  CHECK_THROWS_AS(m2->load_state_dict(wrong_shape, false), ValueError);
}

// NaN/inf weights would evaluate silently (relu and max-pool propagate them into every logit): refused
// by default, naming the tensor and what is wrong, with nothing loaded; allow_non_finite loads them.
TEST_CASE("load_state_dict refuses NaN and inf values unless allow_non_finite") {
  Generator g(2);
  auto src = make_model("small_cnn", g), m = make_model("small_cnn", g);
  const StateDict before = m->state_dict();
  StateDict bad = src->state_dict();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  Tensor w = bad.at("3.weight").clone();
  w.as_strided({w.numel()}, {1}, 0).set({7}, nan);
  w.as_strided({w.numel()}, {1}, 0).set({9}, inf);
  bad["3.weight"] = w;
  Tensor b = bad.at("9.bias").clone();
  b.set({4}, -inf);
  bad["9.bias"] = b;
  // float64 1e300 is finite in the file but +inf once converted to the model's float32.
  Tensor b0 = bad.at("0.bias").to(DType::F64);
  b0.set({0}, 1e300);
  bad["0.bias"] = b0;
  try {
    m->load_state_dict(bad);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find("'3.weight': 2 non-finite values (the first, NaN, at flat index 7)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("'9.bias': 1 non-finite value (the first, -inf, at flat index 4)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("'0.bias': 1 non-finite value (the first, +inf, at flat index 0)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("allow_non_finite") != std::string::npos, msg);
  }
  // Nothing was copied, not even the good tensors.
  for (const auto& kv : m->state_dict()) CHECK_MESSAGE(bitwise_equal(kv.second, before.at(kv.first)), kv.first);
  // Non-strict loading checks values as well.
  StateDict only;
  only["9.bias"] = b;
  CHECK_THROWS_WITH_AS(m->load_state_dict(only, /*strict=*/false), doctest::Contains("'9.bias': 1 non-finite"), ValueError);
  // The opt-out loads them as they are.
  m->load_state_dict(bad, /*strict=*/true, /*allow_non_finite=*/true);
  const StateDict now = m->state_dict();
  CHECK(std::isnan(now.at("3.weight").to_vector<double>()[7]));
  CHECK(now.at("9.bias").to_vector<double>()[4] == -inf);
  CHECK(now.at("0.bias").to_vector<double>()[0] == inf);
}

TEST_CASE("load_state_dict: a float value for an int64 buffer must be a whole number int64 can hold") {
  // cifar_resnet's num_batches_tracked is int64; a file may hold it as a float. int64_t(x) is undefined
  // behaviour for NaN, inf or 1e30 (and 2.5 would silently become 2).
  BatchNorm2d bn(2);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const Shape shape = bn.num_batches_tracked.shape();
  for (const double v : {1e30, nan, -inf, 2.5, 9.3e18, -1e19}) {
    for (const DType dt : {DType::F32, DType::F64}) {
      INFO(v, " as ", dtype_name(dt));
      StateDict sd = bn.state_dict();
      sd["num_batches_tracked"] = full(shape, v, dt);
      try {
        bn.load_state_dict(sd, /*strict=*/true, /*allow_non_finite=*/true);  // the opt-out is for floats only
        FAIL_CHECK("expected ValueError");
      } catch (const ValueError& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK(msg.find("'num_batches_tracked': 1 value that is not a whole number in int64's range") != std::string::npos);
      }
      CHECK(bn.num_batches_tracked.dtype() == DType::I64);
      CHECK(bn.num_batches_tracked.item() == 0.0);  // unchanged
    }
  }
  // Whole numbers convert, down to int64's least value (-2^63 is a double exactly).
  for (const double v : {7.0, -9223372036854775808.0}) {
    StateDict sd = bn.state_dict();
    sd["num_batches_tracked"] = full(shape, v, DType::F64);
    bn.load_state_dict(sd);
    CHECK(bn.num_batches_tracked.dtype() == DType::I64);
    CHECK(bn.num_batches_tracked.to_vector<int64_t>() == std::vector<int64_t>{int64_t(v)});
  }
}

TEST_CASE("train/eval, freezing, zero_grad") {
  Generator g(2);
  auto m = make_model("small_cnn", g);
  m->eval();
  CHECK_FALSE(m->is_training());
  CHECK_FALSE(static_cast<Sequential&>(*m)[0].is_training());
  m->train();
  CHECK(static_cast<Sequential&>(*m)[3].is_training());
  Tensor x = rand({2, 1, 28, 28}, g).requires_grad_();
  Tensor y = from_vector(std::vector<int64_t>{1, 2});
  backward(cross_entropy(m->forward(x), y));
  for (auto& p : m->parameters()) CHECK(p.grad().defined());
  m->zero_grad();
  for (auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());
  m->set_requires_grad(false);
  Tensor gx = grad({cross_entropy(m->forward(x), y)}, {x})[0];
  CHECK(gx.shape() == x.shape());
  for (auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());
  CHECK_THROWS_AS(backward(cross_entropy(m->forward(x.detach()), y)), AutogradError);  // nothing requires grad
}

TEST_CASE("BatchNorm: batch statistics in training, running statistics in eval") {
  BatchNorm2d bn(3);
  Generator g(3);
  Tensor x = add(mul(randn({8, 3, 4, 4}, g), 2.0), 5.0);
  Tensor y = bn.forward(x);
  // Each channel of y has mean ~0 and (biased) variance ~1.
  Tensor m = mean(y, {0, 2, 3}), v = mean(square(y), {0, 2, 3});
  for (float a : m.to_vector<float>()) CHECK(std::fabs(a) < 1e-5);
  for (float a : v.to_vector<float>()) CHECK(a == doctest::Approx(1.0).epsilon(1e-3));
  // running_mean moved 10% of the way to the batch mean (~5).
  for (float a : bn.running_mean.to_vector<float>()) CHECK(a == doctest::Approx(0.5).epsilon(0.1));
  CHECK(bn.num_batches_tracked.item() == 1.0);
  bn.eval();
  Tensor ye = bn.forward(x);
  CHECK_FALSE(allclose(ye, y, 1e-3, 1e-3));
  CHECK(bn.num_batches_tracked.item() == 1.0);  // eval does not update
  CHECK_THROWS_AS(bn.forward(zeros({2, 4, 3, 3})), ShapeError);
}

TEST_CASE("Dropout: seeded, scaled, identity in eval") {
  Dropout d1(0.5, 7), d2(0.5, 7);
  Tensor x = ones({1000});
  Tensor a = d1.forward(x), b = d2.forward(x);
  CHECK(bitwise_equal(a, b));
  auto v = a.to_vector<float>();
  int zeros_count = 0;
  for (float e : v) {
    CHECK((e == 0.f || e == 2.f));
    zeros_count += e == 0.f;
  }
  CHECK(zeros_count > 400);
  CHECK(zeros_count < 600);
  CHECK_FALSE(bitwise_equal(d1.forward(x), a));  // the next call draws a new mask
  d1.eval();
  CHECK(bitwise_equal(d1.forward(x), x));
  CHECK_THROWS_AS(Dropout(1.5), ValueError);
}

TEST_CASE("recurrent layers: shapes, state and PyTorch parameter layout") {
  Generator g(4);
  LSTM lstm(5, 7, g, 2);
  CHECK(lstm.state_dict()["weight_ih_l0"].shape() == Shape{28, 5});
  CHECK(lstm.state_dict()["weight_ih_l1"].shape() == Shape{28, 7});
  Tensor x = randn({3, 6, 5}, g);
  RecurrentOutput out = lstm.forward_sequence(x);
  CHECK(out.output.shape() == Shape{3, 6, 7});
  CHECK(out.state.h.shape() == Shape{2, 3, 7});
  CHECK(out.state.c.shape() == Shape{2, 3, 7});
  // The last output step is the top layer's final h.
  CHECK(allclose(reshape(slice(out.output, 1, 5, 6), {3, 7}), reshape(slice(out.state.h, 0, 1, 2), {3, 7})));
  // Running the sequence in two halves with the carried state gives the same result.
  RecurrentOutput first = lstm.forward_sequence(slice(x, 1, 0, 3));
  RecurrentOutput second = lstm.forward_sequence(slice(x, 1, 3, 6), first.state);
  CHECK(allclose(second.state.h, out.state.h, 1e-5, 1e-6));
  GRU gru(5, 4, g);
  CHECK(gru.state_dict()["weight_hh_l0"].shape() == Shape{12, 4});
  CHECK(gru.forward(x).shape() == Shape{3, 6, 4});
  RNN rnn(5, 4, g, 1, false);
  CHECK(rnn.state_dict().size() == 2);
  CHECK_THROWS_AS(lstm.forward(randn({3, 6, 4}, g)), ShapeError);
}

TEST_CASE("LSTM runs one fused lstm_sequence op per layer, equal to the composite op on its own weights") {
  Generator g(41);
  LSTM lstm(5, 7, g, 2);
  lstm.to(DType::F64);
  Tensor x = randn({3, 6, 5}, g, DType::F64);  // [N, T, I]
  RecurrentOutput out = lstm.forward_sequence(x);
  // The graph behind the output: one lstm_sequence node per layer, no per-step gate ops.
  std::map<std::string, int> ops;
  std::vector<std::shared_ptr<Node>> todo{out.output.grad_fn()};
  std::set<const Node*> seen;
  while (!todo.empty()) {
    std::shared_ptr<Node> n = todo.back();
    todo.pop_back();
    if (!n || !seen.insert(n.get()).second) continue;
    ++ops[n->name()];
    for (const Edge& e : n->next_edges) todo.push_back(e.node);
  }
  CHECK(ops["lstm_sequence"] == 2);
  CHECK(ops["sigmoid"] == 0);
  // Layer by layer with the composite op (time-major inside), from zero initial states.
  StateDict w = lstm.state_dict();
  const Tensor zero = zeros({3, 7}, DType::F64);
  Tensor input = permute(x, {1, 0, 2});  // [T, N, I]
  std::vector<Tensor> last_h, last_c;
  for (const char* layer : {"_l0", "_l1"}) {
    auto p = [&](const char* name) { return w[std::string(name) + layer]; };
    Tensor y = lstm_sequence_composite(input, zero, zero, p("weight_ih"), p("weight_hh"), p("bias_ih"), p("bias_hh"));
    input = reshape(slice(y, 0, 0, 1), {6, 3, 7});  // h_1..h_T feed the next layer
    last_h.push_back(reshape(slice(input, 0, 5, 6), {3, 7}));
    last_c.push_back(reshape(slice(slice(y, 0, 1, 2), 1, 5, 6), {3, 7}));  // c_T
  }
  CHECK(allclose(out.output, permute(input, {1, 0, 2}), 1e-12, 1e-12));
  CHECK(allclose(out.state.h, stack(last_h, 0), 1e-12, 1e-12));
  CHECK(allclose(out.state.c, stack(last_c, 0), 1e-12, 1e-12));
}

TEST_CASE("Embedding, Normalize, AdaptiveAvgPool2d") {
  Generator g(5);
  Embedding emb(10, 3, g);
  Tensor idx = from_vector(std::vector<int64_t>{2, 9, 2, 0}, {2, 2});
  Tensor e = emb.forward(idx);
  CHECK(e.shape() == Shape{2, 2, 3});
  for (int64_t d = 0; d < 3; ++d) CHECK(e.at({0, 0, d}) == emb.weight.at({2, d}));
  CHECK_THROWS_AS(emb.forward(from_vector(std::vector<int64_t>{10})), ValueError);
  Normalize norm({0.5, 0.25}, {0.5, 0.25});
  Tensor n = norm.forward(full({1, 2, 1, 1}, 0.5));
  CHECK(n.to_vector<float>() == std::vector<float>{0.f, 1.f});
  AdaptiveAvgPool2d pool;
  CHECK(pool.forward(arange(8, DType::F32).as_strided({1, 2, 2, 2}, {8, 4, 2, 1}, 0)).to_vector<float>() ==
        std::vector<float>{1.5f, 5.5f});
}

TEST_CASE("losses: label smoothing, KL, CW margin, DLR") {
  Tensor logits = from_vector(std::vector<double>{2, 1, 0, -1, 0, 3, 1, 1}, {2, 4});
  Tensor y = from_vector(std::vector<int64_t>{0, 1});
  // Label smoothing eps: (1-eps) * CE + eps * mean_c(-log p_c).
  Tensor lp = log_softmax(logits, 1);
  double ce0 = -lp.at({0, 0}), ce1 = -lp.at({1, 1});
  double sm0 = 0, sm1 = 0;
  for (int c = 0; c < 4; ++c) sm0 -= lp.at({0, c}) / 4, sm1 -= lp.at({1, c}) / 4;
  double expect = 0.5 * ((0.9 * ce0 + 0.1 * sm0) + (0.9 * ce1 + 0.1 * sm1));
  CHECK(cross_entropy(logits, y, Reduction::Mean, 0.1).item() == doctest::Approx(expect));
  CHECK(cross_entropy(logits, y, Reduction::Mean, 0.0).item() == doctest::Approx(0.5 * (ce0 + ce1)));
  // KL of a distribution with itself is 0; against uniform it is log C - H.
  Tensor p = softmax(logits, 1);
  CHECK(std::fabs(kl_div(log(p), p).item()) < 1e-12);
  // CW margin: best other minus label logit.
  auto cw = cw_margin_loss(logits, y, Reduction::None).to_vector<double>();
  CHECK(cw[0] == 1 - 2);
  CHECK(cw[1] == 1 - 3);  // label 1 has the top logit 3
  // DLR: -(z_y - max_other) / (z1 - z3); shift and scale invariant.
  auto dlr = dlr_loss(logits, y, Reduction::None).to_vector<double>();
  CHECK(dlr[0] == doctest::Approx(-(2.0 - 1.0) / (2.0 - 0.0)));
  CHECK(dlr[1] == doctest::Approx(-(3.0 - 1.0) / (3.0 - 1.0)));
  auto dlr2 = dlr_loss(add(mul(logits, 3.0), 7.0), y, Reduction::None).to_vector<double>();
  CHECK(dlr2[0] == doctest::Approx(dlr[0]));
  CHECK(top_values(logits, 3).to_vector<double>() == std::vector<double>{2, 1, 0, 3, 1, 1});
  Tensor t = from_vector(std::vector<int64_t>{3, 2});
  auto dt = dlr_targeted_loss(logits, y, t, Reduction::None).to_vector<double>();
  CHECK(dt[0] == doctest::Approx(-(2.0 - -1.0) / (2.0 - (0.0 + -1.0) / 2)));
  CHECK_THROWS_AS(dlr_loss(zeros({2, 2}), y), ShapeError);
}

#include "advgrad/autograd/gradcheck.h"

TEST_CASE("gradcheck through whole modules in float64 (LSTM, GRU, RNN, BatchNorm, resnet block) and the losses") {
  Generator g(11);
  // Input gradients of whole modules (parameters fixed) -- the parameters' gradients are covered by
  // the layer ops' gradchecks and the PyTorch golden tests.
  auto input_grad_ok = [&](Module& m, const Tensor& x) {
    m.to(DType::F64);
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return m.forward(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, m.describe(), ": ", r.to_string());
  };
  LSTM lstm(3, 4, g, 2);
  input_grad_ok(lstm, randn({2, 3, 3}, g, DType::F64));
  GRU gru(3, 4, g, 2);
  input_grad_ok(gru, randn({2, 3, 3}, g, DType::F64));
  RNN rnn(3, 4, g);
  input_grad_ok(rnn, randn({2, 3, 3}, g, DType::F64));
  BatchNorm2d bn(2);
  input_grad_ok(bn, randn({3, 2, 2, 2}, g, DType::F64));
  BasicBlock block(2, 3, 2, g);
  block.eval();
  input_grad_ok(block, randn({1, 2, 5, 5}, g, DType::F64));
  Tensor y = from_vector(std::vector<int64_t>{0, 3, 2});
  Tensor t = from_vector(std::vector<int64_t>{1, 0, 3});
  Tensor z = randn({3, 5}, g, DType::F64);
  for (const auto& loss_case : std::vector<std::pair<const char*, std::function<Tensor(const std::vector<Tensor>&)>>>{
           {"ce+smoothing", [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], y, Reduction::Mean, 0.2); }},
           {"kl_div", [&](const std::vector<Tensor>& in) { return kl_div(log_softmax(in[0], 1), softmax(z, 1)); }},
           {"cw", [&](const std::vector<Tensor>& in) { return cw_margin_loss(in[0], y, Reduction::Sum); }},
           {"dlr", [&](const std::vector<Tensor>& in) { return dlr_loss(in[0], y, Reduction::None); }},
           {"dlr_t", [&](const std::vector<Tensor>& in) { return dlr_targeted_loss(in[0], y, t, Reduction::Mean); }},
       }) {
    // Named copies, not a structured binding: CHECK_MESSAGE captures them in a lambda (C++20 for bindings).
    const char* name = loss_case.first;
    const auto& f = loss_case.second;
    auto r = gradcheck(f, {randn({3, 5}, g, DType::F64)});
    CHECK_MESSAGE(r.ok, name, ": ", r.to_string());
  }
}

TEST_CASE("Module::to converts parameters in place; reference device gives the same logits") {
  Generator g(12);
  auto m = make_model("small_cnn", g);
  Tensor handle = m->parameters()[0];
  Tensor x = rand({2, 1, 28, 28}, g);
  Tensor cpu_logits = m->forward(x);
  m->to(Device::Reference);
  CHECK(handle.device() == Device::Reference);
  Tensor ref_logits = m->forward(x.to(Device::Reference));
  CHECK(allclose(ref_logits.to(Device::CPU), cpu_logits, 1e-4, 1e-5));
  m->to(Device::CPU);
  m->to(DType::F64);
  CHECK(handle.dtype() == DType::F64);
  CHECK(allclose(m->forward(x.to(DType::F64)).to(DType::F32), cpu_logits, 1e-4, 1e-5));
}

#include "advgrad/nn/normalize.h"

TEST_CASE("InputNormalized: inner((x - mean) / std) per channel, the inner model's keys and tensors, gradients") {
  Generator g(3);
  auto inner = std::make_shared<Sequential>();
  inner->push_back(std::make_shared<Linear>(3, 2, g));
  inner->push_back(std::make_shared<Dropout>(0.5, 1));
  InputNormalized model(inner, {0.1, 0.2, 0.3}, {0.5, 1.0, 2.0});
  // The forward by hand on one sample: (0.6, 0.2, 1.3) -> (1.0, 0.0, 0.5), then W z + b.
  model.eval();
  const Tensor x = from_vector(std::vector<float>{0.6f, 0.2f, 1.3f}, {1, 3});
  const auto& linear = dynamic_cast<Linear&>((*inner)[0]);
  const std::vector<float> w = linear.weight.to_vector<float>(), b = linear.bias.to_vector<float>();
  const std::vector<float> out = model.forward(x).to_vector<float>();
  REQUIRE(out.size() == 2);
  for (size_t o = 0; o < 2; ++o) CHECK(out[o] == doctest::Approx(w[o * 3] * 1.0 + w[o * 3 + 2] * 0.5 + b[o]).epsilon(1e-6));
  CHECK_FALSE(inner->is_training());  // eval() reached the inner model (Dropout off: same result twice)
  CHECK(model.forward(x).to_vector<float>() == out);

  // The state dict is the inner model's, key for key and tensor for tensor: a file of the inner model
  // loads into the wrapper and changes the inner model.
  const StateDict own = model.state_dict(), theirs = inner->state_dict();
  REQUIRE(own.size() == theirs.size());
  for (const auto& [key, t] : theirs) {
    REQUIRE(own.count(key) == 1);
    CHECK(&own.at(key).impl() == &t.impl());  // the same tensor, not a copy
  }
  StateDict zeroed;
  for (const auto& [key, t] : theirs) zeroed[key] = zeros_like(t);
  model.load_state_dict(zeroed);
  CHECK(linear.weight.to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(model.num_parameters() == inner->num_parameters());

  // One value stands for every channel; other counts and a std <= 0 are refused.
  InputNormalized all(inner, {0.5}, {0.25});
  CHECK(all.forward(full({2, 3}, 0.75)).shape() == Shape{2, 2});
  CHECK_THROWS_AS(InputNormalized(inner, {0.1, 0.2}, {0.5}), ValueError);
  CHECK_THROWS_AS(InputNormalized(inner, {0.1}, {0.0}), ValueError);
  CHECK_THROWS_AS(InputNormalized(nullptr, {0.1}, {0.5}), ValueError);
  InputNormalized two(inner, {0.1, 0.2}, {0.5, 0.5});
  CHECK_THROWS_AS(two.forward(x), ShapeError);

  // Gradients flow through the normalisation to the input (float64 finite differences) and to the
  // inner model's parameters.
  Generator g2(4);
  auto cnn = std::make_shared<Sequential>();
  cnn->push_back(std::make_shared<Conv2d>(Conv2dOptions(2, 2, 3).padding(1), g2));
  InputNormalized wrapped(cnn, {0.3, 0.6}, {0.2, 0.7});
  wrapped.eval();
  wrapped.to(DType::F64);
  CHECK(cnn->state_dict().begin()->second.dtype() == DType::F64);  // to() converted the shared tensors
  const auto r = gradcheck([&](const std::vector<Tensor>& in) { return wrapped.forward(in[0]); },
                           {rand({1, 2, 3, 3}, g2, DType::F64)});
  CHECK_MESSAGE(r.ok, r.to_string());
  wrapped.zero_grad();
  Tensor loss = sum(wrapped.forward(rand({1, 2, 3, 3}, g2, DType::F64)));
  backward(loss);
  for (const auto& kv : cnn->named_parameters()) CHECK_MESSAGE(kv.second.grad().defined(), kv.first);
}
