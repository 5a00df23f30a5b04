// Attacks: the contract (eps-ball and [0,1] exactly, mode restored, no .grad touched, bounded memory,
// errors), closed forms, determinism, restarts/early stop/targeted behaviour, and every attack on a CNN
// and an LSTM.
#include <doctest/doctest.h>

#include <cmath>

#include "advgrad/attacks/apgd.h"
#include "advgrad/attacks/evaluate.h"
#include "advgrad/attacks/fab.h"
#include "advgrad/attacks/registry.h"
#include "advgrad/attacks/square.h"
#include "advgrad/attacks/threat_model.h"
#include "advgrad/autograd/engine.h"
#include "advgrad/core/parallel.h"
#include "advgrad/core/storage.h"
#include "advgrad/nn/models.h"

using namespace advgrad;

namespace {

// Default-initialised small models barely react to their input; larger weights make the logits
// input-dependent, like a trained model's, so that attacks can succeed.
std::shared_ptr<Module> sharpened(std::shared_ptr<Module> m, double factor) {
  NoGradGuard ng;
  for (auto& p : m->parameters()) p.mul_(factor);
  return m;
}

// A tiny CNN for 1x8x8 inputs, and an LSTM over 8 rows of 8: small so that every attack runs fast.
std::shared_ptr<Module> tiny_cnn(Generator& g) {
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(1, 4, 3, g, 1, 1));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<MaxPool2d>(2));
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(4 * 4 * 4, 10, g));
  return sharpened(m, 4.0);
}
std::shared_ptr<Module> tiny_lstm(Generator& g) { return sharpened(std::make_shared<LSTMClassifier>(8, 8, 12, 10, g), 3.0); }

// Inputs with many pixels exactly at 0 and 1, where clipping matters most.
Tensor test_inputs(int64_t n, Generator& g) {
  Tensor x = rand({n, 1, 8, 8}, g);
  NoGradGuard ng;
  return clamp(sub(mul(x, 1.4), 0.2), 0.0, 1.0);
}

// Labels the model currently predicts, so that clean accuracy is 100% and attacks have work to do.
Tensor predicted_labels(Module& m, const Tensor& x) { return argmax(predict(m, x), 1); }

void check_contract(const Tensor& x, const AttackResult& r, double eps, Norm norm) {
  REQUIRE(r.x_adv.shape() == x.shape());
  CHECK(max_perturbation(r.x_adv, x, norm) <= eps);  // exact, in double
  for (double v : r.x_adv.to_vector<double>()) {
    CHECK(v >= 0.0);
    CHECK(v <= 1.0);
  }
}

}  // namespace

TEST_CASE("every attack keeps x_adv in the eps-ball and in [0,1], on a CNN and an LSTM") {
  Generator g(1);
  for (auto& model : {tiny_cnn(g), tiny_lstm(g)}) {
    Tensor x = test_inputs(6, g);
    Tensor y = predicted_labels(*model, x);
    for (const auto& name : attack_names()) {
      for (double eps : {0.0, 0.03, 0.3}) {
        AttackOptions o;
        const Norm norm = attack_entry(name).norm;
        o.eps = norm == Norm::L2 ? eps * 4 : eps;
        o.steps = 5, o.restarts = 2, o.queries = 30, o.target_classes = 2, o.seed = 3;
        AttackResult r = make_attack(name, o)->run(*model, x, y);
        INFO(name, " eps ", o.eps);
        check_contract(x, r, o.eps, norm);
        CHECK(r.fooled.size() == 6);
        if (eps == 0.0) CHECK(r.accuracy() == 1.0);
      }
    }
  }
}

// project() in L-inf: every element lands in [max(x - eps, 0), min(x + eps, 1)] computed exactly (in
// double), at the representable value nearest to the clamped step: the step itself when it is inside,
// the closest value inside the interval when it is outside, and x where the step is NaN.
template <class T>
void check_linf_projection(Generator& g) {
  const double eps = 0.1 / 3;  // not a float: x +- eps rounds both ways
  const int64_t n = 4000;
  std::vector<T> x(n), adv(n);
  std::vector<double> u = uniform({n}, 0, 1, g, DType::F64).template to_vector<double>();
  std::vector<double> v = uniform({n}, -0.2, 0.2, g, DType::F64).template to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    x[i] = i % 17 == 0 ? T(0) : i % 19 == 0 ? T(1) : T(u[i]);
    adv[i] = i % 23 == 0 ? std::numeric_limits<T>::quiet_NaN() : T(double(x[i]) + v[i]);
  }
  std::vector<T> out = project(from_vector(adv), from_vector(x), eps, Norm::Linf).template to_vector<T>();
  int64_t bad = 0, rounded_down = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double lo = std::max(double(x[i]) - eps, 0.0), hi = std::min(double(x[i]) + eps, 1.0);
    const double o = double(out[i]);
    bool ok = o >= lo && o <= hi;
    if (std::isnan(adv[i])) ok = ok && out[i] == x[i];
    else if (double(adv[i]) > hi) {
      ok = ok && double(std::nextafter(out[i], T(2))) > hi;  // the largest value <= hi
      rounded_down += double(T(hi)) > hi;
    } else if (double(adv[i]) < lo) ok = ok && double(std::nextafter(out[i], T(-1))) < lo;  // the smallest >= lo
    else ok = ok && out[i] == adv[i];
    bad += !ok;
  }
  CHECK(bad == 0);
  // In float, the case where plain rounding would leave the ball was exercised (a double hi is exact).
  if (std::is_same_v<T, float>) CHECK(rounded_down > 0);
}

