// ONNX import (issue #14): PyTorch-exported models (tests/golden/make_onnx_fixtures.py) give PyTorch's
// logits, input and parameter gradients, PGD examples and BatchNorm training results; small_cnn from
// ONNX equals the zoo's small_cnn with the same weights; and hostile files, built here with onnx.pb.h,
// are each refused with one error naming the problem.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <string>

#include "advgrad/attacks/attack.h"
#include "advgrad/autograd/engine.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"
#include "advgrad/onnx/load_onnx.h"
#include "onnx/onnx_pb.h"

using namespace advgrad;

namespace {

const std::string kDir = std::string(ADVGRAD_TEST_DATA) + "/golden/onnx/";

// |got - expected| <= 1e-6 * max(1, max |expected|) + 1e-5 |expected| per element (tests/test_nn_golden.cpp's rule).
void check_close(const std::string& what, const Tensor& got, const Tensor& expected) {
  INFO(what);
  REQUIRE_MESSAGE(got.defined(), what << ": advgrad produced no tensor");
  REQUIRE_MESSAGE(got.shape() == expected.shape(), what << ": shape " << shape_str(got.shape()) << ", PyTorch " << shape_str(expected.shape()));
  std::vector<double> g = got.to_vector<double>(), e = expected.to_vector<double>();
  double scale = 1.0;
  for (double v : e) scale = std::max(scale, std::fabs(v));
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    const double ratio = std::fabs(g[i] - e[i]) / (1e-6 * scale + 1e-5 * std::fabs(e[i]));
    if (!(ratio <= worst)) worst = ratio, worst_i = i;
  }
  CHECK_MESSAGE(worst <= 1.0, what << ": element " << worst_i << " is " << g[worst_i] << ", PyTorch " << e[worst_i]);
}

// The cases whose recurrent ops need onnx/recurrent.h (H1): refused, naming the op, until it is merged.
std::string recurrent_op_of(const std::string& c) {
  if (c == "gru2") return "GRU";
  if (c == "bilstm") return "LSTM";
  if (c.rfind("ops_opset", 0) == 0) return "RNN";
  return "";
}

bool supported(const std::string& op) {
  for (const auto& s : supported_onnx_ops())
    if (s == op) return true;
  return false;
}

void check_case(const std::string& c) {
  INFO("case " << c);
  SafetensorsFile f = load_safetensors(kDir + c + ".safetensors");
  const std::string recurrent = recurrent_op_of(c);
  if (!recurrent.empty() && !supported(recurrent)) {
    try {
      load_onnx(kDir + c + ".onnx");
      FAIL("loaded a model with " << recurrent << ", which the op table does not have");
    } catch (const ValueError& e) {
      const std::string m = e.what();
      INFO(m);
      CHECK(m.find("(op " + recurrent + ", opset " + f.metadata.at("opset") + "): unsupported op; supported: ") != std::string::npos);
    }
    return;
  }
  auto model = load_onnx(kDir + c + ".onnx");
  CHECK(model->opset() == std::stoll(f.metadata.at("opset")));
  model->eval();
  const Tensor& label = f.tensors.at("label");

  // Logits and the gradients of the mean cross-entropy.
  Tensor x = f.tensors.at("input").detach().requires_grad_(true);
  Tensor logits = model->forward(x);
  check_close("logits", logits, f.tensors.at("logits"));
  backward(cross_entropy(logits, label));
  check_close("grad.input", x.grad(), f.tensors.at("grad.input"));
  std::map<std::string, Tensor> params;
  for (const auto& kv : model->named_parameters()) params[kv.first] = kv.second;
  int checked = 0;
  for (const auto& kv : f.tensors) {
    if (kv.first.rfind("grad.param.", 0) != 0) continue;
    const std::string name = kv.first.substr(11);
    REQUIRE_MESSAGE(params.count(name), "no parameter named " << name);
    check_close(kv.first, params[name].grad(), kv.second);
    ++checked;
  }
  CHECK(checked > 0);

  // PGD-10 without random start, every sample attacked, to 1e-6 per pixel.
  model->zero_grad();
  AttackOptions o;
  o.eps = std::stod(f.metadata.at("pgd_eps"));
  o.step_size = std::stod(f.metadata.at("pgd_step"));
  o.steps = std::stoi(f.metadata.at("pgd_steps"));
  o.random_start = false;
  o.skip_misclassified = false;
  AttackResult r = make_attack("pgd", o)->run(*model, f.tensors.at("input"), label);
  std::vector<double> got = r.x_adv.to_vector<double>(), want = f.tensors.at("pgd.adv").to_vector<double>();
  REQUIRE(got.size() == want.size());
  int64_t off = 0;
  for (size_t i = 0; i < got.size(); ++i) off += !(std::fabs(got[i] - want[i]) <= 1e-6);
  CHECK_MESSAGE(off == 0, off << " of " << got.size() << " PGD pixels differ from PyTorch's by more than 1e-6");

  // BatchNormalization in training mode: batch statistics, and PyTorch's running-statistics update.
  if (f.tensors.count("train.logits")) {
    auto fresh = load_onnx(kDir + c + ".onnx");
    fresh->train();
    NoGradGuard no_grad;
    check_close("train.logits", fresh->forward(f.tensors.at("input")), f.tensors.at("train.logits"));
    std::map<std::string, Tensor> buffers;
    for (const auto& kv : fresh->named_buffers()) buffers[kv.first] = kv.second;
    int stats = 0;
    for (const auto& kv : f.tensors) {
      if (kv.first.rfind("train.after.", 0) != 0) continue;
      const std::string name = kv.first.substr(12);
      REQUIRE_MESSAGE(buffers.count(name), "no buffer named " << name);
      check_close(kv.first, buffers[name], kv.second);
      ++stats;
    }
    CHECK(stats > 0);
  }
}

}  // namespace

