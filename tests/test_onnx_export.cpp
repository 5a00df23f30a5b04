// save_onnx (onnx/save_onnx.h): zoo models, a custom Module, BatchNorm and the recurrent layers exported by
// tracing; each file is parsed here and run through ONNX's own checker and strict shape inference, and its
// nodes, initializers and symbolic batch are compared with what the model is. Untraceable forwards are
// refused naming the op.
#include <doctest/doctest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "advgrad/advgrad.h"
#include "advgrad/onnx/load_onnx.h"
#include "advgrad/onnx/save_onnx.h"
#include "advgrad/tests/cli_runner.h"

using namespace advgrad;
namespace ox = ::onnx;

namespace {

ox::ModelProto parse(const std::string& bytes) {
  ox::ModelProto model;
  REQUIRE(model.ParseFromString(bytes));
  return model;
}

// ONNX's checker and shape inference (strict: a node whose shapes cannot be inferred is an error).
void check_with_onnx(ox::ModelProto model) {
  CHECK_NOTHROW(ox::checker::check_model(model));
  ox::ShapeInferenceOptions strict(true, 1, false);
  CHECK_NOTHROW(ox::shape_inference::InferShapes(model, ox::OpSchemaRegistry::Instance(), strict));
}

std::map<std::string, int> op_counts(const ox::ModelProto& m) {
  std::map<std::string, int> counts;
  for (const auto& n : m.graph().node()) counts[n.op_type()]++;
  return counts;
}

std::set<std::string> initializer_names(const ox::ModelProto& m) {
  std::set<std::string> names;
  for (const auto& t : m.graph().initializer()) names.insert(t.name());
  return names;
}

std::set<std::string> state_keys(const Module& m) {
  std::set<std::string> keys;
  for (const auto& kv : m.named_parameters()) keys.insert(kv.first);
  for (const auto& kv : m.named_buffers())
    if (kv.first.find("num_batches_tracked") == std::string::npos) keys.insert(kv.first);  // unused by forward
  return keys;
}

// "N,1,28,28": dim_param or dim_value of each dim.
std::string dims_text(const ox::ValueInfoProto& v) {
  std::string s;
  for (const auto& d : v.type().tensor_type().shape().dim())
    s += (s.empty() ? "" : ",") + (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return s;
}

const ox::TensorProto& initializer(const ox::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return t;
  FAIL("no initializer " << name);
  return m.graph().initializer(0);
}

std::vector<float> floats_of(const ox::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / 4);
  std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
  return v;
}

// A user's own module: residual add, LeakyReLU, global mean pooling, its own forward.
class ResidualNet : public Module {
 public:
  explicit ResidualNet(Generator& gen) {
    conv_in = register_module("conv_in", std::make_shared<Conv2d>(1, 8, 3, gen, 1, 1));
    conv_a = register_module("conv_a", std::make_shared<Conv2d>(8, 8, 3, gen, 1, 1));
    fc = register_module("fc", std::make_shared<Linear>(8, 10, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = leaky_relu(conv_in->forward(x), 0.2);
    h = add(h, leaky_relu(conv_a->forward(h), 0.2));  // residual
    return fc->forward(mean(h, {2, 3}));
  }
  std::string describe() const override { return "ResidualNet"; }
  std::shared_ptr<Conv2d> conv_in, conv_a;
  std::shared_ptr<Linear> fc;
};

// forward() applies `f` to the input: for the refused cases.
class Lambda : public Module {
 public:
  explicit Lambda(std::function<Tensor(const Tensor&)> f) : f_(std::move(f)) {}
  Tensor forward(const Tensor& x) override { return f_(x); }
  std::string describe() const override { return "Lambda"; }

 private:
  std::function<Tensor(const Tensor&)> f_;
};

std::string error_of(Module& m, const Shape& sample) {
  try {
    export_onnx_to_string(m, sample);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "(no error)";
}

// max |a - b| / max |a|, with tensor ops.
double relative_difference(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return max(abs(a - b)).item() / std::max(max(abs(a)).item(), 1e-30);
}

// The exported file, loaded back by advgrad's importer (onnx/load_onnx.h), gives the module's own logits
// at two batch sizes (so the batch really is symbolic).
void check_round_trip(Module& model, const Shape& sample, const std::string& bytes) {
  auto imported = load_onnx_from_memory(bytes.data(), bytes.size(), "exported.onnx");
  model.eval();
  imported->eval();
  NoGradGuard no_grad;
  for (int64_t n : {1, 5}) {
    CAPTURE(n);
    Shape shape{n};
    shape.insert(shape.end(), sample.begin(), sample.end());
    Generator gen(uint64_t(40 + n));
    Tensor x = rand(shape, gen);
    Tensor expected = model.forward(x), got = imported->forward(x);
    REQUIRE(got.shape() == expected.shape());
    CHECK(relative_difference(expected, got) <= 1e-6);
  }
}

}  // namespace

TEST_CASE("small_cnn and madry_cnn export: Conv/Relu/MaxPool/Reshape/Gemm, state_dict initializers, batch N") {
  for (const char* name : {"small_cnn", "madry_cnn"}) {
    CAPTURE(name);
    Generator gen(0);
    auto model = make_model(name, gen);
    const std::string bytes = export_onnx_to_string(*model, {1, 28, 28});
    ox::ModelProto m = parse(bytes);
    check_with_onnx(m);
    check_round_trip(*model, {1, 28, 28}, bytes);
    CHECK(m.opset_import(0).version() == 13);
    std::map<std::string, int> expected{{"Conv", 2}, {"Relu", 3}, {"MaxPool", 2}, {"Reshape", 1}, {"Gemm", 2},
                                        {"Constant", 1}};
    CHECK(op_counts(m) == expected);
    CHECK(initializer_names(m) == state_keys(*model));
    REQUIRE(m.graph().input_size() == 1);
    CHECK(dims_text(m.graph().input(0)) == "N,1,28,28");
    CHECK(dims_text(m.graph().output(0)) == "N,10");
    // The weights are the module's own values.
    std::vector<float> w = floats_of(initializer(m, "7.weight"));
    CHECK(w == model->state_dict().at("7.weight").to_vector<float>());
  }
}

TEST_CASE("cifar_resnet exports BatchNormalization with the running statistics (ONNX momentum = 1 - PyTorch's)") {
  Generator gen(0);
  auto model = make_model("cifar_resnet", gen);
  model->train();
  {  // running statistics that are not the initial 0 and 1
    NoGradGuard no_grad;
    Generator data(3);
    model->forward(rand({8, 3, 32, 32}, data));
  }
  const std::string bytes = export_onnx_to_string(*model, {3, 32, 32});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  CHECK(model->is_training());  // the trace ran in eval mode and gave the mode back
  check_round_trip(*model, {3, 32, 32}, bytes);
  auto counts = op_counts(m);
  CHECK(counts["BatchNormalization"] == 9);  // bn1, two per block, two shortcuts
  CHECK(counts["Conv"] == 9);
  CHECK(counts["ReduceMean"] == 1);
  CHECK(counts["Add"] == 3);  // the residual adds
  CHECK(initializer_names(m) == state_keys(*model));
  for (const auto& n : m.graph().node())
    if (n.op_type() == "BatchNormalization") {
      CHECK(n.input(3).find("running_mean") != std::string::npos);
      CHECK(n.input(4).find("running_var") != std::string::npos);
      for (const auto& a : n.attribute())
        if (a.name() == "momentum") CHECK(a.f() == doctest::Approx(0.9));
    }
  CHECK(dims_text(m.graph().output(0)) == "N,10");
}

TEST_CASE("the lstm zoo model exports one ONNX LSTM whose weights keep their state_dict names") {
  Generator gen(0);
  auto model = make_model("lstm", gen);
  const std::string bytes = export_onnx_to_string(*model, {1, 28, 28});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  check_round_trip(*model, {1, 28, 28}, bytes);
  auto counts = op_counts(m);
  CHECK(counts["LSTM"] == 1);
  CHECK(counts["Gemm"] == 1);
  CHECK(initializer_names(m) == state_keys(*model));
  CHECK(dims_text(m.graph().output(0)) == "N,10");
}

TEST_CASE("GRU (2 layers) and RNN layers export as ONNX GRU (linear_before_reset) and RNN nodes") {
  Generator gen(0);
  auto gru = std::make_shared<GRU>(28, 16, gen, 2);
  const std::string bytes = export_onnx_to_string(*gru, {28, 28});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  check_round_trip(*gru, {28, 28}, bytes);
  CHECK(op_counts(m)["GRU"] == 2);
  for (const auto& n : m.graph().node())
    if (n.op_type() == "GRU") {
      bool lbr = false;
      for (const auto& a : n.attribute()) lbr = lbr || (a.name() == "linear_before_reset" && a.i() == 1);
      CHECK(lbr);
    }
  CHECK(dims_text(m.graph().output(0)) == "N,28,16");
  auto rnn = std::make_shared<RNN>(28, 8, gen);
  const std::string rnn_bytes = export_onnx_to_string(*rnn, {5, 28});
  ox::ModelProto r = parse(rnn_bytes);
  check_with_onnx(r);
  check_round_trip(*rnn, {5, 28}, rnn_bytes);
  CHECK(op_counts(r)["RNN"] == 1);
}

TEST_CASE("a custom Module (residual add, LeakyReLU, mean pooling) exports") {
  Generator gen(0);
  ResidualNet net(gen);
  const std::string bytes = export_onnx_to_string(net, {1, 12, 12});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  check_round_trip(net, {1, 12, 12}, bytes);
  auto counts = op_counts(m);
  CHECK(counts["LeakyRelu"] == 2);
  CHECK(counts["Add"] == 1);
  CHECK(counts["ReduceMean"] == 1);
  CHECK(counts["Gemm"] == 1);
  CHECK(initializer_names(m) == state_keys(net));
}

TEST_CASE("BatchNorm1d, Dropout and Normalize in a Sequential: BN node, no Dropout node, constants as nodes") {
  Generator gen(0);
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<Normalize>(std::vector<double>{0.5}, std::vector<double>{0.25}));
  seq->push_back(std::make_shared<Flatten>());
  seq->push_back(std::make_shared<Linear>(16, 8, gen));
  seq->push_back(std::make_shared<BatchNorm1d>(8));
  seq->push_back(std::make_shared<Dropout>(0.5));
  seq->push_back(std::make_shared<Linear>(8, 3, gen));
  {  // running statistics that are not the initial 0 and 1
    NoGradGuard no_grad;
    Generator data(3);
    seq->forward(rand({8, 1, 4, 4}, data));
  }
  const std::string bytes = export_onnx_to_string(*seq, {1, 4, 4});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  check_round_trip(*seq, {1, 4, 4}, bytes);
  auto counts = op_counts(m);
  CHECK(counts["BatchNormalization"] == 1);
  CHECK(counts.count("Dropout") == 0);
  CHECK(counts["Sub"] == 1);
  CHECK(counts["Div"] == 1);
  CHECK(initializer_names(m) == state_keys(*seq));  // Normalize's mean/std are not initializers
}

TEST_CASE("an op with no ONNX rule is refused naming it and the module before it") {
  Generator gen(0);
  auto linear = std::make_shared<Linear>(4, 3, gen);
  Lambda loss_model([linear](const Tensor& x) {
    Tensor logits = linear->forward(reshape(x, {-1, 4}));
    return reshape(cross_entropy(logits, zeros({logits.size(0)}, DType::I64)), {1, 1});
  });
  std::string e = error_of(loss_model, {4});
  CHECK(e.find("'cross_entropy'") != std::string::npos);
  CHECK(e.find("no ONNX rule") != std::string::npos);

  Lambda fused([](const Tensor& x) {  // the fused op itself (the LSTM layer is the exportable form)
    Tensor h = zeros({x.size(1), 2});
    Tensor w = full({8, 3}, 0.1), r = full({8, 2}, 0.1);
    return lstm_sequence(x, h, h, w, r, Tensor(), Tensor());
  });
  e = error_of(fused, {2, 3});
  CHECK(e.find("'lstm_sequence'") != std::string::npos);
  CHECK(e.find("LSTM layer") != std::string::npos);
}

TEST_CASE("a forward that bakes in the batch size or the input's values is refused") {
  Lambda batch_zeros([](const Tensor& x) { return add(x, zeros({x.size(0), 4})); });
  std::string e = error_of(batch_zeros, {4});
  CHECK(e.find("differs between batch sizes") != std::string::npos);
  CHECK(e.find("add_") != std::string::npos);  // the node of the op that read it

  Lambda detached([](const Tensor& x) { return mul(x, mean(x).detach().clone()); });  // untraced value of x
  e = error_of(detached, {4});
  CHECK(e.find("differs between batch sizes") != std::string::npos);

  Lambda in_place([](const Tensor& x) {
    Tensor y = relu(x);
    y.add_(scalar_tensor(1.0));
    return y;
  });
  e = error_of(in_place, {4});
  CHECK(e.find("changed in place") != std::string::npos);
}

TEST_CASE("save_onnx arguments: opset range, sample shape, unwritable path") {
  Generator gen(0);
  auto model = make_model("small_cnn", gen);
  OnnxExportOptions old;
  old.opset = 11;
  CHECK_THROWS_WITH_AS(export_onnx_to_string(*model, {1, 28, 28}, old), doctest::Contains("opset 11"), ValueError);
  CHECK_THROWS_WITH_AS(export_onnx_to_string(*model, {0, 28, 28}), doctest::Contains("sample_input_shape"), ValueError);
  CHECK_THROWS_AS(save_onnx(*model, {1, 28, 28}, "/nonexistent-dir/x.onnx"), IOError);
  OnnxExportOptions newest;
  newest.opset = 17;
  check_with_onnx(parse(export_onnx_to_string(*model, {1, 28, 28}, newest)));
}

TEST_CASE("an imported model re-exports its own graph with the current weights (one changed)") {
  const std::string file = std::string(ADVGRAD_TEST_DATA) + "/golden/onnx/residual_cnn.onnx";
  auto model = load_onnx(file);
  const ox::ModelProto original = parse(testing::slurp(file));
  auto params = model->named_parameters();
  REQUIRE(!params.empty());
  Generator gen(5);
  Tensor x = rand({4, 1, 28, 28}, gen);
  model->eval();
  Tensor before;
  {
    NoGradGuard no_grad;
    before = model->forward(x);
    params[0].second.add_(full(params[0].second.shape(), 0.25));  // a fine-tuned weight
  }
  const std::string bytes = export_onnx_to_string(*model, {1, 28, 28});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  CHECK(op_counts(m) == op_counts(original));  // the original graph, node for node
  check_round_trip(*model, {1, 28, 28}, bytes);
  auto reloaded = load_onnx_from_memory(bytes.data(), bytes.size(), "re-exported.onnx");
  reloaded->eval();
  NoGradGuard no_grad;
  CHECK(relative_difference(before, reloaded->forward(x)) > 1e-3);  // the changed weight went out
  std::vector<float> w = floats_of(initializer(m, params[0].first));
  CHECK(w == params[0].second.to_vector<float>());
}

TEST_CASE("advgrad export: a zoo model with its weights, then that file with other weights") {
  testing::TempDir dir("advgrad_export");
  Generator g1(1), g2(2);
  auto first = make_model("small_cnn", g1), second = make_model("small_cnn", g2);
  save_safetensors(dir / "w1.safetensors", first->state_dict());
  save_safetensors(dir / "w2.safetensors", second->state_dict());
  testing::Run r = testing::run_cli({"export", "--model", "small_cnn", "--weights", dir / "w1.safetensors", "--out", dir / "m.onnx"});
  REQUIRE_MESSAGE(r.exited, r.describe());
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("m.onnx") != std::string::npos);
  check_round_trip(*first, {1, 28, 28}, testing::slurp(dir / "m.onnx"));
  // FILE.onnx with --weights: the file's graph, the given weights (strictly by name).
  r = testing::run_cli({"export", "--model", dir / "m.onnx", "--weights", dir / "w2.safetensors", "--out", dir / "m2.onnx"});
  CHECK_MESSAGE(r.status == 0, r.err);
  check_round_trip(*second, {1, 28, 28}, testing::slurp(dir / "m2.onnx"));
  // Errors: one line naming the problem.
  r = testing::run_cli({"export", "--model", "small_cnn", "--out", dir / "x.onnx"});
  CHECK(r.status == 1);
  CHECK(r.err.find("--weights") != std::string::npos);
  r = testing::run_cli({"export", "--model", "lstm", "--weights", dir / "w1.safetensors", "--out", dir / "x.onnx"});
  CHECK(r.status == 1);
  CHECK(r.err.find("w1.safetensors") != std::string::npos);
}

TEST_CASE("advgrad train writes model.onnx beside model.safetensors, with the same logits") {
  testing::TempDir dir("advgrad_export_train");
  const std::string out = dir / "run";
  testing::Run r = testing::run_cli({"train", "--model", "small_cnn", "--method", "natural", "--epochs", "1", "--limit",
                                     "128", "--val-size", "32", "--test-limit", "16", "--batch", "64", "--out", out,
                                     "--quiet", "--threads", "1"},
                                    testing::Limits{0, 600, {}});
  REQUIRE_MESSAGE(r.exited, r.describe());
  REQUIRE_MESSAGE(r.status == 0, r.err);
  Generator gen(0);
  auto trained = make_model("small_cnn", gen);
  load_safetensors_into(*trained, out + "/model.safetensors");
  check_round_trip(*trained, {1, 28, 28}, testing::slurp(out + "/model.onnx"));
}

namespace {
// Depthwise-separable convolution and the pooling options (ceil_mode, count_include_pad = false).
class DepthwiseNet : public Module {
 public:
  explicit DepthwiseNet(Generator& gen) {
    stem = register_module("stem", std::make_shared<Conv2d>(Conv2dOptions(1, 8, 3).padding(1), gen));
    depthwise = register_module("depthwise", std::make_shared<Conv2d>(Conv2dOptions(8, 8, 3).padding(1).groups(8), gen));
    pointwise = register_module("pointwise", std::make_shared<Conv2d>(Conv2dOptions(8, 16, 1), gen));
    fc = register_module("fc", std::make_shared<Linear>(16 * 3 * 3, 10, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(stem->forward(x));
    h = relu(pointwise->forward(depthwise->forward(h)));
    h = max_pool2d(h, 2, 2, 0, 1, /*ceil_mode=*/true);                            // 11 -> 6
    h = avg_pool2d(h, 3, 2, 1, /*ceil_mode=*/false, /*count_include_pad=*/false);  // 6 -> 3
    return fc->forward(flatten(h, 1));
  }
  std::string describe() const override { return "DepthwiseNet"; }
  std::shared_ptr<Conv2d> stem, depthwise, pointwise;
  std::shared_ptr<Linear> fc;
};

int64_t int_attribute(const ox::NodeProto& n, const std::string& name, int64_t otherwise) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return otherwise;
}
}  // namespace

TEST_CASE("grouped (depthwise) convolution and the pooling options export with their attributes") {
  Generator gen(0);
  DepthwiseNet net(gen);
  const std::string bytes = export_onnx_to_string(net, {1, 11, 11});
  ox::ModelProto m = parse(bytes);
  check_with_onnx(m);
  std::vector<int64_t> groups;
  for (const auto& n : m.graph().node()) {
    if (n.op_type() == "Conv") groups.push_back(int_attribute(n, "group", 1));
    if (n.op_type() == "MaxPool") CHECK(int_attribute(n, "ceil_mode", 0) == 1);
    if (n.op_type() == "AveragePool") CHECK(int_attribute(n, "count_include_pad", 1) == 0);
  }
  CHECK(groups == std::vector<int64_t>{1, 8, 1});
  check_round_trip(net, {1, 11, 11}, bytes);
}