TEST_CASE("project (L-inf): the nearest value inside the eps-ball and [0,1], x where the step is NaN") {
  Generator g(31);
  check_linf_projection<float>(g);
  check_linf_projection<double>(g);
}

TEST_CASE("the model's mode is restored and no parameter .grad changes") {
  Generator g(2);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(4, g), y = predicted_labels(*m, x);
  // Give every parameter a known gradient first.
  backward(cross_entropy(m->forward(x), y));
  std::vector<Tensor> before;
  for (auto& p : m->parameters()) before.push_back(p.grad().clone());
  m->train();
  AttackOptions o;
  o.eps = 0.1;
  for (const auto& name : {"pgd", "apgd-ce", "mifgsm", "square"}) make_attack(name, o)->run(*m, x, y);
  CHECK(m->is_training());
  auto params = m->parameters();
  for (size_t i = 0; i < params.size(); ++i) CHECK(bitwise_equal(params[i].grad(), before[i]));
  m->eval();
  make_attack("pgd", o)->run(*m, x, y);
  CHECK_FALSE(m->is_training());
}

TEST_CASE("live memory does not grow with the number of steps") {
  Generator g(3);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(8, g), y = predicted_labels(*m, x);
  auto peak_for = [&](int steps) {
    AttackOptions o;
    o.eps = 0.1, o.steps = steps;
    auto attack = make_attack("pgd", o);
    int64_t live_before = storage_stats().live;
    storage_reset_peak();
    attack->run(*m, x, y);
    return storage_stats().peak - live_before;
  };
  peak_for(2);  // warm up
  int64_t two = peak_for(2), many = peak_for(200);
  CHECK(many <= two);
  CHECK(two > 0);
}

TEST_CASE("checking a whole test set's inputs adds no set-sized temporaries") {
  // The [0,1] check used to build three full-size masks: evaluating 10000 Fashion-MNIST images held
  // 125 MB of temporaries beside the 31 MB input. It now checks a block of rows at a time.
  Generator g(5);
  Tensor x = rand({20000, 1, 28, 28}, g) * 0.5 + 0.25;  // 63 MB of float32, inside [0,1]
  Tensor y = zeros({20000}, DType::I64);
  const StorageMemory before = storage_memory();
  check_attack_inputs(x, y, 0.1, 10, "test");
  const StorageMemory after = storage_memory();
  CHECK(after.peak_live_bytes <= std::max(before.peak_live_bytes, before.live_bytes + (size_t(8) << 20)));
  // and it still finds a bad value in the last block
  Tensor bad = x.clone();
  bad.data<float>()[bad.numel() - 1] = 1.5f;
  CHECK_THROWS_WITH_AS(check_attack_inputs(bad, y, 0.1, 10, "test"), doctest::Contains("found 1.5"), ValueError);
}

TEST_CASE("invalid parameters raise clear errors") {
  Generator g(4);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(3, g), y = predicted_labels(*m, x);
  AttackOptions o;
  o.eps = -0.1;
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, x, y), ValueError);
  o.eps = 0.1, o.steps = 0;
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, x, y), ValueError);
  o.steps = 3;
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, x, from_vector(std::vector<int64_t>{1, 2})), ValueError);
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, x, from_vector(std::vector<int64_t>{1, 2, 10})), ValueError);
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, add(x, 0.5), y), ValueError);  // outside [0,1]
  o.targeted = true;
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, x, y), ValueError);  // targets missing
  CHECK_THROWS_AS(make_attack("pgd", o)->run(*m, x, y, from_vector(std::vector<int64_t>{0, 11, 2})), ValueError);
  try {
    make_attack("deepfool", o);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("apgd-t") != std::string::npos);  // lists the known names
  }
}

TEST_CASE("FGSM on a linear model matches its closed form") {
  // logits = W x + b; d CE / dx = W^T (softmax(logits) - onehot(y)); x_adv = clip(x + eps sign(.), 0, 1).
  Generator g(5);
  auto lin = std::make_shared<Linear>(6, 3, g);
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{std::make_shared<Flatten>(), lin});
  Tensor x = rand({4, 1, 2, 3}, g);
  Tensor y = argmax(predict(*model, x), 1);  // correctly classified: every sample is attacked
  AttackOptions o;
  o.eps = 0.05;
  AttackResult r = make_attack("fgsm", o)->run(*model, x, y);
  auto W = lin->weight.to_vector<double>(), b = lin->bias.to_vector<double>(), xv = x.to_vector<double>();
  auto adv = r.x_adv.to_vector<double>();
  for (int n = 0; n < 4; ++n) {
    double z[3], p[3], zmax = -1e30, s = 0;
    for (int k = 0; k < 3; ++k) {
      z[k] = b[size_t(k)];
      for (int i = 0; i < 6; ++i) z[k] += W[size_t(k * 6 + i)] * xv[size_t(n * 6 + i)];
      zmax = std::max(zmax, z[k]);
    }
    for (int k = 0; k < 3; ++k) s += std::exp(z[k] - zmax);
    for (int k = 0; k < 3; ++k) p[k] = std::exp(z[k] - zmax) / s - (k == y.at({n}) ? 1.0 : 0.0);
    for (int i = 0; i < 6; ++i) {
      double gx = 0;
      for (int k = 0; k < 3; ++k) gx += W[size_t(k * 6 + i)] * p[k];
      double want = std::clamp(xv[size_t(n * 6 + i)] + o.eps * (gx > 0 ? 1 : gx < 0 ? -1 : 0), 0.0, 1.0);
      CHECK(adv[size_t(n * 6 + i)] == doctest::Approx(want).epsilon(1e-6));
    }
  }
}

