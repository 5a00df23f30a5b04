// nn layers, losses and zoo models against PyTorch (golden files written by tests/golden/make_nn_fixtures.py;
// see its docstring for the layout). No Python is needed here: the fixtures are committed.
//
//  1. Layers: build the advgrad module from the file's metadata, load the `param.*` state dict, run the
//     forward on the stored input, then backward(sum(output * R)); the output, the input gradient, every
//     parameter gradient and (BatchNorm) the state after the forward must match PyTorch.
//  2. RNN/LSTM/GRU (2 layers, batch_first): output and final states, and the gradients of
//     sum(out * R) + sum(h_n * Rh) (+ sum(c_n * Rc)).
//  3. Losses: cross_entropy (with label smoothing), nll_loss, mse_loss, kl_div as TRADES composes it, and
//     the CW / DLR / targeted-DLR margins (computed in Python from their formulas), with input gradients.
//  4. Zoo: a state_dict saved from a PyTorch-initialised model loads into make_model(name) and gives
//     PyTorch's logits.
//  5. The comparisons can fail: a perturbed weight or a fresh initialisation is detected.
//
// advgrad's modules hold float32 parameters, so the float64 fixtures are fed in as float32. The Python
// script rounds every input, parameter and R to float32-representable values before computing in float64,
// so the reference is exact for the float32 data used here and the only error is advgrad's float32
// arithmetic: elementwise |got - expected| <= atol + rtol * |expected| with rtol = 1e-5 and
// atol = 1e-6 * max(1, max |expected|) (an absolute floor for entries that cancel to near zero).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"
#include "advgrad/nn/layers.h"
#include "advgrad/nn/losses.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"

#ifndef ADVGRAD_TEST_DATA
#error "ADVGRAD_TEST_DATA (the tests/data directory) must be defined by the build"
#endif

using namespace advgrad;

namespace {

// ---- fixture access ----

struct Golden {
  std::string name;
  SafetensorsFile file;

  bool has(const std::string& key) const { return file.tensors.count(key) != 0; }
  bool has_meta(const std::string& key) const { return file.metadata.count(key) != 0; }
  Tensor operator[](const std::string& key) const {
    auto it = file.tensors.find(key);
    if (it == file.tensors.end()) throw ValueError("fixture " + name + ": no tensor '" + key + "'");
    return it->second;
  }
  const std::string& meta(const std::string& key) const {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw ValueError("fixture " + name + ": no metadata '" + key + "'");
    return it->second;
  }
  int64_t meta_int(const std::string& key) const { return std::stoll(meta(key)); }
  double meta_double(const std::string& key) const { return std::stod(meta(key)); }
  bool meta_bool(const std::string& key) const {
    const std::string& v = meta(key);
    if (v != "true" && v != "false") throw ValueError("fixture " + name + ": '" + key + "' is not a boolean");
    return v == "true";
  }
  Size2 meta_size2(const std::string& key) const {  // "h,w"
    const std::string& v = meta(key);
    size_t comma = v.find(',');
    if (comma == std::string::npos) return Size2(std::stoll(v));
    return Size2(std::stoll(v.substr(0, comma)), std::stoll(v.substr(comma + 1)));
  }
  // The entries whose name starts with `prefix`, with the prefix removed.
  StateDict with_prefix(const std::string& prefix) const {
    StateDict out;
    for (const auto& [key, t] : file.tensors)
      if (key.compare(0, prefix.size(), prefix) == 0) out[key.substr(prefix.size())] = t;
    return out;
  }
};

Golden load_golden(const std::string& name) {
  return Golden{name, load_safetensors(std::string(ADVGRAD_TEST_DATA) + "/golden/nn_" + name + ".safetensors")};
}

// A float32 leaf that requires grad, with the fixture's (float32-representable) values.
Tensor leaf(const Tensor& t) { return t.to(DType::F32).clone().requires_grad_(true); }
Tensor f32(const Tensor& t) { return t.to(DType::F32); }

// ---- comparison ----

constexpr double kRtol = 1e-5;
constexpr double kAtolScale = 1e-6;  // atol = kAtolScale * max(1, max |expected|)

// Elementwise |got - expected| <= atol + rtol * |expected|; reports the worst element on failure.
void check_close(const std::string& what, const Tensor& got, const Tensor& expected) {
  INFO(what);
  REQUIRE_MESSAGE(got.defined(), what << ": advgrad produced no tensor (no gradient reached it?)");
  REQUIRE_MESSAGE(got.shape() == expected.shape(),
                  what << ": shape " << shape_str(got.shape()) << ", PyTorch " << shape_str(expected.shape()));
  std::vector<double> g = got.to_vector<double>(), e = expected.to_vector<double>();
  double scale = 1.0;
  for (double v : e) scale = std::max(scale, std::fabs(v));
  const double atol = kAtolScale * scale;
  double worst = 0, max_abs = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    double d = std::fabs(g[i] - e[i]);
    double ratio = std::isnan(d) ? INFINITY : d / (atol + kRtol * std::fabs(e[i]));
    if (!(ratio <= worst)) worst = ratio, worst_i = i;
    if (d > max_abs) max_abs = d;
  }
  const double got_worst = e.empty() ? 0.0 : g[worst_i], want_worst = e.empty() ? 0.0 : e[worst_i];
  CHECK_MESSAGE(worst <= 1.0, what << ": element " << worst_i << " is " << got_worst << ", PyTorch " << want_worst
                                   << " (max |diff| " << max_abs << ", rtol " << kRtol << ", atol " << atol << ")");
}

