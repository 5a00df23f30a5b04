// Training methods as plug-ins and the Trainer on objects: MART's loss against the formula, AWP's weight
// perturbation restored bit for bit, the weight average against its closed form, a model with Dropout
// resumed bit-identically, training on Device::Reference, the trades-kl attack, the registry, and
// config.json files from before the new fields.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "advgrad/attacks/attack.h"
#include "advgrad/attacks/trades_kl.h"
#include "advgrad/autograd/engine.h"
#include "advgrad/nn/layers.h"
#include "advgrad/nn/losses.h"
#include "advgrad/nn/optim.h"
#include "advgrad/nn/schedule.h"
#include "advgrad/train/ema.h"
#include "advgrad/train/methods/awp.h"
#include "advgrad/train/methods/mart.h"
#include "advgrad/train/run_files.h"
#include "advgrad/train/trainer.h"

using namespace advgrad;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("advgrad_test_methods_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

// n random 1x4x4 images in 3 classes (the label is the brightest of three image regions, so it can be learnt).
Dataset tiny_dataset(int64_t n, uint64_t seed) {
  Dataset d;
  d.kind = "image-folder", d.source = "tiny", d.sample_shape = {1, 4, 4}, d.num_classes = 3;
  d.class_names = {"a", "b", "c"};
  Generator g(seed);
  const std::vector<float> u = rand({n * 16}, g).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    double region[3] = {0, 0, 0};
    for (int64_t k = 0; k < 16; ++k) {
      const uint8_t v = uint8_t(u[size_t(i * 16 + k)] * 255);
      d.images.push_back(v);
      region[k % 3] += v;
    }
    d.labels.push_back(int64_t(std::max_element(region, region + 3) - region));
  }
  d.check();
  return d;
}

// A model of the library user's own (not in the zoo), with Dropout.
class TinyNet : public Module {
 public:
  explicit TinyNet(uint64_t seed) {
    Generator g(seed);
    fc1_ = register_module("fc1", std::make_shared<Linear>(16, 12, g));
    drop_ = register_module("drop", std::make_shared<Dropout>(0.3, seed + 1));
    fc2_ = register_module("fc2", std::make_shared<Linear>(12, 3, g));
  }
  Tensor forward(const Tensor& x) override { return fc2_->forward(drop_->forward(relu(fc1_->forward(flatten(x, 1))))); }
  std::string describe() const override { return "TinyNet"; }

 private:
  std::shared_ptr<Linear> fc1_, fc2_;
  std::shared_ptr<Dropout> drop_;
};

struct TinyRun {
  std::string method = "pgd";
  int epochs = 2;
  double ema_decay = 0, awp_gamma = 0;
  std::string out;
  int stop_after = 0;
  Device device = Device::CPU;
  bool quiet = true;
};

std::unique_ptr<Trainer> tiny_trainer(const TinyRun& r) {
  auto model = std::make_shared<TinyNet>(7);
  model->to(r.device);
  Dataset train = tiny_dataset(96, 1), val = tiny_dataset(32, 2), test = tiny_dataset(32, 3);
  auto opt = std::make_unique<SGD>(model->parameters(), 0.1, 0.9);
  MethodOptions mo;
  mo.steps = 2, mo.seed = 3, mo.awp_gamma = r.awp_gamma;
  auto method = make_training_method(r.method, mo);
  auto schedule = std::make_unique<CosineAnnealingLR>(0.1, training_steps(train.size(), 32, r.epochs, method->replays_per_batch()));
  TrainerOptions o = TrainerOptions().epochs(r.epochs).batch(32).eps(0.1).val_pgd_steps(2).final_pgd_steps(2);
  o.seed(5).quiet(r.quiet).out(r.out).stop_after_epochs(r.stop_after).ema_decay(r.ema_decay);
  return std::make_unique<Trainer>(model, std::move(train), std::move(val), std::move(test), std::move(opt),
                                   std::move(schedule), std::move(method), o);
}

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

}  // namespace

