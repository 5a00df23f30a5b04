// Robustness evaluation: clean accuracy, accuracy under each attack, and the per-sample worst case over
// a list of attacks, with time and model evaluations spent, plus gradient-masking sanity warnings.
//
// Targeted attacks (an AttackSpec whose options ask for it) are part of the same policy: evaluate() aims
// every attacked sample at the next class, (label + 1) mod classes, and scores the attack like an
// untargeted one -- a sample counts as robust only while it is still classified as its label, so a miss
// of the target into a third class is an error too -- and reports, besides, the share of attacked samples
// that reached their target. Attacks that choose their own targets (apgd-t, fab-t) are scored as untargeted.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "advgrad/attacks/attack.h"

namespace advgrad {

struct AttackSpec {
  std::string name;  // as make_attack
  AttackOptions options;
};

// One sample under one attack, kept when EvalOptions::per_sample asks for it. In ensemble mode the entry
// is cumulative: a sample fooled by an earlier stage is not attacked again and keeps that stage's
// `fooled`, `prediction` and `norm`, so each stage's entries give its (cumulative) accuracy and the last
// stage's the robust accuracy.
struct SampleResult {
  bool attacked = false;    // this attack ran on it (clean-correct and, in ensemble mode, still standing)
  bool fooled = false;      // its example is no longer classified as its label (never when wrong on clean input)
  int64_t prediction = -1;  // the class of its adversarial example (the clean prediction when it has none)
  double norm = 0;          // ||x_adv - x|| of that example in the attack's norm (0 when it has none)
};

struct AttackReport {
  std::string name;
  AttackOptions options;     // as the attack ran: make_attack's norm and the attack's own defaults filled in
  double accuracy = 0;       // independent mode: under this attack alone; ensemble mode: after it (cumulative)
  double seconds = 0;
  int64_t forward_samples = 0, gradient_samples = 0;
  double max_perturbation = 0;  // largest ||x_adv - x|| found, in the attack's norm
  // Targeted attacks: the share of the attacked samples classified as their target afterwards (none when
  // the attack is untargeted, picks its own targets, or had no sample to attack).
  std::optional<double> target_success;
  // EvalOptions::per_sample only: one entry per sample of x (empty otherwise).
  std::vector<SampleResult> samples;
};

struct EvalReport {
  int64_t n = 0;
  double clean_accuracy = 0;
  double robust_accuracy = 0;  // per-sample worst case over all attacks
  std::vector<AttackReport> attacks;
  double seconds = 0;
  int64_t forward_samples = 0;
  std::vector<std::string> warnings;  // gradient-masking symptoms
  // The gradient-masking checks, when they ran: attack runs, samples each, seconds in all.
  int sanity_runs = 0;
  int64_t sanity_samples = 0;
  double sanity_seconds = 0;
  std::vector<bool> robust;           // per sample: correct on clean input and under every attack
  // EvalOptions::per_sample only: the clean prediction of every sample (empty otherwise).
  std::vector<int64_t> clean_predictions;
  // EvalOptions::keep_adversarial only (undefined otherwise): x's shape and dtype, per sample the example
  // that decides its worst case: that of the first attack (in list order) that fooled it, else that of
  // the last attack that ran on it, else (wrong on clean input, or no attack) the clean input itself. So
  // the accuracy on these examples is robust_accuracy.
  Tensor adversarial;
};

// Where an evaluation stands, after each batch of an attack: `attack` (its name) is stage `stage` of
// `stages`, `done` of its `total` samples are attacked, of which `robust` are still classified correctly.
struct EvalProgress {
  std::string attack;
  int stage = 0, stages = 0;  // 1-based
  int64_t done = 0, total = 0, robust = 0;
  double seconds = 0;  // since this attack started
};

struct EvalOptions {
  int64_t batch_size = 256;
  // Ensemble mode attacks only the samples every earlier attack failed on (AutoAttack's way); otherwise
  // each attack sees every clean-correct sample and reports its own accuracy.
  bool ensemble = false;
  // Extra untargeted L-inf PGD/FGSM runs on up to 200 samples at the first attack's eps, to look for
  // gradient masking; skipped when an attack is targeted or not L-inf (those runs would not compare).
  bool sanity_checks = false;
  // Called after every batch of every attack (never changes the results); empty: nothing is reported.
  std::function<void(const EvalProgress&)> progress;
  // Per-sample results (AttackReport::samples, EvalReport::clean_predictions): a few numbers per sample
  // and attack, and one more classification of each attacked batch when the attack does not need it anyway.
  bool per_sample = false;
  // The final adversarial examples (EvalReport::adversarial): one more copy of x.
  bool keep_adversarial = false;
};

// x float [N, ...] in [0,1], labels int64 [N]. Deterministic for fixed options and seeds.
EvalReport evaluate(Module& model, const Tensor& x, const Tensor& labels, const std::vector<AttackSpec>& attacks,
                    const EvalOptions& options = {});

// The targets of a targeted evaluation: (label + 1) mod num_classes for int64 labels [N].
Tensor next_class_targets(const Tensor& labels, int64_t num_classes);

// AutoAttack's standard L-inf set (Croce & Hein 2020, version 'standard' of the authors' code), run as an
// ensemble on the survivors: APGD-CE (100 steps, 1 restart), APGD-T (100 steps, 9 target classes, 1
// restart), FAB-T (100 steps, 9 target classes, 1 restart), Square (5000 queries, p_init 0.8, the
// standard p-schedule). `fast` is the cheaper preset: APGD-CE and APGD-T only, APGD-T with 3 target
// classes (FAB-T and Square dropped). Steps and queries scale with `effort` (1.0 = those numbers).
std::vector<AttackSpec> autoattack_preset(double eps, uint64_t seed, bool fast = false, double effort = 1.0);
// The old name: autoattack_preset(eps, seed, false, effort).
std::vector<AttackSpec> ensemble_preset(double eps, uint64_t seed, double effort = 1.0);

}  // namespace advgrad