TEST_CASE("PyTorch-exported models give PyTorch's logits, gradients, PGD examples and BatchNorm statistics") {
  for (const char* c : {"small_cnn", "residual_cnn", "mlp_norm", "depthwise_cnn", "gru2", "bilstm", "ops_opset11",
                        "ops_opset13", "ops_opset17"})
    check_case(c);
}

TEST_CASE("small_cnn imported from PyTorch's ONNX equals the zoo's small_cnn with the same weights") {
  auto imported = load_onnx(kDir + "small_cnn.onnx");
  Generator g(0);
  auto zoo = make_model("small_cnn", g);
  zoo->load_state_dict(imported->state_dict());  // strict: the file's names are the zoo's state_dict keys
  imported->eval();
  zoo->eval();
  const Tensor x = load_safetensors(kDir + "small_cnn.safetensors").tensors.at("input");
  NoGradGuard no_grad;
  const std::vector<float> a = imported->forward(x).to_vector<float>(), b = zoo->forward(x).to_vector<float>();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-6));
  CHECK(imported->describe() == "OnnxModel(small_cnn.onnx, " + std::to_string(imported->op_counts().size() ? [&] {
          int64_t n = 0;
          for (const auto& kv : imported->op_counts()) n += kv.second;
          return n;
        }() : 0) + " nodes, opset 13)");
  CHECK(imported->input_dims() == std::vector<int64_t>{-1, 1, 28, 28});
}

TEST_CASE("an imported model trains: parameters, buffers and the dropout generator are the Module's") {
  auto m = load_onnx(kDir + "residual_cnn.onnx");
  StateDict sd = m->state_dict();
  CHECK(sd.count("stem.weight") == 1);
  CHECK(sd.count("stem_bn.running_mean") == 1);
  bool buffer_is_parameter = false;
  for (const auto& kv : m->named_parameters()) buffer_is_parameter |= kv.first.find("running_") != std::string::npos;
  CHECK_FALSE(buffer_is_parameter);
  auto mlp = load_onnx(kDir + "mlp_norm.onnx");
  CHECK(mlp->named_generators().size() == 1);
}

// ---- hostile input: each built from a valid tiny model with one thing broken ----
namespace {

// x [N,4] -> Gemm(W [3,4], B [3], transB) -> y [N,3].
onnx::ModelProto tiny_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("test_onnx_import");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  auto value = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) {
      auto* dim = t->mutable_shape()->add_dim();
      if (d < 0) dim->set_dim_param("N");
      else dim->set_dim_value(d);
    }
  };
  value(g->add_input(), "x", {-1, 4});
  value(g->add_output(), "y", {-1, 3});
  auto init = [&](const std::string& name, std::vector<int64_t> dims) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) t->add_dims(d), n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * float(i);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  };
  init("W", {3, 4});
  init("B", {3});
  auto* n = g->add_node();
  n->set_name("fc");
  n->set_op_type("Gemm");
  n->add_input("x"), n->add_input("W"), n->add_input("B");
  n->add_output("y");
  auto* a = n->add_attribute();
  a->set_name("transB"), a->set_type(onnx::AttributeProto::INT), a->set_i(1);
  return m;
}