TEST_CASE("attacks are deterministic: same seed, same examples, at any thread count") {
  Generator g(6);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(8, g), y = predicted_labels(*m, x);
  AttackOptions o;
  o.eps = 0.1, o.steps = 5, o.restarts = 2, o.queries = 50, o.seed = 9;
  int saved = num_threads();
  for (const auto& name : {"pgd", "apgd-ce", "square", "pgd-l2"}) {
    set_num_threads(1);
    Tensor a = make_attack(name, o)->run(*m, x, y).x_adv;
    set_num_threads(2);
    Tensor b = make_attack(name, o)->run(*m, x, y).x_adv;
    CHECK_MESSAGE(bitwise_equal(a, b), name);
    AttackOptions other = o;
    other.seed = 10;
    if (std::string(name) != "pgd-l2") CHECK_FALSE(bitwise_equal(a, make_attack(name, other)->run(*m, x, y).x_adv));
  }
  set_num_threads(saved);
}

TEST_CASE("restarts and ensembles attack only the samples still standing; early stop saves work") {
  Generator g(7);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(16, g), y = predicted_labels(*m, x);
  AttackOptions o;
  o.eps = 0.5, o.steps = 10;  // large eps: everything falls in the first restart
  AttackResult one = make_attack("pgd", o)->run(*m, x, y);
  REQUIRE(one.accuracy() == 0.0);
  o.restarts = 5;
  AttackResult five = make_attack("pgd", o)->run(*m, x, y);
  CHECK(five.forward_samples == one.forward_samples);  // restarts 2..5 had nobody left to attack
  o.restarts = 1, o.steps = 50, o.early_stop = true;
  AttackResult early = make_attack("pgd", o)->run(*m, x, y);
  CHECK(early.accuracy() == 0.0);
  CHECK(early.gradient_samples < 50 * 16);
  // Samples misclassified before the attack are not attacked at all.
  Tensor wrong = add(y, from_vector(std::vector<int64_t>(16, 1)));
  wrong = sub(wrong, mul(ge(wrong, full({}, 10.0, DType::I64)), full({}, 10.0, DType::I64)));
  AttackResult none = make_attack("pgd", o)->run(*m, x, wrong);
  CHECK(none.gradient_samples == 0);
  CHECK(bitwise_equal(none.x_adv, x));
}

TEST_CASE("the attack table: each name builds its attack with its norm and its defaults resolved once") {
  const std::vector<std::string> want = {"fgsm",   "fgsm-rs", "bim", "pgd",    "pgd-l2",   "mifgsm", "apgd-ce", "apgd-dlr",
                                         "apgd-t", "fab",     "fab-l2", "fab-t", "fab-t-l2", "square", "trades-kl"};
  CHECK(attack_names() == want);
  REQUIRE(attack_registry().size() == want.size());
  AttackOptions o;
  o.eps = 0.1, o.steps = 10;
  o.norm = Norm::L2;  // the name fixes the norm: make_attack overrides this
  for (const AttackEntry& entry : attack_registry()) {
    INFO(entry.name);
    CHECK_FALSE(entry.description.empty());
    CHECK_FALSE(entry.defaults.empty());
    auto attack = make_attack(entry.name, o);
    CHECK(attack->name() == entry.name);
    const bool l2 = entry.name == "pgd-l2" || entry.name == "fab-l2" || entry.name == "fab-t-l2";
    CHECK(attack->options().norm == (l2 ? Norm::L2 : Norm::Linf));
  }
  // options() is what runs: the paper defaults, filled in by each attack, by hand here.
  struct Resolved {
    const char* name;
    int steps;
    double step_size;
    bool random_start;
  };
  for (const Resolved& r : {Resolved{"fgsm", 1, 0.1, false}, Resolved{"fgsm-rs", 1, 0.125, true},
                            Resolved{"bim", 10, 0.01, false}, Resolved{"pgd", 10, 0.025, true},
                            Resolved{"pgd-l2", 10, 0.025, true}, Resolved{"mifgsm", 10, 0.01, false},
                            Resolved{"trades-kl", 10, 0.025, true}}) {
    INFO(r.name);
    const AttackOptions got = make_attack(r.name, o)->options();
    CHECK(got.steps == r.steps);
    CHECK(got.step_size == doctest::Approx(r.step_size).epsilon(1e-12));
    CHECK(got.random_start == r.random_start);
  }
  AttackOptions given = o;
  given.step_size = 0.03;
  for (const char* name : {"fgsm", "fgsm-rs", "bim", "pgd", "mifgsm"}) CHECK(make_attack(name, given)->options().step_size == 0.03);
  CHECK(make_attack("apgd-dlr", o)->options().loss == AttackLoss::DLR);
  AttackOptions targeted = o;
  targeted.targeted = true;
  CHECK_FALSE(make_attack("apgd-t", targeted)->options().targeted);  // picks its own targets
  CHECK_FALSE(make_attack("fab-t", targeted)->options().targeted);   // so does FAB-T
  CHECK_FALSE(make_attack("fab", targeted)->options().targeted);     // and FAB, untargeted by definition
  CHECK(make_attack("square", o)->options().loss == AttackLoss::CWMargin);
  try {
    attack_entry("deepfool");
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()) ==
          "unknown attack 'deepfool' (known: fgsm, fgsm-rs, bim, pgd, pgd-l2, mifgsm, apgd-ce, apgd-dlr, apgd-t, fab, fab-l2, fab-t, fab-t-l2, square, trades-kl)");
  }
}