TEST_CASE("MART's loss equals the formula computed by hand on a fixed tiny batch") {
  const std::vector<double> clean = {2.0, 0.5, -1.0, 0.1, 0.3, 1.2}, adv = {0.4, 1.5, -0.2, 1.0, 0.9, 0.2};
  const std::vector<int64_t> labels = {0, 2};
  const double beta = 6.0;
  // Plain double arithmetic, term by term as in mart.h.
  auto softmax_row = [](const std::vector<double>& z, size_t row) {
    std::vector<double> p(3);
    double total = 0;
    for (size_t k = 0; k < 3; ++k) total += (p[k] = std::exp(z[row * 3 + k]));
    for (double& v : p) v /= total;
    return p;
  };
  double ce = 0, boost = 0, robust = 0;
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<double> p = softmax_row(clean, i), q = softmax_row(adv, i);
    const size_t y = size_t(labels[i]);
    ce += -std::log(q[y]);
    double best_other = 0;
    for (size_t k = 0; k < 3; ++k)
      if (k != y) best_other = std::max(best_other, q[k]);
    boost += -std::log(1.0001 - best_other + 1e-12);
    double kl = 0;
    for (size_t k = 0; k < 3; ++k) kl += p[k] * (std::log(p[k]) - std::log(q[k] + 1e-12));
    robust += kl * (1.0000001 - p[y]);
  }
  const double expected = ce / 2 + boost / 2 + beta * robust / 2;
  const Tensor got = mart_loss(from_vector(clean, {2, 3}), from_vector(adv, {2, 3}), from_vector(labels, {2}), beta);
  CHECK(got.item() == doctest::Approx(expected).epsilon(1e-12));
  // beta weighs the KL term: beta 0 leaves the boosted cross-entropy alone.
  CHECK(mart_loss(from_vector(clean, {2, 3}), from_vector(adv, {2, 3}), from_vector(labels, {2}), 0.0).item() ==
        doctest::Approx(ce / 2 + boost / 2).epsilon(1e-12));
}

TEST_CASE("AWP: the weights are put back bit for bit before the step, and gamma > 0 changes the step") {
  const Tensor x = tiny_dataset(8, 4).images_float({0, 1, 2, 3, 4, 5, 6, 7});
  const Tensor y = tiny_dataset(8, 4).labels_tensor({0, 1, 2, 3, 4, 5, 6, 7});
  std::vector<double> loss_at_start;  // the training loss at w + v (AWP), then at w (gamma 0)
  auto step_with = [&](double gamma, std::vector<std::vector<float>>& before, bool& was_perturbed) {
    TinyNet model(11);
    MethodOptions mo;
    mo.steps = 2, mo.seed = 1, mo.awp_gamma = gamma;
    auto method = make_training_method("pgd", mo);
    const StepContext c{model, x, y, 0.1, 0, 0, 0};
    for (const auto& [k, p] : model.named_parameters()) before.push_back(values(p));
    const Tensor inputs = method->craft(c);
    model.train();
    // The gradient AWP should ascend, computed here with the same Dropout mask (the generator's counter
    // is put back, so AWP's own forward draws the same numbers).
    std::vector<Tensor> weights, expected_g;
    if (gamma > 0) {
      auto generators = model.named_generators();
      std::vector<uint64_t> offsets;
      for (const auto& g : generators) offsets.push_back(g.second->offset());
      for (const auto& kv : model.named_parameters())
        if (kv.second.dim() >= 2) weights.push_back(kv.second);
      expected_g = grad({method->loss(c, inputs).loss}, weights);
      for (size_t k = 0; k < generators.size(); ++k) generators[k].second->set_offset(offsets[k]);
    }
    std::vector<std::vector<float>> w_before_awp;
    for (const Tensor& w : weights) w_before_awp.push_back(values(w));
    method->before_loss(c, inputs);
    // v = w_now - w is along +g (uphill), not -g: cosine with the independently computed gradient is 1.
    for (size_t k = 0; k < weights.size(); ++k) {
      const std::vector<float> now = values(weights[k]), g = values(expected_g[k]);
      double vg = 0, vv = 0, gg = 0;
      for (size_t e = 0; e < g.size(); ++e) {
        const double v = double(now[e]) - double(w_before_awp[k][e]);
        vg += v * g[e], vv += v * v, gg += double(g[e]) * g[e];
      }
      CHECK(vg / std::sqrt(vv * gg) == doctest::Approx(1.0).epsilon(1e-3));
    }
    auto* awp = dynamic_cast<AWP*>(method.get());
    was_perturbed = awp && awp->perturbed();
    size_t changed = 0, i = 0;
    for (const auto& [k, p] : model.named_parameters()) changed += values(p) != before[i++];
    if (awp) {
      CHECK(changed == 2);  // fc1.weight and fc2.weight; biases are left alone
      // ||v|| = gamma ||w|| per weight tensor, and v goes up the loss.
      i = 0;
      for (const auto& kv : model.named_parameters()) {
        const std::vector<float>& w = before[i++];
        const std::vector<float> now = values(kv.second);
        double w2 = 0, v2 = 0;
        for (size_t e = 0; e < w.size(); ++e) w2 += double(w[e]) * w[e], v2 += double(now[e] - w[e]) * (now[e] - w[e]);
        if (kv.second.dim() >= 2) CHECK(std::sqrt(v2 / w2) == doctest::Approx(gamma).epsilon(1e-3));
      }
    }
    SGD opt(model.parameters(), 0.1);
    opt.zero_grad();
    const Tensor loss = method->loss(c, inputs).loss;
    loss_at_start.push_back(loss.item());
    backward(loss);
    method->before_optimizer_step(c);
    i = 0;
    for (const auto& kv : model.named_parameters()) {
      INFO(kv.first);
      CHECK(values(kv.second) == before[i++]);  // bitwise: the step starts from w, not from w + v - v
    }
    opt.step();
    std::vector<std::vector<float>> after;
    for (const auto& [k, p] : model.named_parameters()) after.push_back(values(p));
    return after;
  };
  std::vector<std::vector<float>> before_awp, before_plain;
  bool perturbed = false, plain_perturbed = true;
  const auto with_awp = step_with(0.05, before_awp, perturbed);
  const auto without = step_with(0.0, before_plain, plain_perturbed);
  CHECK(perturbed);
  CHECK_FALSE(plain_perturbed);
  CHECK(before_awp == before_plain);  // the same starting weights
  CHECK(with_awp != without);         // the gradient was taken at w + v
  CHECK(loss_at_start[0] > loss_at_start[1]);  // w + v is uphill (both losses at the same crafted inputs' seed)
}