// The error's kind and message, or "" when it loads.
std::string load_error(const std::string& bytes, const OnnxLoadOptions& options = {}) {
  try {
    load_onnx_from_memory(bytes.data(), bytes.size(), "bad.onnx", options);
  } catch (const IOError& e) {
    return std::string("IOError: ") + e.what();
  } catch (const ValueError& e) {
    return std::string("ValueError: ") + e.what();
  }
  return "";
}
std::string load_error(const onnx::ModelProto& m, const OnnxLoadOptions& options = {}) {
  return load_error(m.SerializeAsString(), options);
}

void check_refused(const std::string& error, const std::string& kind, const std::string& part) {
  INFO(error);
  CHECK(error.rfind(kind + ": bad.onnx: ", 0) == 0);
  CHECK(error.find(part) != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
}

}  // namespace

TEST_CASE("the tiny model loads and computes x W^T + B (the hostile cases' base)") {
  const std::string bytes = tiny_model().SerializeAsString();
  auto m = load_onnx_from_memory(bytes.data(), bytes.size(), "tiny.onnx");
  NoGradGuard no_grad;
  // W[o][i] = 0.1 (4o + i), B[o] = 0.1 o; x = ones: y[o] = 0.1 (16o + 6) + 0.1 o.
  const std::vector<float> y = m->forward(ones({1, 4})).to_vector<float>();
  REQUIRE(y.size() == 3);
  for (int o = 0; o < 3; ++o) CHECK(y[size_t(o)] == doctest::Approx(0.1 * (16 * o + 6) + 0.1 * o));
  CHECK(m->named_parameters().size() == 2);
}