TEST_CASE("targeted PGD drives samples to their target; weaker eps fools fewer") {
  Generator g(8);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(12, g), y = predicted_labels(*m, x);
  Tensor t = from_vector(std::vector<int64_t>(12, 3));
  AttackOptions o;
  o.eps = 0.5, o.steps = 40, o.targeted = true;
  AttackResult r = make_attack("pgd", o)->run(*m, x, y, t);
  auto pred = argmax(predict(*m, r.x_adv), 1).to_vector<int64_t>();
  for (size_t i = 0; i < pred.size(); ++i)
    if (r.fooled[i]) CHECK(pred[i] == 3);
  CHECK(r.accuracy() < 0.5);
  o.targeted = false;
  double acc_small = [&] { AttackOptions s = o; s.eps = 0.01; return make_attack("pgd", s)->run(*m, x, y).accuracy(); }();
  double acc_large = make_attack("pgd", o)->run(*m, x, y).accuracy();
  CHECK(acc_large <= acc_small);
}

TEST_CASE("APGD checkpoints and Square schedule follow the papers") {
  CHECK(APGD::checkpoints(100) == std::vector<int>{0, 22, 41, 57, 70, 80, 87, 93, 99});
  // The standard schedule (AutoAttack's): the marks count iterations themselves.
  CHECK(SquareAttack::patch_fraction(0.8, 0, 5000) == 0.8);
  CHECK(SquareAttack::patch_fraction(0.8, 10, 5000) == 0.8);
  CHECK(SquareAttack::patch_fraction(0.8, 11, 5000) == 0.4);
  CHECK(SquareAttack::patch_fraction(0.8, 6, 5000) == 0.8);
  CHECK(SquareAttack::patch_fraction(0.8, 201, 5000) == doctest::Approx(0.8 / 8));
  CHECK(SquareAttack::patch_fraction(0.8, 4001, 5000) == doctest::Approx(0.8 / 128));  // last piece at 5000
  CHECK(SquareAttack::patch_fraction(0.8, 9000, 10000) == doctest::Approx(0.8 / 512));
  // The rescaled variant reads the marks on a 10,000 scale of the budget.
  CHECK(SquareAttack::patch_fraction(0.8, 6, 5000, true) == 0.4);  // 6/5000 of the budget = 12 of 10,000
  CHECK(SquareAttack::patch_fraction(0.8, 4001, 5000, true) == doctest::Approx(0.8 / 512));  // 8002
}

TEST_CASE("APGD and the ensemble are at least as strong as FGSM; Square works without gradients") {
  Generator g(9);
  auto m = tiny_cnn(g);
  Tensor x = test_inputs(32, g), y = predicted_labels(*m, x);
  AttackOptions o;
  o.eps = 0.05, o.steps = 20, o.queries = 300, o.target_classes = 3;
  double fgsm = make_attack("fgsm", o)->run(*m, x, y).accuracy();
  double apgd = make_attack("apgd-ce", o)->run(*m, x, y).accuracy();
  double apgd_dlr = make_attack("apgd-dlr", o)->run(*m, x, y).accuracy();
  AttackResult sq = make_attack("square", o)->run(*m, x, y);
  CHECK(apgd <= fgsm);
  CHECK(apgd_dlr < 1.0);
  CHECK(sq.accuracy() < 1.0);
  CHECK(sq.gradient_samples == 0);
  CHECK(sq.forward_samples <= 32 * (o.queries + 2));

  EvalOptions eo;
  eo.ensemble = true, eo.batch_size = 10;
  auto specs = ensemble_preset(0.05, 1, 0.2);
  EvalReport rep = evaluate(*m, x, y, specs, eo);
  CHECK(rep.n == 32);
  CHECK(rep.clean_accuracy == 1.0);
  REQUIRE(rep.attacks.size() == 4);
  CHECK(rep.attacks[0].accuracy >= rep.attacks[1].accuracy);  // cumulative
  CHECK(rep.attacks[1].accuracy >= rep.attacks[2].accuracy);
  CHECK(rep.attacks[2].accuracy >= rep.attacks[3].accuracy);
  CHECK(rep.robust_accuracy == rep.attacks[3].accuracy);
  CHECK(rep.robust_accuracy <= apgd + 1e-12);
  for (const auto& a : rep.attacks) CHECK(a.max_perturbation <= 0.05);
  // Independent mode: each attack's own accuracy; robust = worst case per sample.
  eo.ensemble = false;
  EvalReport ind = evaluate(*m, x, y, {{"fgsm", o}, {"pgd", o}}, eo);
  CHECK(ind.attacks[0].accuracy == doctest::Approx(fgsm));
  CHECK(ind.robust_accuracy <= std::min(ind.attacks[0].accuracy, ind.attacks[1].accuracy));
}

