// Robustness evaluation: clean accuracy, accuracy under each attack, and the per-sample worst case over
// a list of attacks, with time and model evaluations spent, plus gradient-masking sanity warnings.
#pragma once
#include <string>
#include <vector>

#include "attacks/attack.h"

namespace advgrad {

struct AttackSpec {
  std::string name;  // as make_attack
  AttackOptions options;
};

struct AttackReport {
  std::string name;
  double accuracy = 0;       // independent mode: under this attack alone; ensemble mode: after it (cumulative)
  double seconds = 0;
  int64_t forward_samples = 0, gradient_samples = 0;
  double max_perturbation = 0;  // largest ||x_adv - x|| found, in the attack's norm
};

struct EvalReport {
  int64_t n = 0;
  double clean_accuracy = 0;
  double robust_accuracy = 0;  // per-sample worst case over all attacks
  std::vector<AttackReport> attacks;
  double seconds = 0;
  int64_t forward_samples = 0;
  std::vector<std::string> warnings;  // gradient-masking symptoms
  std::vector<bool> robust;           // per sample: correct on clean input and under every attack
};

struct EvalOptions {
  int64_t batch_size = 256;
  // Ensemble mode attacks only the samples every earlier attack failed on (AutoAttack's way); otherwise
  // each attack sees every clean-correct sample and reports its own accuracy.
  bool ensemble = false;
  bool sanity_checks = false;  // extra PGD/FGSM runs on up to 200 samples to look for gradient masking
};

// x float [N, ...] in [0,1], labels int64 [N]. Deterministic for fixed options and seeds.
EvalReport evaluate(Module& model, const Tensor& x, const Tensor& labels, const std::vector<AttackSpec>& attacks,
                    const EvalOptions& options = {});

// AutoAttack-like standard ensemble for L-inf: APGD-CE (100 steps), APGD-T (100 steps, 9 targets), Square
// (5000 queries). Steps and queries scale with `effort` (1.0 = those numbers).
std::vector<AttackSpec> ensemble_preset(double eps, uint64_t seed, double effort = 1.0);

}  // namespace advgrad