// Exact comparison for integer state (num_batches_tracked).
void check_equal(const std::string& what, const Tensor& got, const Tensor& expected) {
  INFO(what);
  REQUIRE(got.shape() == expected.shape());
  CHECK(got.to_vector<double>() == expected.to_vector<double>());
}

Reduction parse_reduction(const std::string& r) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  if (r == "none") return Reduction::None;
  throw ValueError("unknown reduction '" + r + "'");
}

// ---- layers ----

std::shared_ptr<Module> build_layer(const Golden& g, Generator& gen) {
  const std::string& layer = g.meta("layer");
  if (layer == "Linear")
    return std::make_shared<Linear>(g.meta_int("in_features"), g.meta_int("out_features"), gen, g.meta_bool("bias"));
  // The newer fixtures (grouped convolution, pooling options) carry the extra options; older ones are defaults.
  if (layer == "Conv2d" && g.has_meta("groups"))
    return std::make_shared<Conv2d>(Conv2dOptions(g.meta_int("in_channels"), g.meta_int("out_channels"),
                                                  g.meta_size2("kernel"))
                                        .stride(g.meta_size2("stride"))
                                        .padding(g.meta_size2("padding"))
                                        .dilation(g.meta_size2("dilation"))
                                        .groups(g.meta_int("groups"))
                                        .bias(g.meta_bool("bias")),
                                    gen);
  if (layer == "Conv2d")
    return std::make_shared<Conv2d>(g.meta_int("in_channels"), g.meta_int("out_channels"), g.meta_size2("kernel"), gen,
                                    g.meta_size2("stride"), g.meta_size2("padding"), g.meta_size2("dilation"),
                                    g.meta_bool("bias"));
  if (layer == "MaxPool2d" && g.has_meta("ceil_mode"))
    return std::make_shared<MaxPool2d>(MaxPool2dOptions(g.meta_size2("kernel"))
                                           .stride(g.meta_size2("stride"))
                                           .padding(g.meta_size2("padding"))
                                           .dilation(g.meta_size2("dilation"))
                                           .ceil_mode(g.meta_bool("ceil_mode")));
  if (layer == "MaxPool2d")
    return std::make_shared<MaxPool2d>(g.meta_size2("kernel"), g.meta_size2("stride"), g.meta_size2("padding"));
  if (layer == "AvgPool2d" && g.has_meta("ceil_mode"))
    return std::make_shared<AvgPool2d>(AvgPool2dOptions(g.meta_size2("kernel"))
                                           .stride(g.meta_size2("stride"))
                                           .padding(g.meta_size2("padding"))
                                           .ceil_mode(g.meta_bool("ceil_mode"))
                                           .count_include_pad(g.meta_bool("count_include_pad")));
  if (layer == "AvgPool2d")
    return std::make_shared<AvgPool2d>(g.meta_size2("kernel"), g.meta_size2("stride"), g.meta_size2("padding"));
  if (layer == "AdaptiveAvgPool2d") return std::make_shared<AdaptiveAvgPool2d>();
  if (layer == "BatchNorm1d")
    return std::make_shared<BatchNorm1d>(g.meta_int("num_features"), g.meta_double("eps"), g.meta_double("momentum"));
  if (layer == "BatchNorm2d")
    return std::make_shared<BatchNorm2d>(g.meta_int("num_features"), g.meta_double("eps"), g.meta_double("momentum"));
  if (layer == "Dropout") return std::make_shared<Dropout>(g.meta_double("p"), 1234);
  if (layer == "ReLU") return std::make_shared<ReLU>();
  if (layer == "LeakyReLU") return std::make_shared<LeakyReLU>(g.meta_double("negative_slope"));
  if (layer == "Tanh") return std::make_shared<Tanh>();
  if (layer == "Sigmoid") return std::make_shared<Sigmoid>();
  if (layer == "Flatten") return std::make_shared<Flatten>();
  if (layer == "Embedding")
    return std::make_shared<Embedding>(g.meta_int("num_embeddings"), g.meta_int("embedding_dim"), gen);
  if (layer == "RNN" || layer == "LSTM" || layer == "GRU") {
    REQUIRE(g.meta_bool("batch_first"));
    int64_t in = g.meta_int("input_size"), h = g.meta_int("hidden_size"), layers = g.meta_int("num_layers");
    if (layer == "RNN") return std::make_shared<RNN>(in, h, gen, layers);
    if (layer == "LSTM") return std::make_shared<LSTM>(in, h, gen, layers);
    return std::make_shared<GRU>(in, h, gen, layers);
  }
  throw ValueError("fixture " + g.name + ": unknown layer '" + layer + "'");
}