TEST_CASE("evaluate: targeted attacks aim at the next class and are scored by the label") {
  CHECK(next_class_targets(from_vector(std::vector<int64_t>{0, 8, 9, 3}), 10).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 9, 0, 4});
  Generator g(12);
  auto m = tiny_cnn(g);
  const int64_t n = 16;
  Tensor x = test_inputs(n, g);
  std::vector<int64_t> labels = predicted_labels(*m, x).to_vector<int64_t>();
  labels[3] = (labels[3] + 5) % 10;  // two samples the model gets wrong: never attacked, never robust
  labels[7] = (labels[7] + 5) % 10;
  Tensor y = from_vector(labels);
  AttackOptions o;
  o.eps = 0.3, o.steps = 10, o.targeted = true, o.seed = 2;
  EvalReport rep = evaluate(*m, x, y, {{"pgd", o}, {"fgsm", o}, {"apgd-t", o}});
  REQUIRE(rep.attacks.size() == 3);
  CHECK(rep.clean_accuracy == doctest::Approx(14.0 / 16.0));

  // By hand: the clean-correct samples, each aimed at (label + 1) mod 10, in one batch.
  std::vector<int64_t> rows, targets;
  for (int64_t i = 0; i < n; ++i)
    if (i != 3 && i != 7) rows.push_back(i), targets.push_back((labels[size_t(i)] + 1) % 10);
  Tensor xs = take_rows(x, rows), ys = take_rows(y, rows);
  std::vector<bool> robust(size_t(n), false);
  for (int64_t i : rows) robust[size_t(i)] = true;
  for (size_t a = 0; a < 2; ++a) {
    INFO(rep.attacks[a].name);
    AttackResult r = make_attack(rep.attacks[a].name, o)->run(*m, xs, ys, from_vector(targets));
    const auto pred = argmax(predict(*m, r.x_adv), 1).to_vector<int64_t>();
    int64_t still_label = 0, reached = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      still_label += pred[k] == labels[size_t(rows[k])];
      reached += pred[k] == targets[k];
      if (pred[k] != labels[size_t(rows[k])]) robust[size_t(rows[k])] = false;
    }
    CHECK(rep.attacks[a].accuracy == doctest::Approx(double(still_label) / double(n)));
    REQUIRE(rep.attacks[a].target_success.has_value());
    CHECK(*rep.attacks[a].target_success == doctest::Approx(double(reached) / double(rows.size())));
    CHECK(rep.attacks[a].options.targeted);
  }
  CHECK(rep.attacks[0].accuracy < 14.0 / 16.0);  // the attack does something at eps 0.3
  // apgd-t picks its own targets: scored as untargeted, with no target success.
  CHECK_FALSE(rep.attacks[2].target_success.has_value());
  CHECK_FALSE(rep.attacks[2].options.targeted);
  AttackOptions untargeted = o;
  untargeted.targeted = false;
  AttackResult t = make_attack("apgd-t", untargeted)->run(*m, xs, ys);
  int64_t standing = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    standing += !t.fooled[k];
    if (t.fooled[k]) robust[size_t(rows[k])] = false;
  }
  CHECK(rep.attacks[2].accuracy == doctest::Approx(double(standing) / double(n)));
  int64_t robust_count = 0;
  for (bool b : robust) robust_count += b;
  CHECK(rep.robust == robust);
  CHECK(rep.robust_accuracy == doctest::Approx(double(robust_count) / double(n)));
}

TEST_CASE("sanity checks flag a model whose gradients are masked") {
  // A model that rounds its input to {0,1} has zero gradients almost everywhere: FGSM/PGD stall, so
  // accuracy at eps 0.5 stays high: the evaluation must warn.
  struct Quantized : Module {
    std::shared_ptr<Module> inner;
    explicit Quantized(std::shared_ptr<Module> m) : inner(register_module("inner", std::move(m))) {}
    Tensor forward(const Tensor& x) override {
      Tensor hard = ge(x.detach(), full({}, 0.5, x.dtype(), x.device()));
      return inner->forward(add(mul(x, 0.0), hard));  // gradient through x is exactly 0
    }
    std::string describe() const override { return "Quantized"; }
  };
  Generator g(10);
  Quantized m(tiny_cnn(g));
  Tensor x = test_inputs(20, g), y = predicted_labels(m, x);
  AttackOptions o;
  o.eps = 0.1;
  EvalOptions eo;
  eo.sanity_checks = true;
  EvalReport rep = evaluate(m, x, y, {{"pgd", o}}, eo);
  CHECK_FALSE(rep.warnings.empty());
  // A plain model does not trigger the "not near 0 at large eps" warning.
  auto plain = tiny_cnn(g);
  Tensor yp = predicted_labels(*plain, x);
  EvalReport ok = evaluate(*plain, x, yp, {{"pgd", o}}, eo);
  for (const auto& w : ok.warnings) CHECK(w.find("not near 0") == std::string::npos);
}

