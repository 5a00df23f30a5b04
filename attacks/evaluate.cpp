#include "advgrad/attacks/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace advgrad {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<int64_t> range_rows(int64_t begin, int64_t end) {
  std::vector<int64_t> r;
  for (int64_t i = begin; i < end; ++i) r.push_back(i);
  return r;
}

// Where run_attack records more than the fooled flags: per-sample results (EvalOptions::per_sample) and
// the examples that decide each sample's worst case (EvalOptions::keep_adversarial); null: not kept.
struct SampleSinks {
  std::vector<SampleResult>* results = nullptr;  // one per row of x
  Tensor* examples = nullptr;                    // x's shape
  const std::vector<bool>* decided = nullptr;    // rows an earlier attack fooled: their example stays
};

// One attack on the given rows (batched): marks in `fooled` the rows no longer classified as their label.
// Targeted attacks aim each row at next_class_targets; their own success flag means "on target", so the
// adversarial examples are classified once more to see which left their label.
AttackReport run_attack(Module& model, const AttackSpec& spec, const Tensor& x, const Tensor& labels,
                        const std::vector<int64_t>& rows, int64_t batch, int64_t num_classes,
                        std::vector<bool>& fooled, const std::function<void(const EvalProgress&)>& progress,
                        EvalProgress where, const SampleSinks& sinks) {
  auto attack = make_attack(spec.name, spec.options);
  AttackReport rep;
  rep.name = spec.name;
  rep.options = attack->options();
  const bool targeted = rep.options.targeted;
  int64_t on_target = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t b = 0; b < rows.size(); b += size_t(batch)) {
    std::vector<int64_t> chunk(rows.begin() + b, rows.begin() + std::min(rows.size(), b + size_t(batch)));
    Tensor xb = take_rows(x, chunk), yb = take_rows(labels, chunk);
    Tensor tb = targeted ? next_class_targets(yb, num_classes) : Tensor();
    AttackResult r = attack->run(model, xb, yb, tb);
    rep.forward_samples += r.forward_samples;
    rep.gradient_samples += r.gradient_samples;
    rep.max_perturbation = std::max(rep.max_perturbation, max_perturbation(r.x_adv, xb, rep.options.norm));
    std::vector<bool> left_label = r.fooled;
    Tensor adv_logits;
    if (targeted || sinks.results) {
      adv_logits = predict(model, r.x_adv);
      rep.forward_samples += int64_t(chunk.size());
    }
    if (targeted) {
      left_label = fooled_by(adv_logits, yb, Tensor(), false);
      on_target += int64_t(sum(eq(argmax(adv_logits, 1), tb)).item());
    }
    for (size_t k = 0; k < chunk.size(); ++k)
      if (left_label[k]) fooled[size_t(chunk[k])] = true;
    if (sinks.results) {
      const std::vector<int64_t> predicted = argmax(adv_logits, 1).to_vector<int64_t>();
      for (size_t k = 0; k < chunk.size(); ++k) {
        const int64_t at = int64_t(k);
        SampleResult& s = (*sinks.results)[size_t(chunk[k])];
        s.attacked = true;
        s.fooled = left_label[k];
        s.prediction = predicted[k];
        s.norm = max_perturbation(slice(r.x_adv, 0, at, at + 1), slice(xb, 0, at, at + 1), rep.options.norm);
      }
    }
    if (sinks.examples) {
      std::vector<int64_t> to, from;  // rows of x and of the batch whose example this attack decides
      for (size_t k = 0; k < chunk.size(); ++k)
        if (!(*sinks.decided)[size_t(chunk[k])]) to.push_back(chunk[k]), from.push_back(int64_t(k));
      if (!to.empty()) put_rows(*sinks.examples, to, take_rows(r.x_adv, from));
    }
    if (progress) {
      where.done += int64_t(chunk.size());
      where.robust += int64_t(std::count(left_label.begin(), left_label.end(), false));
      where.seconds = seconds_since(t0);
      progress(where);
    }
  }
  if (targeted && !rows.empty()) rep.target_success = double(on_target) / double(rows.size());
  rep.seconds = seconds_since(t0);
  return rep;
}