TEST_CASE("AWP works on top of pgd, trades and mart only; an unknown method lists the names") {
  MethodOptions mo;
  mo.awp_gamma = 0.01;
  CHECK_THROWS_WITH_AS(make_training_method("natural", mo), doctest::Contains("pgd, trades or mart"), ValueError);
  CHECK_NOTHROW(make_training_method("trades", mo));
  CHECK_THROWS_WITH_AS(make_training_method("magic", MethodOptions{}), doctest::Contains("mart"), ValueError);
  TrainConfig c;
  c.method = "fgsm-rs", c.awp_gamma = 0.01;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("awp_gamma"), ValueError);
  c = TrainConfig{};
  c.ema_decay = 1.0;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("ema_decay"), ValueError);
  c = TrainConfig{};
  c.mart_beta = -1;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("mart_beta"), ValueError);
}

TEST_CASE("EMA after k optimizer steps equals the closed form of the recorded weights") {
  const double d = 0.9;
  TinyRun r;
  r.method = "natural", r.epochs = 1, r.ema_decay = d, r.quiet = false;
  auto trainer = tiny_trainer(r);
  // w_0 (the initial weights) and w_1..w_k after each step (one step per batch), through the progress callback.
  std::vector<std::map<std::string, std::vector<double>>> w;
  auto record = [&] {
    std::map<std::string, std::vector<double>> now;
    for (const auto& [k, t] : trainer->model().named_parameters()) now[k] = t.to_vector<double>();
    w.push_back(now);
  };
  record();
  trainer->on_progress = [&](const TrainProgress&) { record(); };
  trainer->run();
  const size_t k = w.size() - 1;
  REQUIRE(k == 3);  // 96 samples in batches of 32
  const StateDict ema = trainer->ema_weights();
  for (const auto& [name, w0] : w[0]) {
    const std::string key = name;
    INFO(key);
    const std::vector<double> got = ema.at(key).to_vector<double>();
    for (size_t e = 0; e < w0.size(); ++e) {
      double expected = std::pow(d, double(k)) * w0[e];
      for (size_t i = 1; i <= k; ++i) expected += (1 - d) * std::pow(d, double(k - i)) * w[i].at(key)[e];
      CHECK(got[e] == doctest::Approx(expected).epsilon(1e-5));
    }
  }
  CHECK(values(ema.at("fc1.weight")) != values(trainer->model().state_dict().at("fc1.weight")));
}