TEST_CASE("AutoAttack presets: the standard set and budgets, and the fast one") {
  const auto standard = autoattack_preset(8.0 / 255, 4);
  REQUIRE(standard.size() == 4);
  const char* names[] = {"apgd-ce", "apgd-t", "fab-t", "square"};
  for (size_t i = 0; i < 4; ++i) {
    INFO(names[i]);
    CHECK(standard[i].name == names[i]);
    CHECK(standard[i].options.eps == 8.0 / 255);
    CHECK(standard[i].options.seed == 4);
    CHECK(standard[i].options.restarts == 1);
  }
  CHECK(standard[0].options.steps == 100);
  CHECK(standard[1].options.steps == 100);
  CHECK(standard[1].options.target_classes == 9);
  CHECK(standard[2].options.steps == 100);
  CHECK(standard[2].options.target_classes == 9);
  CHECK(standard[3].options.queries == 5000);
  CHECK(standard[3].options.square_p_init == 0.8);
  CHECK_FALSE(standard[3].options.square_rescale_schedule);
  const auto old_name = ensemble_preset(8.0 / 255, 4);
  REQUIRE(old_name.size() == 4);
  CHECK(old_name[2].name == "fab-t");
  const auto fast = autoattack_preset(8.0 / 255, 4, true);
  REQUIRE(fast.size() == 2);
  CHECK(fast[0].name == "apgd-ce");
  CHECK(fast[1].name == "apgd-t");
  CHECK(fast[1].options.target_classes == 3);
  CHECK(autoattack_preset(0.1, 0, false, 0.5)[3].options.queries == 2500);
  CHECK(autoattack_preset(0.1, 0, false, 0.5)[2].options.steps == 50);
}

namespace {
Tensor rows64(const std::vector<std::vector<double>>& rows) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return from_vector(flat, {int64_t(rows.size()), int64_t(rows[0].size())});
}
void check_rows(const Tensor& got, const std::vector<std::vector<double>>& want) {
  const std::vector<double> g = got.to_vector<double>();
  size_t k = 0;
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t j = 0; j < want[i].size(); ++j, ++k) {
      INFO("row ", i, " column ", j);
      CHECK(g[k] == doctest::Approx(want[i][j]).epsilon(1e-12));
    }
}
}  // namespace

TEST_CASE("FAB's projection onto a hyperplane inside the box, by hand, L-inf and L2") {
  // Each row: point t, normal w, offset b; the minimal step d with <w, t + d> = b and t + d in [0,1].
  Tensor t = rows64({{0.5, 0.5, 0.5}, {0.9, 0.5, 0.5}, {0.5, 0.5, 0.5}, {0.9, 0.5, 0.5}, {0.5, 0.5, 0.5}, {0.2, 0.2, 0.2}});
  Tensor w = rows64({{1, 1, 0}, {1, 1, 0}, {1, -1, 0}, {1, 1, 0}, {1, 0, 1}, {1, 1, 1}});
  Tensor b = from_vector(std::vector<double>{1.5, 1.8, -0.4, 10.0, 1.5, 0.6});
  // L-inf: every moving coordinate goes as far as lambda, or to its bound. Row 1: c = 0.4, room 0.1 and
  // 0.5: 0.1 + lambda = 0.4. Row 2: the other side (c < 0). Row 3: out of reach, the nearest corner.
  // Row 5: already on the hyperplane.
  check_rows(project_onto_hyperplane_in_box(t, w, b, Norm::Linf),
             {{0.25, 0.25, 0}, {0.1, 0.3, 0}, {-0.2, 0.2, 0}, {0.1, 0.5, 0}, {0.25, 0, 0.25}, {0, 0, 0}});
  // L2: d = clamp(mu w, box). w = (1, 2): c = 0.6, room (0.1, 0.5): 0.1 + 2 * (2 mu) = 0.6, mu = 0.125.
  Tensor t2 = rows64({{0.9, 0.5}, {0.5, 0.5}, {0.9, 0.5}});
  Tensor w2 = rows64({{1, 2}, {3, 4}, {1, 1}});
  Tensor b2 = from_vector(std::vector<double>{0.9 + 1.0 + 0.6, 1.5 + 2.0 + 0.25, 10.0});
  // Row 1: (0.1, 0.25). Row 2: no bound hit, d = c w / |w|^2 = 0.25 (3, 4) / 25. Row 3: the corner.
  check_rows(project_onto_hyperplane_in_box(t2, w2, b2, Norm::L2), {{0.1, 0.25}, {0.03, 0.04}, {0.1, 0.5}});
}

TEST_CASE("FAB's projection is minimal: no feasible point of the box on the hyperplane is closer") {
  // Brute force in 2-D: walk the hyperplane's segment inside the box finely and take the closest point.
  Generator g(41);
  const int64_t n = 40;
  Tensor t = rand({n, 2}, g, DType::F64), w = uniform({n, 2}, -1, 1, g, DType::F64);
  Tensor target = rand({n, 2}, g, DType::F64);  // a point of the box on each hyperplane: always reachable
  Tensor b = sum(w * target, {1});
  for (Norm norm : {Norm::Linf, Norm::L2}) {
    INFO(norm_name(norm));
    const auto d = project_onto_hyperplane_in_box(t, w, b, norm).to_vector<double>();
    const auto tv = t.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      const double t0 = tv[size_t(2 * i)], t1 = tv[size_t(2 * i + 1)], w0 = wv[size_t(2 * i)], w1 = wv[size_t(2 * i + 1)];
      const double d0 = d[size_t(2 * i)], d1 = d[size_t(2 * i + 1)];
      CHECK(w0 * (t0 + d0) + w1 * (t1 + d1) == doctest::Approx(bv[size_t(i)]).epsilon(1e-9));
      CHECK(t0 + d0 >= -1e-12);
      CHECK(t0 + d0 <= 1 + 1e-12);
      CHECK(t1 + d1 >= -1e-12);
      CHECK(t1 + d1 <= 1 + 1e-12);
      auto length = [&](double a, double c) { return norm == Norm::Linf ? std::max(std::abs(a), std::abs(c)) : std::hypot(a, c); };
      double best = INFINITY;
      const bool along0 = std::abs(w1) > std::abs(w0);  // parametrise by the coordinate the line is steep in
      for (int k = 0; k <= 20000; ++k) {
        const double u = k / 20000.0;
        const double z0 = along0 ? u : (bv[size_t(i)] - w1 * u) / w0, z1 = along0 ? (bv[size_t(i)] - w0 * u) / w1 : u;
        if (z0 < 0 || z0 > 1 || z1 < 0 || z1 > 1) continue;
        best = std::min(best, length(z0 - t0, z1 - t1));
      }
      CHECK(length(d0, d1) <= best + 1e-9);
      CHECK(length(d0, d1) >= best - 2e-4);  // the grid's resolution
    }
  }
}