double accuracy_of(const std::vector<bool>& fooled, const std::vector<bool>& clean_ok) {
  int64_t ok = 0;
  for (size_t i = 0; i < fooled.size(); ++i) ok += clean_ok[i] && !fooled[i];
  return fooled.empty() ? 0.0 : double(ok) / double(fooled.size());
}

}  // namespace

EvalReport evaluate(Module& model, const Tensor& x, const Tensor& labels, const std::vector<AttackSpec>& attacks,
                    const EvalOptions& options) {
  check_attack_inputs(x, labels, 0.0, 0, "evaluate");
  if (options.batch_size < 1) throw ValueError("evaluate: batch size must be >= 1");
  EvalModeGuard eval_mode(model);
  auto t0 = std::chrono::steady_clock::now();
  EvalReport rep;
  rep.n = x.size(0);
  std::vector<bool> clean_ok(size_t(rep.n), false);
  if (options.per_sample) rep.clean_predictions.assign(size_t(rep.n), -1);
  int64_t num_classes = 0;  // from the model's output
  for (int64_t b = 0; b < rep.n; b += options.batch_size) {
    auto rows = range_rows(b, std::min(rep.n, b + options.batch_size));
    Tensor logits = predict(model, take_rows(x, rows));
    num_classes = logits.size(1);
    auto fooled = fooled_by(logits, take_rows(labels, rows), Tensor(), false);
    for (size_t k = 0; k < rows.size(); ++k) clean_ok[size_t(rows[k])] = !fooled[k];
    if (options.per_sample) {
      const std::vector<int64_t> predicted = argmax(logits, 1).to_vector<int64_t>();
      for (size_t k = 0; k < rows.size(); ++k) rep.clean_predictions[size_t(rows[k])] = predicted[k];
    }
  }
  rep.forward_samples = rep.n;
  rep.clean_accuracy = accuracy_of(std::vector<bool>(size_t(rep.n), false), clean_ok);

  std::vector<bool> worst(size_t(rep.n), false);  // fooled by some attack
  if (options.keep_adversarial) rep.adversarial = x.clone();  // the clean input until an attack decides
  for (const auto& spec : attacks) {
    EvalProgress where;
    where.attack = spec.name;
    where.stage = int(rep.attacks.size()) + 1;
    where.stages = int(attacks.size());
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < rep.n; ++i)
      if (clean_ok[size_t(i)] && !(options.ensemble && worst[size_t(i)])) rows.push_back(i);
    std::vector<bool> fooled(size_t(rep.n), false);
    where.total = int64_t(rows.size());
    std::vector<SampleResult> samples;
    SampleSinks sinks;
    if (options.per_sample) {
      // Not attacked: wrong on clean input (its clean prediction stands), or in ensemble mode fooled by
      // an earlier stage (that stage's result stands).
      samples.resize(size_t(rep.n));
      for (size_t i = 0; i < samples.size(); ++i) {
        if (options.ensemble && worst[i]) {
          samples[i] = rep.attacks.back().samples[i];
          samples[i].attacked = false;
        } else {
          samples[i].prediction = rep.clean_predictions[i];
        }
      }
      sinks.results = &samples;
    }
    if (options.keep_adversarial) sinks.examples = &rep.adversarial, sinks.decided = &worst;
    AttackReport ar = run_attack(model, spec, x, labels, rows, options.batch_size, num_classes, fooled,
                                 options.progress, where, sinks);
    for (size_t i = 0; i < worst.size(); ++i) worst[i] = worst[i] || fooled[i];
    ar.accuracy = accuracy_of(options.ensemble ? worst : fooled, clean_ok);
    ar.samples = std::move(samples);
    rep.forward_samples += ar.forward_samples;
    rep.attacks.push_back(std::move(ar));
  }
  rep.robust_accuracy = accuracy_of(worst, clean_ok);
  rep.robust.resize(size_t(rep.n));
  for (size_t i = 0; i < worst.size(); ++i) rep.robust[i] = clean_ok[i] && !worst[i];

  const bool comparable = std::all_of(rep.attacks.begin(), rep.attacks.end(), [](const AttackReport& a) {
    return a.options.norm == Norm::Linf && !a.options.targeted;
  });
  if (options.sanity_checks && !attacks.empty() && comparable) {
    // Symptoms of gradient masking (Athalye et al. 2018; Carlini et al. 2019), on a subset.
    const auto t_sanity = std::chrono::steady_clock::now();
    const AttackOptions& base = attacks.front().options;
    const int64_t m = std::min<int64_t>(rep.n, 200);
    Tensor xs = take_rows(x, range_rows(0, m)), ys = take_rows(labels, range_rows(0, m));
    auto acc = [&](const std::string& name, double eps, int steps) {
      AttackOptions o = base;
      o.eps = eps, o.steps = steps, o.step_size = 0, o.restarts = 1, o.targeted = false;
      ++rep.sanity_runs;
      return make_attack(name, o)->run(model, xs, ys).accuracy();
    };
    const double eps = base.eps;
    double fgsm = acc("fgsm", eps, 1), pgd = acc("pgd", eps, 20), pgd_half = acc("pgd", eps / 2, 20),
           pgd_double = acc("pgd", std::min(2 * eps, 1.0), 20), pgd_large = acc("pgd", 0.5, 50);
    if (pgd > fgsm + 0.02)
      rep.warnings.push_back("PGD-20 is weaker than FGSM (" + std::to_string(pgd) + " vs " + std::to_string(fgsm) +
                             "): gradients may be masked");
    if (pgd_half + 0.02 < pgd || pgd + 0.02 < pgd_double)
      rep.warnings.push_back("accuracy rises with eps (eps/2: " + std::to_string(pgd_half) + ", eps: " +
                             std::to_string(pgd) + ", 2eps: " + std::to_string(pgd_double) + "): gradients may be masked");
    if (pgd_large > 0.1)
      rep.warnings.push_back("accuracy under PGD-50 at eps 0.5 is " + std::to_string(pgd_large) +
                             ", not near 0: the attack is not working or gradients are masked");
    rep.sanity_samples = m;
    rep.sanity_seconds = seconds_since(t_sanity);
  }
  rep.seconds = seconds_since(t0);
  return rep;
}