TEST_CASE("a user-defined model with Dropout, stopped after epoch 1 and resumed, ends bit-identical") {
  TinyRun whole;
  whole.method = "pgd", whole.ema_decay = 0.8, whole.out = temp_dir("whole");
  auto whole_trainer = tiny_trainer(whole);
  const TrainSummary a = whole_trainer->run();
  TinyRun part = whole;
  part.out = temp_dir("part"), part.stop_after = 1;
  CHECK_FALSE(tiny_trainer(part)->run().finished);
  TinyRun again = whole;
  again.out = part.out;
  auto resumed = tiny_trainer(again);  // the same objects, built afresh
  const TrainSummary b = resumed->run(part.out);
  CHECK(b.finished);
  CHECK(a.param_sha256 == b.param_sha256);
  CHECK(fs::exists(part.out + "/ema.safetensors"));
  // The weight average resumes bit for bit too.
  const StateDict ema_whole = whole_trainer->ema_weights(), ema_resumed = resumed->ema_weights();
  REQUIRE(ema_whole.size() == ema_resumed.size());
  for (const auto& kv : ema_whole) {
    INFO(kv.first);
    CHECK(bitwise_equal(kv.second, ema_resumed.at(kv.first)));
  }
  // The Dropout counter is checkpoint state, beside the optimizer's (not a state_dict key).
  const Checkpoint ck = load_checkpoint(part.out + "/checkpoint", nullptr, nullptr);
  REQUIRE(ck.random_state.size() == 1);
  CHECK(ck.random_state[0].first == "drop.generator");
  CHECK(ck.random_state[0].second > 0);
  for (const auto& kv : resumed->model().state_dict()) CHECK(kv.first.find("generator") == std::string::npos);
  fs::remove_all(whole.out);
  fs::remove_all(part.out);
}

TEST_CASE("a model on Device::Reference trains end to end (batches go to the model's device)") {
  TinyRun ref;
  ref.method = "trades", ref.epochs = 1, ref.device = Device::Reference;
  auto trainer = tiny_trainer(ref);
  const TrainSummary s = trainer->run();
  CHECK(s.finished);
  CHECK(s.test_samples == 32);
  for (const auto& kv : trainer->model().named_parameters()) CHECK(kv.second.device() == Device::Reference);
  // The same run on the CPU: the same numbers up to float rounding.
  TinyRun cpu = ref;
  cpu.device = Device::CPU;
  auto on_cpu = tiny_trainer(cpu);
  on_cpu->run();
  const std::vector<float> w_ref = values(trainer->model().state_dict().at("fc2.weight").to(Device::CPU));
  const std::vector<float> w_cpu = values(on_cpu->model().state_dict().at("fc2.weight"));
  for (size_t i = 0; i < w_ref.size(); ++i) CHECK(w_ref[i] == doctest::Approx(w_cpu[i]).epsilon(1e-3));
}

TEST_CASE("trades-kl: inside the eps-ball and [0,1], and it raises the KL to the clean prediction") {
  TinyNet model(3);
  model.eval();
  const std::vector<int64_t> rows = {0, 1, 2, 3, 4, 5, 6, 7};
  const Dataset d = tiny_dataset(8, 9);
  const Tensor x = d.images_float(rows), y = d.labels_tensor(rows);
  AttackOptions o;
  o.eps = 0.1, o.steps = 5, o.seed = 2;
  const Tensor x_adv = make_attack("trades-kl", o)->perturb(model, x, y, 0);
  const std::vector<float> xa = values(x_adv), xc = values(x);
  for (size_t i = 0; i < xa.size(); ++i) {
    CHECK(std::abs(xa[i] - xc[i]) <= 0.1f + 1e-7f);
    CHECK(xa[i] >= 0.0f);
    CHECK(xa[i] <= 1.0f);
  }
  const Tensor p_clean = softmax(predict(model, x), 1);
  const double kl_adv = sum(kl_to_clean(predict(model, x_adv), p_clean)).item();
  CHECK(kl_adv > 1e-6);  // at x the divergence is 0
  CHECK(sum(kl_to_clean(predict(model, x), p_clean)).item() == doctest::Approx(0.0));
}

