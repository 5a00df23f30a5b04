// advgrad eval --model NAME --weights FILE --attack LIST --eps E [...]
// Clean and robust accuracy of a zoo model with saved weights on a dataset split, under one attack, a
// comma-separated list of attacks (each on every clean-correct sample; robust = the per-sample worst case)
// or the AutoAttack-like ensemble preset (each attack on the samples all earlier ones failed on).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attacks/evaluate.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace advgrad::cli {
namespace {

struct EvalArgs {
  ModelDataArgs md;
  AttackArgs attack;
  int64_t batch = 256;
  bool no_sanity_checks = false;
  bool json = false;
};

// The evaluation plus, for --targeted, each attack's success rate (share of the attacked samples that
// ended up classified as their target; empty for attacks that pick their own targets).
struct Outcome {
  EvalReport report;
  std::vector<std::optional<double>> target_success;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<int64_t> predictions(Module& model, const Tensor& x) {
  return argmax(predict(model, x), 1).to_vector<int64_t>();
}

// evaluate() for targeted attacks, which need target labels: every clean-correct sample is pushed toward
// (label + 1) mod classes. An attack's accuracy is the share of all samples still classified as their
// label (a miss of the target into a third class also counts as an error), so it means what it means for
// untargeted attacks; robust accuracy is the per-sample worst case.
Outcome evaluate_targeted(Module& model, const Tensor& x, const Tensor& y, const std::vector<AttackSpec>& specs,
                          int64_t batch, int64_t num_classes) {
  const auto t0 = std::chrono::steady_clock::now();
  Outcome out;
  EvalReport& rep = out.report;
  rep.n = y.size(0);
  const std::vector<int64_t> labels = y.to_vector<int64_t>();
  std::vector<int64_t> clean_pred;
  for (int64_t b = 0; b < rep.n; b += batch) {
    std::vector<int64_t> rows;
    for (int64_t i = b; i < std::min(rep.n, b + batch); ++i) rows.push_back(i);
    auto p = predictions(model, take_rows(x, rows));
    clean_pred.insert(clean_pred.end(), p.begin(), p.end());
  }
  rep.forward_samples = rep.n;
  std::vector<int64_t> correct_rows;
  for (int64_t i = 0; i < rep.n; ++i)
    if (clean_pred[size_t(i)] == labels[size_t(i)]) correct_rows.push_back(i);
  rep.clean_accuracy = rep.n ? double(correct_rows.size()) / double(rep.n) : 0.0;

  std::vector<bool> robust(size_t(rep.n), false);
  for (int64_t i : correct_rows) robust[size_t(i)] = true;
  for (const AttackSpec& spec : specs) {
    const auto t_attack = std::chrono::steady_clock::now();
    auto attack = make_attack(spec.name, spec.options);
    AttackReport ar;
    ar.name = spec.name;
    int64_t still_correct = 0, on_target = 0;
    for (size_t b = 0; b < correct_rows.size(); b += size_t(batch)) {
      std::vector<int64_t> chunk(correct_rows.begin() + b,
                                 correct_rows.begin() + std::min(correct_rows.size(), b + size_t(batch)));
      Tensor xb = take_rows(x, chunk), yb = take_rows(y, chunk);
      Tensor tb = next_class_targets(yb, num_classes);
      AttackResult r = attack->run(model, xb, yb, tb);
      const auto adv_pred = predictions(model, r.x_adv);
      ar.forward_samples += r.forward_samples + int64_t(chunk.size());
      ar.gradient_samples += r.gradient_samples;
      ar.max_perturbation = std::max(ar.max_perturbation, max_perturbation(r.x_adv, xb, spec.options.norm));
      const auto targets = tb.to_vector<int64_t>();
      for (size_t k = 0; k < chunk.size(); ++k) {
        const bool ok = adv_pred[k] == labels[size_t(chunk[k])];
        still_correct += ok;
        on_target += adv_pred[k] == targets[k];
        if (!ok) robust[size_t(chunk[k])] = false;
      }
    }
    ar.accuracy = rep.n ? double(still_correct) / double(rep.n) : 0.0;
    ar.seconds = seconds_since(t_attack);
    rep.forward_samples += ar.forward_samples;
    rep.attacks.push_back(ar);
    if (attack->options().targeted && !correct_rows.empty())
      out.target_success.push_back(double(on_target) / double(correct_rows.size()));
    else
      out.target_success.push_back(std::nullopt);
  }
  rep.robust = robust;
  rep.robust_accuracy = rep.n ? double(std::count(robust.begin(), robust.end(), true)) / double(rep.n) : 0.0;
  rep.seconds = seconds_since(t0);
  return out;
}

std::string mode_of(const EvalArgs& args) { return is_ensemble(args.attack) ? "ensemble" : "independent"; }

void print_json(const EvalArgs& args, const Samples& s, const std::vector<AttackSpec>& specs, const Outcome& out) {
  const EvalReport& rep = out.report;
  nlohmann::ordered_json j;
  j["model"] = args.md.model;
  j["weights"] = args.md.weights;
  j["data"] = s.data.source;
  j["kind"] = s.data.kind;
  j["split"] = args.md.split;
  j["n"] = rep.n;
  j["eps"] = args.attack.eps;
  j["targeted"] = args.attack.targeted;
  j["mode"] = mode_of(args);
  j["clean_acc"] = rep.clean_accuracy;
  j["robust_acc"] = rep.robust_accuracy;
  j["seconds"] = rep.seconds;
  j["forward_evals"] = rep.forward_samples;
  nlohmann::ordered_json attacks = nlohmann::ordered_json::array();
  for (size_t i = 0; i < rep.attacks.size(); ++i) {
    const AttackReport& a = rep.attacks[i];
    const AttackOptions& o = specs[i].options;
    nlohmann::ordered_json e;
    e["name"] = a.name;
    e["acc"] = a.accuracy;
    e["seconds"] = a.seconds;
    e["forward_evals"] = a.forward_samples;
    e["gradient_evals"] = a.gradient_samples;
    e["norm"] = norm_name(o.norm);
    e["max_perturbation"] = a.max_perturbation;
    e["steps"] = o.steps;
    e["restarts"] = o.restarts;
    if (i < out.target_success.size() && out.target_success[i]) e["target_success"] = *out.target_success[i];
    attacks.push_back(e);
  }
  j["attacks"] = attacks;
  j["warnings"] = rep.warnings;
  std::cout << j.dump() << "\n";
}

void print_table(const EvalArgs& args, const Samples& s, const std::vector<AttackSpec>& specs, const Outcome& out) {
  const EvalReport& rep = out.report;
  std::printf("model   %s (weights %s)\n", args.md.model.c_str(), args.md.weights.c_str());
  std::printf("data    %s %s, %lld of %lld samples (%s)\n", s.data.kind.c_str(), args.md.split.c_str(),
              static_cast<long long>(rep.n), static_cast<long long>(s.data.size()), s.data.source.c_str());
  std::printf("attack  %s, eps %g, %s%s\n\n", args.attack.attack.c_str(), args.attack.eps,
              args.attack.targeted ? "targeted at (label + 1) mod classes" : "untargeted",
              is_ensemble(args.attack) ? ", ensemble mode (accuracy after each attack)" : "");
  const bool targeted = std::any_of(out.target_success.begin(), out.target_success.end(),
                                    [](const auto& t) { return t.has_value(); });
  std::printf("%-10s %9s %9s %14s %14s %14s%s\n", "attack", "accuracy", "seconds", "forward evals", "gradient evals",
              "max ||d||", targeted ? "  on target" : "");
  std::printf("%-10s %9s %9s %14lld\n", "clean", fixed(rep.clean_accuracy, 4).c_str(), "",
              static_cast<long long>(rep.n));
  for (size_t i = 0; i < rep.attacks.size(); ++i) {
    const AttackReport& a = rep.attacks[i];
    char size[48];
    std::snprintf(size, sizeof size, "%.4f %-4s", a.max_perturbation, norm_name(specs[i].options.norm));
    std::printf("%-10s %9s %9s %14lld %14lld %14s", a.name.c_str(), fixed(a.accuracy, 4).c_str(),
                fixed(a.seconds, 2).c_str(), static_cast<long long>(a.forward_samples),
                static_cast<long long>(a.gradient_samples), size);
    if (targeted) std::printf("  %9s", out.target_success[i] ? fixed(*out.target_success[i], 4).c_str() : "-");
    std::printf("\n");
  }
  std::printf("\nclean accuracy   %s\n", fixed(rep.clean_accuracy, 4).c_str());
  std::printf("robust accuracy  %s  (per-sample worst case over the attacks)\n", fixed(rep.robust_accuracy, 4).c_str());
  std::printf("time             %s s, %lld forward evaluations\n", fixed(rep.seconds, 2).c_str(),
              static_cast<long long>(rep.forward_samples));
  for (const auto& w : rep.warnings) std::printf("warning: %s\n", w.c_str());
}

void run(const EvalArgs& args, const CLI::App& cmd) {
  const std::vector<AttackSpec> specs = attack_specs(args.attack, cmd);  // bad attack options fail first
  apply_threads(args.attack);
  const ModelInfo& info = model_info(args.md.model);
  std::shared_ptr<Module> model = load_model(args.md.model, args.md.weights, args.md.allow_non_finite);
  const Samples s = load_samples(args.md, info);

  Outcome out;
  if (args.attack.targeted) {
    out = evaluate_targeted(*model, s.x, s.y, specs, args.batch, info.num_classes);
  } else {
    EvalOptions eo;
    eo.batch_size = args.batch;
    eo.ensemble = is_ensemble(args.attack);
    // The checks run L-inf PGD/FGSM at the first attack's eps, which means nothing for an L2 budget.
    eo.sanity_checks = !args.no_sanity_checks &&
                       std::all_of(specs.begin(), specs.end(), [](const AttackSpec& a) { return a.options.norm == Norm::Linf; });
    out.report = evaluate(*model, s.x, s.y, specs, eo);
    out.target_success.assign(out.report.attacks.size(), std::nullopt);
  }
  if (args.json)
    print_json(args, s, specs, out);
  else
    print_table(args, s, specs, out);
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Clean and robust accuracy of a model under attacks");
  add_model_data_options(*cmd, args->md, "Evaluate the first N samples only; 0: the whole split");
  cmd->add_option("--batch", args->batch, "Samples per attack batch")->check(integer_in(1, AttackLimits::max_batch))->capture_default_str();
  add_attack_options(*cmd, args->attack,
                     "One attack, a comma-separated list (robust = per-sample worst case), or ensemble "
                     "(APGD-CE, APGD-T, Square)",
                     /*with_ensemble=*/true);
  cmd->add_flag("--no-sanity-checks", args->no_sanity_checks,
                "Skip the gradient-masking checks (extra FGSM/PGD runs on up to 200 samples; untargeted L-inf only)");
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
  cmd->callback([args, cmd] { run(*args, *cmd); });
}

}  // namespace advgrad::cli