TEST_CASE("FAB-T finds adversarial examples with smaller perturbations than PGD; picks its own targets") {
  Generator g(42);
  auto m = tiny_cnn(g);
  const int64_t n = 24;
  Tensor x = test_inputs(n, g), y = predicted_labels(*m, x);
  AttackOptions o;
  o.eps = 0.3, o.steps = 30, o.target_classes = 9, o.seed = 5;
  o.targeted = true;  // ignored: FAB-T aims at the top other classes itself and is scored untargeted
  auto fab = make_attack("fab-t", o);
  CHECK_FALSE(fab->options().targeted);
  AttackResult rf = fab->run(*m, x, y);
  check_contract(x, rf, o.eps, Norm::Linf);
  o.targeted = false;
  AttackResult rp = make_attack("pgd", o)->run(*m, x, y);
  CHECK(rf.accuracy() <= 0.5);
  const auto pred = argmax(predict(*m, rf.x_adv), 1).to_vector<int64_t>(), labels = y.to_vector<int64_t>();
  const auto xf = rf.x_adv.to_vector<double>(), xp = rp.x_adv.to_vector<double>(), xv = x.to_vector<double>();
  const size_t D = xv.size() / size_t(n);
  double fab_sum = 0, pgd_sum = 0;
  int both = 0;
  for (size_t i = 0; i < size_t(n); ++i) {
    CHECK(rf.fooled[i] == (pred[i] != labels[i]));  // success = misclassified (not: on some target)
    if (!rf.fooled[i] || !rp.fooled[i]) continue;
    double df = 0, dp = 0;
    for (size_t j = 0; j < D; ++j) {
      df = std::max(df, std::abs(xf[i * D + j] - xv[i * D + j]));
      dp = std::max(dp, std::abs(xp[i * D + j] - xv[i * D + j]));
    }
    fab_sum += df, pgd_sum += dp, ++both;
  }
  REQUIRE(both >= n / 2);
  MESSAGE("mean L-inf norm over ", both, " samples fooled by both: FAB-T ", fab_sum / both, ", PGD ", pgd_sum / both);
  CHECK(fab_sum < 0.6 * pgd_sum);
  // L2 as well, inside its ball.
  AttackOptions l2 = o;
  l2.eps = 2.0;
  AttackResult r2 = make_attack("fab-t-l2", l2)->run(*m, x, y);
  check_contract(x, r2, l2.eps, Norm::L2);
  CHECK(r2.accuracy() <= 0.5);
  // One target class: one FAB run of `steps` gradients per sample. At a small eps, where some samples
  // survive the first target, nine target classes try the next ones on the survivors only.
  AttackOptions one = o;
  one.eps = 0.03, one.target_classes = 1;
  AttackResult r1 = make_attack("fab-t", one)->run(*m, x, y);
  CHECK(r1.gradient_samples == 30 * n);
  AttackOptions nine = one;
  nine.target_classes = 9;
  AttackResult r9 = make_attack("fab-t", nine)->run(*m, x, y);
  REQUIRE(r1.accuracy() > 0);
  CHECK(r9.gradient_samples > r1.gradient_samples);
  CHECK(r9.gradient_samples < 9 * 30 * n);
  CHECK(r9.accuracy() <= r1.accuracy());
  CHECK(bitwise_equal(make_attack("fab-t", o)->run(*m, x, y).x_adv, make_attack("fab-t", o)->run(*m, x, y).x_adv));
}