// Loads `param.*` (strict: the key sets must agree exactly, buffers included).
void load_params(Module& m, const Golden& g) {
  StateDict params = g.with_prefix("param.");
  REQUIRE_FALSE(params.empty());
  m.load_state_dict(params);
}

// Every parameter's gradient against `grad.param.<key>`, and no stored gradient left unchecked.
void check_param_grads(const Module& m, const Golden& g) {
  auto named = m.named_parameters();
  CHECK(named.size() == g.with_prefix("grad.param.").size());
  for (const auto& entry : named) {
    const std::string& key = entry.first;  // named: doctest's INFO lambda cannot capture a binding (C++17)
    const Tensor& p = entry.second;
    INFO("parameter " << key);
    REQUIRE(g.has("grad.param." + key));
    check_close("grad.param." + key, p.grad(), g["grad.param." + key]);
  }
}

// `after.param.*` (the state after the forward) against the module's state dict.
void check_state_after(const Module& m, const Golden& g) {
  StateDict after = g.with_prefix("after.param."), own = m.state_dict();
  CHECK(after.size() == own.size());
  for (const auto& entry : after) {
    const std::string& key = entry.first;  // named: doctest's message lambda cannot capture a binding (C++17)
    const Tensor& expected = entry.second;
    REQUIRE_MESSAGE(own.count(key), "module has no state '" << key << "'");
    if (expected.dtype() == DType::I64)
      check_equal("after.param." + key, own[key], expected);
    else
      check_close("after.param." + key, own[key], expected);
  }
}