TEST_CASE("hostile ONNX files are refused with one error naming the problem") {
  {
    auto m = tiny_model();
    m.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(20);
    check_refused(load_error(m), "IOError", "initializer 'W' has 20 bytes of raw_data, its dims [3,4] and float32 need 48");
  }
  {
    auto m = tiny_model();
    m.mutable_graph()->mutable_initializer(1)->set_dims(0, -3);
    check_refused(load_error(m), "IOError", "initializer 'B' has a negative dim -3");
  }
  {
    auto m = tiny_model();
    auto* t = m.mutable_graph()->mutable_initializer(1);
    t->clear_dims();
    for (int i = 0; i < 4; ++i) t->add_dims(int64_t(1) << 20);
    check_refused(load_error(m), "IOError", "initializer 'B': the product of its dims overflows int64");
  }
  {
    auto m = tiny_model();
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location"), e->set_value("/etc/passwd");
    check_refused(load_error(m), "IOError", "initializer 'W' refers to external data, which is refused");
  }
  {
    auto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->set_input(1, "nowhere");
    check_refused(load_error(m), "IOError", "node 'fc' (op Gemm) reads 'nowhere', which nothing defines");
  }
  {
    auto m = tiny_model();
    m.mutable_graph()->mutable_initializer(1)->set_name("W");
    check_refused(load_error(m), "IOError", "initializer name 'W' is used twice");
  }
  {
    auto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->set_output(0, "x");
    check_refused(load_error(m), "IOError", "value name 'x' is defined twice (node 'fc')");
  }
  {  // a -> b -> a: two Relu nodes reading each other's output
    auto m = tiny_model();
    auto* g = m.mutable_graph();
    g->mutable_node(0)->set_input(0, "b");
    auto* r1 = g->add_node();
    r1->set_name("r1"), r1->set_op_type("Relu"), r1->add_input("y"), r1->add_output("a");
    auto* r2 = g->add_node();
    r2->set_name("r2"), r2->set_op_type("Relu"), r2->add_input("a"), r2->add_output("b");
    check_refused(load_error(m), "IOError", "the graph has a cycle through node 'fc' (op Gemm)");
  }
  {
    auto m = tiny_model();
    m.mutable_graph()->mutable_node(0)->set_op_type("Erf");
    m.mutable_graph()->mutable_node(0)->clear_attribute();
    m.mutable_graph()->mutable_node(0)->mutable_input()->RemoveLast();
    m.mutable_graph()->mutable_node(0)->mutable_input()->RemoveLast();
    m.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(4);
    check_refused(load_error(m), "ValueError", "node 'fc' (op Erf, opset 13): unsupported op; supported: Add, AveragePool, BatchNormalization,");
  }
  {
    // Conv's auto_pad SAME_UPPER is valid ONNX that advgrad does not implement.
    auto conv = tiny_model();
    auto* g = conv.mutable_graph();
    g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(4);
    g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(4);
    for (int64_t d : {4, 4}) g->mutable_output(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
    auto* n = g->mutable_node(0);
    n->set_op_type("Conv");
    n->clear_attribute();
    n->mutable_input()->RemoveLast();
    auto* w = g->mutable_initializer(0);
    w->clear_dims();
    for (int64_t d : {3, 4, 2, 2}) w->add_dims(d);
    w->mutable_raw_data()->resize(3 * 4 * 2 * 2 * 4);
    auto* ap = n->add_attribute();
    ap->set_name("auto_pad"), ap->set_type(onnx::AttributeProto::STRING), ap->set_s("SAME_UPPER");
    check_refused(load_error(conv), "ValueError", "node 'fc' (op Conv, opset 13): attribute 'auto_pad' = SAME_UPPER is not supported");
    // An attribute the op table does not accept at all (Gemm has no 'ratio').
    auto gemm = tiny_model();
    auto* r = gemm.mutable_graph()->mutable_node(0)->add_attribute();
    r->set_name("ratio"), r->set_type(onnx::AttributeProto::FLOAT), r->set_f(0.5f);
    const std::string err = load_error(gemm);
    INFO(err);
    CHECK((err.find("bad.onnx: ") != std::string::npos && err.find("ratio") != std::string::npos));
  }
  {
    const std::string bytes = tiny_model().SerializeAsString();
    check_refused(load_error(bytes.substr(0, bytes.size() - 7)), "IOError", "not a readable ONNX model");
  }
  {
    OnnxLoadOptions small;
    small.max_file_bytes = 100;
    check_refused(load_error(tiny_model(), small), "IOError", "bytes is over the limit of 100 bytes (OnnxLoadOptions::max_file_bytes)");
    OnnxLoadOptions few;
    few.max_tensor_bytes = 50;
    check_refused(load_error(tiny_model(), few), "IOError", "initializer 'B': tensors total over the limit of 50 bytes");
  }
  {
    auto m = tiny_model();
    m.mutable_opset_import(0)->set_version(9);
    check_refused(load_error(m), "ValueError", "opset 9 is not supported (opsets 11 to 17)");
  }
  {
    auto m = tiny_model();
    m.mutable_graph()->add_output()->set_name("W");
    check_refused(load_error(m), "ValueError", "the graph has 2 outputs");
  }
}

TEST_CASE("summarize_onnx lists inputs, ops, parameters and unsupported ops without running") {
  OnnxFileSummary s = summarize_onnx(kDir + "unsupported_erf.onnx");
  REQUIRE(s.inputs.size() == 1);
  CHECK(s.unsupported.size() >= 1);
  CHECK(s.unsupported.at(0).find("(op Erf, opset ") != std::string::npos);
  OnnxFileSummary r = summarize_onnx(kDir + "residual_cnn.onnx");
  CHECK(r.unsupported.empty());
  CHECK(r.inputs.at(0).dims == std::vector<int64_t>{-1, 1, 28, 28});
  int buffers = 0;
  for (const auto& i : r.initializers) buffers += i.role == "buffer";
  CHECK(buffers == 8);  // four BatchNormalization layers' running mean and var
}

// Writes the fuzz seed corpus (fuzz/corpus/fuzz_onnx/) when ADVGRAD_WRITE_ONNX_CORPUS names a directory.
TEST_CASE("fuzz seed corpus") {
  const char* dir = std::getenv("ADVGRAD_WRITE_ONNX_CORPUS");
  if (!dir) return;
  std::ofstream(std::string(dir) + "/tiny_gemm.onnx", std::ios::binary) << tiny_model().SerializeAsString();
}

// ---- ops the fixtures reach only through a recurrent case, checked on hand-computed one-node graphs ----
namespace {

struct OneNode {
  onnx::ModelProto model;
  onnx::NodeProto* node;
};

// x [dims] -> op -> y (rank out_rank, dims left to shape inference).
OneNode one_node(const std::string& op, const std::vector<int64_t>& dims, int out_rank, int64_t opset = 13) {
  OneNode r;
  auto& m = r.model;
  m.set_ir_version(8);
  auto* o = m.add_opset_import();
  o->set_domain(""), o->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("one");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int i = 0; i < out_rank; ++i) out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim();
  r.node = g->add_node();
  r.node->set_name("n"), r.node->set_op_type(op), r.node->add_input("x"), r.node->add_output("y");
  return r;
}

void ints_attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name), a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void int_attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name), a->set_type(onnx::AttributeProto::INT), a->set_i(v);
}