TEST_CASE("FAB (untargeted) aims at the closest boundary over all classes, not at the runner-up class") {
  // A linear model on two pixels at x0 = (0.5, 0.5), label 0: class 2 is the runner-up (logit -0.05 vs
  // -1) but its boundary is 0.25 away (f_2 = 0.2 (x_2 - 0.5) - 0.05), while class 1's is 0.1 away
  // (f_1 = 10 (x_1 - 0.5) - 1). The smallest L-inf perturbation that changes the prediction is 0.1.
  Generator g(1);
  auto lin = std::make_shared<Linear>(2, 3, g);
  {
    NoGradGuard no_grad;
    lin->weight.copy_(from_vector(std::vector<double>{0, 0, 10, 0, 0, 0.2}, {3, 2}));
    lin->bias.copy_(from_vector(std::vector<double>{0, -6, -0.15}, {3}));
  }
  Tensor x = full({1, 2}, 0.5), y = zeros({1}, DType::I64);
  REQUIRE(argmax(predict(*lin, x), 1).to_vector<int64_t>()[0] == 0);
  AttackOptions o;
  o.eps = 0.15, o.steps = 20;
  AttackResult fab = make_attack("fab", o)->run(*lin, x, y);
  REQUIRE(fab.fooled[0]);
  const auto adv = fab.x_adv.to_vector<double>();
  const double distance = std::max(std::abs(adv[0] - 0.5), std::abs(adv[1] - 0.5));
  MESSAGE("FAB's L-inf distance: ", distance, " (minimum 0.1)");
  CHECK(distance >= 0.1 - 1e-6);
  CHECK(distance <= 0.1 * 1.01);
  CHECK(argmax(predict(*lin, fab.x_adv), 1).to_vector<int64_t>()[0] == 1);
  // FAB-T with one target aims at the runner-up, class 2, whose boundary lies beyond eps.
  o.target_classes = 1;
  CHECK_FALSE(make_attack("fab-t", o)->run(*lin, x, y).fooled[0]);
  // L2: the same geometry (one pixel per boundary), the same minimum.
  o.eps = 0.15;
  AttackResult l2 = make_attack("fab-l2", o)->run(*lin, x, y);
  REQUIRE(l2.fooled[0]);
  const auto a2 = l2.x_adv.to_vector<double>();
  const double d2 = std::sqrt((a2[0] - 0.5) * (a2[0] - 0.5) + (a2[1] - 0.5) * (a2[1] - 0.5));
  CHECK(d2 >= 0.1 - 1e-6);
  CHECK(d2 <= 0.1 * 1.01);
  // The distance to a boundary is measured in the dual norm: class 1's boundary (f_1 = 5 (x_1 + x_2 - 1) - 1)
  // is 0.1 away in L-inf (both pixels move) but 0.141 in L2; class 2's (f_2 = 10 (x_2 - 0.5) - 1.2) is 0.12
  // away in both. So FAB goes to class 1 in L-inf (0.1) and to class 2 in L2 (0.12).
  {
    NoGradGuard no_grad;
    lin->weight.copy_(from_vector(std::vector<double>{0, 0, 5, 5, 0, 10}, {3, 2}));
    lin->bias.copy_(from_vector(std::vector<double>{0, -6, -6.2}, {3}));
  }
  auto linf_distance = [](const std::vector<double>& a) { return std::max(std::abs(a[0] - 0.5), std::abs(a[1] - 0.5)); };
  auto l2_distance = [](const std::vector<double>& a) { return std::hypot(a[0] - 0.5, a[1] - 0.5); };
  AttackResult dual_inf = make_attack("fab", o)->run(*lin, x, y);
  AttackResult dual_2 = make_attack("fab-l2", o)->run(*lin, x, y);
  REQUIRE(dual_inf.fooled[0]);
  REQUIRE(dual_2.fooled[0]);
  CHECK(linf_distance(dual_inf.x_adv.to_vector<double>()) == doctest::Approx(0.1).epsilon(0.01));
  CHECK(argmax(predict(*lin, dual_inf.x_adv), 1).to_vector<int64_t>()[0] == 1);
  CHECK(l2_distance(dual_2.x_adv.to_vector<double>()) == doctest::Approx(0.12).epsilon(0.01));
  CHECK(argmax(predict(*lin, dual_2.x_adv), 1).to_vector<int64_t>()[0] == 2);
}

TEST_CASE("FAB (untargeted): inside the box and the ball, C - 1 gradients a step, deterministic, L-inf and L2") {
  Generator g(42);
  auto m = tiny_cnn(g);
  const int64_t n = 24;
  Tensor x = test_inputs(n, g), y = predicted_labels(*m, x);
  AttackOptions o;
  o.eps = 0.3, o.steps = 30, o.seed = 5;
  o.targeted = true;  // ignored, as for FAB-T: success is misclassification
  auto fab = make_attack("fab", o);
  CHECK_FALSE(fab->options().targeted);
  AttackResult r = fab->run(*m, x, y);
  check_contract(x, r, o.eps, Norm::Linf);
  CHECK(r.accuracy() <= 0.5);
  CHECK(r.gradient_samples == 30 * 9 * n);  // 10 classes: 9 logit differences per step, one restart
  const auto pred = argmax(predict(*m, r.x_adv), 1).to_vector<int64_t>(), labels = y.to_vector<int64_t>();
  for (size_t i = 0; i < size_t(n); ++i) CHECK(r.fooled[i] == (pred[i] != labels[i]));
  CHECK(bitwise_equal(make_attack("fab", o)->run(*m, x, y).x_adv, r.x_adv));
  AttackOptions l2 = o;
  l2.eps = 2.0;
  AttackResult r2 = make_attack("fab-l2", l2)->run(*m, x, y);
  check_contract(x, r2, l2.eps, Norm::L2);
  CHECK(r2.accuracy() <= 0.5);
  // A second restart starts at a random point and runs only on the samples still standing.
  AttackOptions small = o;
  small.eps = 0.03, small.restarts = 2;
  AttackResult two = make_attack("fab", small)->run(*m, x, y);
  small.restarts = 1;
  AttackResult one = make_attack("fab", small)->run(*m, x, y);
  REQUIRE(one.accuracy() > 0);
  CHECK(two.accuracy() <= one.accuracy());
  CHECK(two.gradient_samples > one.gradient_samples);
}