void run_layer_case(const std::string& name) {
  INFO("fixture nn_" << name);
  Golden g = load_golden(name);
  REQUIRE(g.meta("kind") == "layer");
  Generator gen(7);  // initial weights are overwritten by the fixture's
  auto module = build_layer(g, gen);
  module->load_state_dict(g.with_prefix("param."));  // strict: also proves parameter-free layers get none
  module->train(g.meta_bool("train"));

  const Tensor stored_input = g["input"];
  Tensor x = stored_input.dtype() == DType::I64 ? stored_input : leaf(stored_input);
  Tensor y = module->forward(x);
  check_close("output", y, g["output"]);
  backward(sum(mul(y, f32(g["grad_output"]))));
  if (g.has("grad.input")) {
    check_close("grad.input", x.grad(), g["grad.input"]);
  } else {
    CHECK(stored_input.dtype() == DType::I64);  // only integer inputs have no gradient
  }
  check_param_grads(*module, g);
  if (g.meta("layer").rfind("BatchNorm", 0) == 0) REQUIRE_FALSE(g.with_prefix("after.param.").empty());
  if (!g.with_prefix("after.param.").empty()) check_state_after(*module, g);
}

void run_recurrent_case(const std::string& name) {
  INFO("fixture nn_" << name);
  Golden g = load_golden(name);
  Generator gen(7);
  auto module = build_layer(g, gen);
  auto* rnn = dynamic_cast<RecurrentBase*>(module.get());
  REQUIRE(rnn != nullptr);
  load_params(*module, g);
  const bool lstm = g.meta("layer") == "LSTM";

  Tensor x = leaf(g["input"]);
  RecurrentState initial;
  if (g.meta_bool("initial_state")) {
    initial.h = leaf(g["input.h0"]);
    if (lstm) initial.c = leaf(g["input.c0"]);
  }
  RecurrentOutput out = rnn->forward_sequence(x, initial);
  check_close("output", out.output, g["output"]);
  check_close("output.h", out.state.h, g["output.h"]);
  Tensor loss = add(sum(mul(out.output, f32(g["grad_output"]))), sum(mul(out.state.h, f32(g["grad_output.h"]))));
  if (lstm) {
    check_close("output.c", out.state.c, g["output.c"]);
    loss = add(loss, sum(mul(out.state.c, f32(g["grad_output.c"]))));
  } else {
    CHECK_FALSE(out.state.c.defined());
  }
  backward(loss);
  check_close("grad.input", x.grad(), g["grad.input"]);
  if (initial.h.defined()) check_close("grad.input.h0", initial.h.grad(), g["grad.input.h0"]);
  if (initial.c.defined()) check_close("grad.input.c0", initial.c.grad(), g["grad.input.c0"]);
  check_param_grads(*module, g);
}

// ---- losses ----

// The loss of the fixture's configuration; fills `leaves` with the differentiated inputs by fixture key.
Tensor compute_loss(const Golden& g, std::map<std::string, Tensor>& leaves) {
  const std::string& loss = g.meta("loss");
  if (loss == "kl_div") {
    REQUIRE(g.meta("reduction") == "batchmean");
    Tensor adv = leaves["input.adv"] = leaf(g["input.adv"]);
    Tensor nat = leaves["input.nat"] = leaf(g["input.nat"]);
    return kl_div(log_softmax(adv, 1), softmax(nat, 1), KLReduction::BatchMean);
  }
  const Reduction r = parse_reduction(g.meta("reduction"));
  Tensor z = leaves["input"] = leaf(g["input"]);
  if (loss == "mse_loss") {
    Tensor t = leaves["target"] = leaf(g["target"]);
    return mse_loss(z, t, r);
  }
  const Tensor labels = g["target"];
  REQUIRE(labels.dtype() == DType::I64);
  if (loss == "cross_entropy") {
    double eps = g.meta_double("label_smoothing");
    return eps == 0 ? cross_entropy(z, labels, r) : cross_entropy(z, labels, r, eps);
  }
  if (loss == "nll_loss") return nll_loss(z, labels, r);
  if (loss == "cw_margin") return cw_margin_loss(z, labels, r);
  if (loss == "dlr") return dlr_loss(z, labels, r);
  if (loss == "dlr_targeted") return dlr_targeted_loss(z, labels, g["target_class"], r);
  throw ValueError("fixture " + g.name + ": unknown loss '" + loss + "'");
}