std::vector<float> run(const onnx::ModelProto& m, const Tensor& x) {
  const std::string bytes = m.SerializeAsString();
  auto model = load_onnx_from_memory(bytes.data(), bytes.size(), "one.onnx");
  NoGradGuard no_grad;
  return model->forward(x).to_vector<float>();
}

}  // namespace

TEST_CASE("MaxPool ceil_mode: the last window starts inside the input and is cut off by its edge") {
  OneNode n = one_node("MaxPool", {1, 1, 5, 5}, 4);
  ints_attr(n.node, "kernel_shape", {2, 2});
  ints_attr(n.node, "strides", {2, 2});
  int_attr(n.node, "ceil_mode", 1);
  // x = 0..24 row-major: windows start at rows/cols 0, 2, 4; the third is one pixel wide.
  const std::vector<float> y = run(n.model, reshape(arange(25), {1, 1, 5, 5}));
  CHECK(y == std::vector<float>{6, 8, 9, 16, 18, 19, 21, 23, 24});
}

TEST_CASE("AveragePool with count_include_pad = 0 divides by the real pixels of each window") {
  OneNode n = one_node("AveragePool", {1, 1, 2, 2}, 4);
  ints_attr(n.node, "kernel_shape", {2, 2});
  ints_attr(n.node, "strides", {1, 1});
  ints_attr(n.node, "pads", {1, 1, 1, 1});
  const std::vector<float> y = run(n.model, from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2}));
  const std::vector<float> want{1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4};
  REQUIRE(y.size() == want.size());
  for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(want[i]));
}

TEST_CASE("grouped Conv: each group of output channels sees only its group of input channels") {
  OneNode n = one_node("Conv", {1, 4, 1, 1}, 4);
  int_attr(n.node, "group", 2);
  n.node->add_input("w");
  auto* w = n.model.mutable_graph()->add_initializer();
  w->set_name("w"), w->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {2, 2, 1, 1}) w->add_dims(d);
  for (float v : {1.f, 10.f, 100.f, 1000.f}) w->add_float_data(v);
  // y0 = 1 x0 + 10 x1, y1 = 100 x2 + 1000 x3 for x = 1, 2, 3, 4.
  const std::vector<float> y = run(n.model, from_vector(std::vector<float>{1, 2, 3, 4}, {1, 4, 1, 1}));
  CHECK(y == std::vector<float>{21, 4300});
}

TEST_CASE("Softmax before opset 13 normalises the input flattened to 2-D at the axis") {
  OneNode n = one_node("Softmax", {1, 2, 3}, 3, 11);
  int_attr(n.node, "axis", 1);
  const std::vector<float> y = run(n.model, reshape(arange(6), {1, 2, 3}));
  // One softmax over all six values: y_i = e^i / sum_j e^j.
  double z = 0;
  for (int j = 0; j < 6; ++j) z += std::exp(double(j));
  REQUIRE(y.size() == 6);
  for (int i = 0; i < 6; ++i) CHECK(y[size_t(i)] == doctest::Approx(std::exp(double(i)) / z));
}

namespace {

// Adds an int64 initializer to m's graph.
void int64_initializer(onnx::ModelProto& m, const std::string& name, const std::vector<int64_t>& dims,
                       const std::vector<int64_t>& values) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : values) t->add_int64_data(v);
}

// A node of `op` over initializers `inputs` whose integer result nobody reads: it is computed at load.
void constant_node(onnx::ModelProto& m, const std::string& op, const std::vector<std::string>& inputs) {
  auto* n = m.mutable_graph()->add_node();
  n->set_name("arith"), n->set_op_type(op);
  for (const auto& i : inputs) n->add_input(i);
  n->add_output("arith_out");
}

}  // namespace