Tensor next_class_targets(const Tensor& labels, int64_t num_classes) {
  if (labels.dtype() != DType::I64) throw TypeError("next_class_targets: labels must be int64");
  if (num_classes < 1) throw ValueError("next_class_targets: num_classes must be >= 1, got " + std::to_string(num_classes));
  NoGradGuard no_grad;
  Tensor last = full({}, double(num_classes - 1), DType::I64, labels.device());
  return where(eq(labels, last), zeros_like(labels), labels + 1.0);
}

std::vector<AttackSpec> autoattack_preset(double eps, uint64_t seed, bool fast, double effort) {
  if (!(effort > 0)) throw ValueError("autoattack: effort must be > 0");
  AttackOptions o;
  o.eps = eps, o.seed = seed, o.norm = Norm::Linf, o.restarts = 1;
  const int steps = std::max(1, int(std::lround(100 * effort)));
  AttackOptions ce = o, t = o, fab = o, sq = o;
  ce.steps = t.steps = fab.steps = steps;
  t.target_classes = fast ? 3 : 9;
  fab.target_classes = 9;
  sq.queries = std::max<int64_t>(1, std::llround(5000 * effort));
  sq.square_p_init = 0.8, sq.square_rescale_schedule = false;
  if (fast) return {{"apgd-ce", ce}, {"apgd-t", t}};
  return {{"apgd-ce", ce}, {"apgd-t", t}, {"fab-t", fab}, {"square", sq}};
}

std::vector<AttackSpec> ensemble_preset(double eps, uint64_t seed, double effort) {
  return autoattack_preset(eps, seed, false, effort);
}

}  // namespace advgrad