// Runs the loss case; returns the leaves (with their gradients) for extra checks.
std::map<std::string, Tensor> run_loss_case(const std::string& name, const std::vector<std::string>& skip_grads = {}) {
  INFO("fixture nn_" << name);
  Golden g = load_golden(name);
  REQUIRE(g.meta("kind") == "loss");
  std::map<std::string, Tensor> leaves;
  Tensor y = compute_loss(g, leaves);
  check_close("output", y, g["output"]);
  backward(sum(mul(y, f32(g["grad_output"]))));
  CHECK(leaves.size() == g.with_prefix("grad.").size());
  for (const auto& [key, t] : leaves) {
    if (std::find(skip_grads.begin(), skip_grads.end(), key) != skip_grads.end()) continue;
    check_close("grad." + key, t.grad(), g["grad." + key]);
  }
  return leaves;
}

const char* kZooModels[] = {"small_cnn", "madry_cnn", "lstm", "cifar_resnet"};


}  // namespace

TEST_CASE("Linear, Conv2d, pooling, activations, Flatten, Dropout, Embedding match PyTorch") {
  for (const char* name : {"linear_bias", "linear_nobias", "conv2d_bias", "conv2d_nobias", "maxpool2d", "maxpool2d_rect",
                           "avgpool2d", "avgpool2d_rect", "adaptive_avgpool2d", "dropout_p0", "dropout_eval", "relu",
                           "leaky_relu", "tanh", "sigmoid", "flatten", "embedding"})
    run_layer_case(name);
}

TEST_CASE("grouped and depthwise Conv2d, and the pooling options (dilation, ceil_mode, count_include_pad) match PyTorch") {
  for (const char* name : {"conv2d_groups", "conv2d_depthwise", "conv2d_depthwise_x2", "maxpool2d_ceil",
                           "maxpool2d_ceil_dilation", "maxpool2d_dilation", "avgpool2d_ceil", "avgpool2d_ceil_nopad",
                           "avgpool2d_nopad"})
    run_layer_case(name);
}

TEST_CASE("BatchNorm1d/2d in training (batch statistics, running-stat update) and eval match PyTorch") {
  for (const char* name : {"batchnorm1d_2d_train", "batchnorm1d_3d_train", "batchnorm2d_train", "batchnorm1d_2d_eval",
                           "batchnorm1d_3d_eval", "batchnorm2d_eval"})
    run_layer_case(name);
}

TEST_CASE("RNN, LSTM and GRU (2 layers, batch_first) match PyTorch: outputs, final states, all gradients") {
  for (const char* name : {"rnn", "lstm", "gru", "lstm_initial_state", "gru_initial_state"}) run_recurrent_case(name);
}

TEST_CASE("cross_entropy (label smoothing), nll_loss, mse_loss match PyTorch in every reduction") {
  for (const char* r : {"mean", "sum", "none"}) {
    run_loss_case(std::string("ce_") + r);
    run_loss_case(std::string("ce_") + r + "_ls");
    run_loss_case(std::string("nll_") + r);
    run_loss_case(std::string("mse_") + r);
  }
}

TEST_CASE("CW margin, DLR and targeted DLR match their formulas evaluated by PyTorch") {
  for (const char* r : {"mean", "sum", "none"}) {
    run_loss_case(std::string("cw_") + r);
    run_loss_case(std::string("dlr_") + r);
    run_loss_case(std::string("dlr_targeted_") + r);
  }
}