TEST_CASE("hostile shape arithmetic: overflow, huge empty tensors and huge windows are errors, not crashes") {
  const int64_t lowest = std::numeric_limits<int64_t>::min(), highest = std::numeric_limits<int64_t>::max();
  SUBCASE("integer Div of INT64_MIN by -1 (was SIGFPE), Mul and Add overflow") {
    for (const auto& op_and_values : std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>>{
             {"Div", {lowest, -1}}, {"Mul", {highest, 2}}, {"Add", {highest, 1}}, {"Sub", {lowest, 1}}}) {
      auto m = tiny_model();
      int64_initializer(m, "a", {1}, {op_and_values.second.first});
      int64_initializer(m, "b", {1}, {op_and_values.second.second});
      constant_node(m, op_and_values.first, {"a", "b"});
      check_refused(load_error(m), "ValueError", "overflows int64");
    }
  }
  SUBCASE("an empty initializer with a 2^50 dim (loops over it would hang)") {
    auto m = tiny_model();
    int64_initializer(m, "e", {int64_t(1) << 50, 0}, {});
    check_refused(load_error(m), "IOError", "initializer 'e' has a dim 1125899906842624 over the limit of 2^28");
  }
  SUBCASE("Conv dilations of 2^62 + 1 (kernel extent wraps around int64)") {
    auto c = one_node("Conv", {1, 1, 8, 8}, 4);
    auto* w = c.model.mutable_graph()->add_initializer();
    w->set_name("w"), w->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : {1, 1, 5, 5}) w->add_dims(d);
    for (int i = 0; i < 25; ++i) w->add_float_data(1.0f);
    c.node->add_input("w");
    ints_attr(c.node, "dilations", {(int64_t(1) << 62) + 1, (int64_t(1) << 62) + 1});
    const std::string e = load_error(c.model);
    INFO(e);
    CHECK(e.find("dilations") != std::string::npos);
    CHECK(e.find("must be in [1, 65536]") != std::string::npos);
  }
}

TEST_CASE("Slice with a negative step clamps start to [0, dim-1] as ONNX says") {
  // x = [0, 1, 2, 3, 4]; starts -100 -> 0, ends -INT64_MAX -> -1, step -1: ONNX's answer is [x0].
  auto s = one_node("Slice", {5}, 1);
  int64_initializer(s.model, "starts", {1}, {-100});
  int64_initializer(s.model, "ends", {1}, {-std::numeric_limits<int64_t>::max()});
  int64_initializer(s.model, "axes", {1}, {0});
  int64_initializer(s.model, "steps", {1}, {-1});
  for (const char* i : {"starts", "ends", "axes", "steps"}) s.node->add_input(i);
  const std::vector<float> y = run(s.model, from_vector(std::vector<float>{0, 1, 2, 3, 4}, {5}));
  CHECK(y == std::vector<float>{0});
}

TEST_CASE("Gemm with a one-value C broadcasts it (not the Linear form, which needs one bias per output)") {
  auto m = tiny_model();
  auto* b = m.mutable_graph()->mutable_initializer(1);  // B [3] -> [1] holding 0.5
  b->clear_dims(), b->add_dims(1);
  const float half = 0.5f;
  b->set_raw_data(std::string(reinterpret_cast<const char*>(&half), sizeof(float)));
  NoGradGuard no_grad;
  const std::vector<float> y = run(m, ones({1, 4}));
  REQUIRE(y.size() == 3);
  // W[o][i] = 0.1 (4o + i), x = ones: y[o] = 0.1 (16o + 6) + 0.5.
  for (int o = 0; o < 3; ++o) CHECK(y[size_t(o)] == doctest::Approx(0.1 * (16 * o + 6) + 0.5));
}

TEST_CASE("values computed at load count against max_tensor_bytes, as the file's own tensors do") {
  // Two ConstantOfShape([1000]) fold to 1000 float32 zeros each (8000 bytes together): refused under a
  // 6000-byte budget that the file's own tensors (68 bytes) and each one alone (per op: 6000 / 4 = 1500
  // elements) fit in; accepted under the default. One of 2000 is over the per-op limit.
  auto m = tiny_model();
  int64_initializer(m, "shape", {1}, {1000});
  constant_node(m, "ConstantOfShape", {"shape"});
  auto* second = m.mutable_graph()->add_node();
  second->set_name("arith2"), second->set_op_type("ConstantOfShape"), second->add_input("shape"), second->add_output("arith_out2");
  OnnxLoadOptions small;
  small.max_tensor_bytes = 6000;
  check_refused(load_error(m, small), "ValueError", "values computed at load from constants take 8000 bytes, over the limit of 6000");
  CHECK(load_error(m) == "");
  auto big = tiny_model();
  int64_initializer(big, "shape", {1}, {2000});
  constant_node(big, "ConstantOfShape", {"shape"});
  check_refused(load_error(big, small), "ValueError", "shape [2000] has a dim over the limit of 1500");
}
