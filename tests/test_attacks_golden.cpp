// PGD, FAB-T and FAB against PyTorch: the same model, batch and settings as PyTorch's reference loops give the
// same adversarial examples (tests/golden/make_attack_fixtures.py, make_fab_fixtures.py).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "advgrad/attacks/attack.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"

using namespace advgrad;

TEST_CASE("PGD without random start matches PyTorch's reference loop") {
  SafetensorsFile f = load_safetensors(std::string(ADVGRAD_TEST_DATA) + "/golden/attack_pgd_small_cnn.safetensors");
  Generator g(0);
  auto model = make_model("small_cnn", g);
  StateDict weights;
  for (const auto& [key, t] : f.tensors)
    if (key.rfind("param.", 0) == 0) weights[key.substr(6)] = t;
  model->load_state_dict(weights);
  Tensor x = f.tensors.at("x"), y = f.tensors.at("y"), expected = f.tensors.at("x_adv");

  AttackOptions o;
  o.eps = std::stod(f.metadata.at("eps"));
  o.step_size = std::stod(f.metadata.at("step"));
  o.steps = std::stoi(f.metadata.at("steps"));
  o.random_start = false;
  AttackResult r = make_attack("pgd", o)->run(*model, x, y);

  // Gradients are summed here and averaged in PyTorch (the sign is the same), and float sums run in a
  // different order, so a pixel whose gradient is within rounding of 0 may step the other way; sign(0)
  // is 0 on both sides (such a pixel does not move). The issue asks for >= 99% of pixels within 1e-6.
  auto got = r.x_adv.to_vector<double>(), want = expected.to_vector<double>();
  int64_t equal = 0;
  for (size_t i = 0; i < got.size(); ++i) equal += std::fabs(got[i] - want[i]) <= 1e-6;
  double fraction = double(equal) / double(got.size());
  MESSAGE("pixels equal to 1e-6: ", fraction);
  CHECK(fraction >= 0.99);
  CHECK(r.accuracy() == doctest::Approx(std::stod(f.metadata.at("robust_acc"))));
}

namespace {

// tests/golden/make_fab_fixtures.py: the model and batch of the PGD fixture above, FAB-T or FAB in PyTorch
// with its own (sort-based) hyperplane projection. Robust accuracy, every per-sample verdict and, where
// both found a point, its distance agree (the iterates are rounded to float32 on both sides; gradients
// are summed in another order).
void check_fab_against_pytorch(const std::string& attack, const std::string& fixture) {
  const std::string dir = std::string(ADVGRAD_TEST_DATA) + "/golden/";
  SafetensorsFile base = load_safetensors(dir + "attack_pgd_small_cnn.safetensors");
  SafetensorsFile f = load_safetensors(dir + fixture);
  Generator g(0);
  auto model = make_model("small_cnn", g);
  StateDict weights;
  for (const auto& [key, t] : base.tensors)
    if (key.rfind("param.", 0) == 0) weights[key.substr(6)] = t;
  model->load_state_dict(weights);
  Tensor x = base.tensors.at("x"), y = base.tensors.at("y");

  AttackOptions o;
  o.eps = std::stod(f.metadata.at("eps"));
  o.steps = std::stoi(f.metadata.at("steps"));
  if (f.metadata.count("targets")) o.target_classes = std::stoi(f.metadata.at("targets"));
  AttackResult r = make_attack(attack, o)->run(*model, x, y);
  const double torch_robust = std::stod(f.metadata.at("robust_acc"));
  MESSAGE(attack, " robust accuracy: advgrad ", r.accuracy(), ", PyTorch ", torch_robust);
  CHECK(r.accuracy() == doctest::Approx(torch_robust));

  const auto fooled = f.tensors.at("fooled").to_vector<int64_t>();
  const auto distance = f.tensors.at("distance").to_vector<double>();
  const auto got = r.x_adv.to_vector<double>(), xv = x.to_vector<double>();
  const size_t D = xv.size() / fooled.size();
  int64_t same = 0;
  double worst = 0;
  for (size_t i = 0; i < fooled.size(); ++i) {
    same += bool(fooled[i]) == bool(r.fooled[i]);
    if (!fooled[i] || !r.fooled[i]) continue;
    double d = 0;
    for (size_t j = 0; j < D; ++j) d = std::max(d, std::fabs(got[i * D + j] - xv[i * D + j]));
    worst = std::max(worst, std::fabs(d - distance[i]));
  }
  MESSAGE("same verdict on ", same, " of ", fooled.size(), " samples; largest distance difference ", worst);
  CHECK(same == int64_t(fooled.size()));
  CHECK(worst <= 1e-5);
}

}  // namespace

TEST_CASE("FAB-T matches a PyTorch FAB-T on the same model and batch") {
  check_fab_against_pytorch("fab-t", "attack_fab_small_cnn.safetensors");
}

TEST_CASE("FAB (untargeted, the closest boundary each step) matches a PyTorch FAB on the same model and batch") {
  check_fab_against_pytorch("fab", "attack_fab_untargeted_small_cnn.safetensors");
}