TEST_CASE("config.json written before mart_beta, awp_gamma, awp_warmup and ema_decay loads with defaults") {
  auto j = nlohmann::json::parse(TrainConfig{}.to_json());
  for (const char* f : {"mart_beta", "awp_gamma", "awp_warmup", "ema_decay"}) {
    CHECK(j.contains(f));
    j.erase(f);
  }
  const TrainConfig old = TrainConfig::from_json(j.dump(), "old/config.json");
  CHECK(old.mart_beta == 6.0);
  CHECK(old.awp_gamma == 0);
  CHECK(old.awp_warmup == 0);
  CHECK(old.ema_decay == 0);
  j["awp_gamma"] = -0.5;
  CHECK_THROWS_WITH_AS(TrainConfig::from_json(j.dump(), "old/config.json"), doctest::Contains("awp_gamma"), IOError);
}

TEST_CASE("metrics lines name what the training accuracies are of; older lines still read") {
  EpochMetrics m;
  m.epoch = 1, m.method = "trades", m.train_adv_acc_of = "adversarial", m.train_clean_acc_of = "fixed training sample";
  m.ema_val_clean_acc = 0.5, m.ema_val_pgd_acc = 0.25, m.best_from = "ema";
  const EpochMetrics back = metrics_from_json(metrics_json(m), "m.jsonl");
  CHECK(back.train_adv_acc_of == "adversarial");
  CHECK(back.train_clean_acc_of == "fixed training sample");
  CHECK(back.ema_val_pgd_acc == 0.25);
  CHECK(back.best_from == "ema");
  auto old = nlohmann::json::parse(metrics_json(m));
  for (const char* f : {"train_adv_acc_of", "train_clean_acc_of", "ema_val_clean_acc", "ema_val_pgd_acc", "best_from"})
    old.erase(f);
  const EpochMetrics before = metrics_from_json(old.dump(), "m.jsonl");
  CHECK(before.train_adv_acc_of.empty());
  CHECK(before.ema_val_pgd_acc == -1);
}

TEST_CASE("TRADES reports the accuracy of its adversarial logits, natural of its clean ones") {
  for (const std::string method : {"trades", "natural", "mart"}) {
    TinyRun r;
    r.method = method, r.epochs = 1;
    auto t = tiny_trainer(r);
    std::string of;
    t->on_epoch = [&](const EpochMetrics& m) { of = m.train_adv_acc_of; };
    t->run();
    CHECK_MESSAGE(of == (method == "natural" ? "clean" : "adversarial"), method);
  }
}

TEST_CASE("an EMA switched on at a resume starts from the checkpoint's weights, not the model's initial ones") {
  TinyRun part;
  part.out = temp_dir("ema_late"), part.stop_after = 1;
  auto first = tiny_trainer(part);
  first->run();
  StateDict at_checkpoint;  // the weights after epoch 1
  for (const auto& kv : first->model().state_dict()) at_checkpoint[kv.first] = kv.second.clone();
  TinyRun again = part;
  again.stop_after = 0, again.ema_decay = 0.999999;  // the average barely moves from where it starts
  auto resumed = tiny_trainer(again);
  StateDict initial;
  for (const auto& kv : resumed->model().state_dict()) initial[kv.first] = kv.second.clone();
  resumed->run(part.out);
  const StateDict ema = resumed->ema_weights();
  for (const char* key : {"fc1.weight", "fc2.weight"}) {
    INFO(key);
    CHECK(max_abs_diff(ema.at(key), at_checkpoint.at(key)) < 1e-4);
    CHECK(max_abs_diff(ema.at(key), initial.at(key)) > 1e-3);
  }
  fs::remove_all(part.out);
}