TEST_CASE("kl_div(log_softmax(adv), softmax(nat), batchmean) matches PyTorch (TRADES), adversarial side") {
  run_loss_case("kl_div_trades", {"input.nat"});
}

// PyTorch's kl_div differentiates its target too, and TRADES' training loss relies on it: the KL term's
// gradient reaches the model through softmax(model(x_natural)) as well as through model(x_adv).
TEST_CASE("kl_div passes the gradient into the target probabilities as PyTorch does (TRADES training)") {
  Golden g = load_golden("kl_div_trades");
  auto leaves = run_loss_case("kl_div_trades", {"input.nat"});
  check_close("grad.input.nat", leaves["input.nat"].grad(), g["grad.input.nat"]);
}

TEST_CASE("zoo: PyTorch state_dicts load into make_model and give PyTorch's logits") {
  for (const std::string name : kZooModels) {
    INFO("model " << name);
    Golden g = load_golden("zoo_" + name);
    REQUIRE(g.meta("model") == name);
    Generator gen(11);
    auto model = make_model(name, gen);
    load_params(*model, g);
    model->eval();
    const Tensor x = g["input"];
    REQUIRE(x.dtype() == DType::F32);
    NoGradGuard no_grad;
    Tensor logits = model->forward(x);
    // Against PyTorch's float64 evaluation of the same float32 weights and input (advgrad's float32
    // rounding is the only difference), and against the float32 logits PyTorch itself computes.
    check_close("logits vs PyTorch float64", logits, g["output_f64"]);
    check_close("logits vs PyTorch float32", logits, g["output"]);
    if (g.has("output.train")) {  // cifar_resnet: BatchNorm with batch statistics
      model->train();
      check_close("training-mode logits", model->forward(x), g["output.train"]);
    }
  }
}

TEST_CASE("the golden comparisons detect a wrong weight or an unloaded model") {
  // A Linear whose weight is off by 1e-3 in one entry: output and gradients must not pass.
  Golden g = load_golden("linear_bias");
  Generator gen(7);
  auto module = build_layer(g, gen);
  load_params(*module, g);
  auto* lin = dynamic_cast<Linear*>(module.get());
  REQUIRE(lin != nullptr);
  {
    NoGradGuard no_grad;
    lin->weight.set({1, 2}, lin->weight.at({1, 2}) + 1e-3);
  }
  Tensor y = module->forward(f32(g["input"]));
  std::vector<double> got = y.to_vector<double>(), want = g["output"].to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  CHECK(worst > 1e-5);  // far beyond check_close's tolerance (atol 1e-6 here)
  CHECK_FALSE(allclose(y.to(DType::F64), g["output"], 1e-5, 1e-6));

  // A freshly initialised small_cnn is nowhere near the stored logits.
  Golden zoo = load_golden("zoo_small_cnn");
  Generator gen2(3);
  auto fresh = make_model("small_cnn", gen2);
  NoGradGuard no_grad;
  CHECK_FALSE(allclose(fresh->forward(zoo["input"]).to(DType::F64), zoo["output_f64"], 1e-3, 1e-4));
}

TEST_CASE("fixtures hold what the tests rely on") {
  // BatchNorm training fixtures really change the running statistics (so the comparison is meaningful).
  Golden g = load_golden("batchnorm2d_train");
  CHECK_FALSE(allclose(g["param.running_mean"], g["after.param.running_mean"], 0, 1e-6));
  CHECK(g["after.param.num_batches_tracked"].item() == g["param.num_batches_tracked"].item() + 1);
  // The margin-loss fixtures cover both branches: label = argmax for some samples, not for others.
  Golden cw = load_golden("cw_none");
  std::vector<double> correct = eq(argmax(cw["input"], 1), cw["target"]).to_vector<double>();
  CHECK(std::count(correct.begin(), correct.end(), 1.0) > 0);
  CHECK(std::count(correct.begin(), correct.end(), 0.0) > 0);
}
