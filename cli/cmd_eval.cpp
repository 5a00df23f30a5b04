// advgrad eval --model NAME --weights FILE | --model FILE.onnx [--weights FILE] --attack LIST --eps E [...]
// Clean and robust accuracy of a zoo model with saved weights, or of an ONNX classifier, on a dataset split, under one attack, a
// comma-separated list of attacks (each on every clean-correct sample; robust = the per-sample worst case)
// or the AutoAttack-like ensemble preset (each attack on the samples all earlier ones failed on). The
// policies (targets of --targeted, how results combine, when sanity checks apply) are evaluate()'s.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/cli/progress.h"
#include "advgrad/core/cpu_features.h"

namespace advgrad::cli {
namespace {

struct EvalArgs {
  ModelDataArgs md;
  AttackArgs attack;
  int64_t batch = 256;
  bool sanity_checks = false;     // --sanity-checks: opt-in (they cost several PGD runs)
  bool no_sanity_checks = false;  // the old opt-out, kept: the checks are off by default now
  bool json = false;
  bool quiet = false;
};

std::string mode_of(const EvalArgs& args) { return is_ensemble(args.attack) ? "ensemble" : "independent"; }

// The gradient-masking checks in one line: not asked for, not applicable, or their verdict and cost.
std::string sanity_verdict(const EvalArgs& args, const EvalReport& rep) {
  if (!args.sanity_checks) return "not run (--sanity-checks)";
  if (rep.sanity_runs == 0) return "not run (they compare untargeted L-inf attacks only)";
  const std::string cost = std::to_string(rep.sanity_runs) + " runs on " + std::to_string(rep.sanity_samples) +
                           " samples, " + fixed(rep.sanity_seconds, 1) + " s";
  return (rep.warnings.empty() ? "passed (" : std::to_string(rep.warnings.size()) + " warning(s) below (") + cost + ")";
}

// An attack's budget as named numbers, for --json: FGSM-style attacks take one step (no "steps"), Square
// spends queries (no steps), every other attack its steps; all of them restarts.
std::vector<std::pair<std::string, int64_t>> attack_budget(const std::string& name, const AttackOptions& o) {
  std::vector<std::pair<std::string, int64_t>> b;
  if (name == "square")
    b.emplace_back("queries", o.queries);
  else if (name != "fgsm" && name != "fgsm-rs")
    b.emplace_back("steps", o.steps);
  b.emplace_back("restarts", o.restarts);
  return b;
}

void print_json(const EvalArgs& args, const Samples& s, const EvalReport& rep) {
  nlohmann::ordered_json j;
  j["model"] = args.md.model;
  j["weights"] = args.md.weights;  // "" for an ONNX model with its own weights
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
  j["cpu_path"] = advgrad::cpu_path_name(advgrad::cpu_path());  // the cpu kernels that ran (core/cpu_features.h)
  nlohmann::ordered_json attacks = nlohmann::ordered_json::array();
  for (size_t i = 0; i < rep.attacks.size(); ++i) {
    const AttackReport& a = rep.attacks[i];
    const AttackOptions& o = a.options;  // as it ran
    nlohmann::ordered_json e;
    e["name"] = a.name;
    e["acc"] = a.accuracy;
    e["seconds"] = a.seconds;
    e["forward_evals"] = a.forward_samples;
    e["gradient_evals"] = a.gradient_samples;
    e["norm"] = norm_name(o.norm);
    e["max_perturbation"] = a.max_perturbation;
    // The budget it really ran with: steps only for attacks that iterate, queries only for Square.
    for (const auto& [key, value] : attack_budget(a.name, o)) e[key] = value;
    if (a.target_success) e["target_success"] = *a.target_success;
    attacks.push_back(e);
  }
  j["attacks"] = attacks;
  j["warnings"] = rep.warnings;
  j["sanity_checks"] = sanity_verdict(args, rep);
  std::cout << j.dump() << "\n";
}

void print_table(const EvalArgs& args, const Samples& s, const EvalReport& rep) {
  std::printf("model   %s (weights %s)\n", args.md.model.c_str(),
              args.md.weights.empty() ? "in the file" : args.md.weights.c_str());
  std::printf("data    %s %s, %lld of %lld samples (%s)\n", s.data.kind.c_str(), args.md.split.c_str(),
              static_cast<long long>(rep.n), static_cast<long long>(s.data.size()), s.data.source.c_str());
  std::printf("attack  %s, eps %g, %s%s\n\n", args.attack.attack.c_str(), args.attack.eps,
              args.attack.targeted ? "targeted at (label + 1) mod classes" : "untargeted",
              is_ensemble(args.attack) ? ", ensemble mode (accuracy after each attack)" : "");
  const bool targeted = std::any_of(rep.attacks.begin(), rep.attacks.end(),
                                    [](const AttackReport& a) { return a.target_success.has_value(); });
  std::printf("%-10s %9s %9s %14s %14s %14s%s\n", "attack", "accuracy", "seconds", "forward evals", "gradient evals",
              "max ||d||", targeted ? "  on target" : "");
  std::printf("%-10s %9s %9s %14lld\n", "clean", fixed(rep.clean_accuracy, 4).c_str(), "",
              static_cast<long long>(rep.n));
  for (size_t i = 0; i < rep.attacks.size(); ++i) {
    const AttackReport& a = rep.attacks[i];
    char size[48];
    std::snprintf(size, sizeof size, "%.4f %-4s", a.max_perturbation, norm_name(a.options.norm));
    std::printf("%-10s %9s %9s %14lld %14lld %14s", a.name.c_str(), fixed(a.accuracy, 4).c_str(),
                fixed(a.seconds, 2).c_str(), static_cast<long long>(a.forward_samples),
                static_cast<long long>(a.gradient_samples), size);
    if (targeted) std::printf("  %9s", a.target_success ? fixed(*a.target_success, 4).c_str() : "-");
    std::printf("\n");
  }
  std::printf("\nclean accuracy   %s\n", fixed(rep.clean_accuracy, 4).c_str());
  std::printf("robust accuracy  %s  (per-sample worst case over the attacks)\n", fixed(rep.robust_accuracy, 4).c_str());
  std::printf("time             %s s, %lld forward evaluations\n", fixed(rep.seconds, 2).c_str(),
              static_cast<long long>(rep.forward_samples));
  std::printf("gradient-masking checks: %s\n", sanity_verdict(args, rep).c_str());
  for (const auto& w : rep.warnings) std::printf("warning: %s\n", w.c_str());
}

void run(const EvalArgs& args, const CLI::App& cmd) {
  const std::vector<AttackSpec> specs = attack_specs(args.attack, cmd);  // bad attack options fail first
  apply_threads(args.attack);
  LoadedModel model = load_model(args.md);
  const Samples s = load_samples(args.md, model);

  EvalOptions eo;
  eo.batch_size = args.batch;
  eo.ensemble = is_ensemble(args.attack);
  eo.sanity_checks = args.sanity_checks && !args.no_sanity_checks;  // evaluate() skips them where they would not compare
  // Progress on stderr per attack (stage k/N of a preset): samples attacked, robust so far, rate, ETA.
  Progress progress(args.quiet);
  std::string current;
  eo.progress = [&](const EvalProgress& p) {
    const std::string label = p.attack + " (" + std::to_string(p.stage) + "/" + std::to_string(p.stages) + ")";
    if (label != current) progress.finish(), current = label;
    const double rate = p.seconds > 0 ? double(p.done) / p.seconds : 0;
    progress.update(p.done, p.total, rate, label, "samples",
                    "robust " + std::to_string(p.robust) + " of " + std::to_string(p.done));
  };
  const EvalReport report = evaluate(*model.module, s.x, s.y, specs, eo);
  progress.finish();
  std::fflush(stderr);  // the progress lines come before the results
  if (args.json)
    print_json(args, s, report);
  else
    print_table(args, s, report);
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Clean and robust accuracy of a model under attacks");
  add_model_data_options(*cmd, args->md, "Evaluate the first N samples only; 0: the whole split");
  cmd->add_option("--batch", args->batch, "Samples per attack batch")->check(integer_in(1, AttackLimits::max_batch))->capture_default_str();
  add_attack_options(*cmd, args->attack,
                     "One attack, a comma-separated list (robust = per-sample worst case), or a preset "
                     "(APGD-CE, APGD-T, FAB-T, Square); case-insensitive",
                     /*with_ensemble=*/true);
  CLI::Option* checks = cmd->add_flag("--sanity-checks", args->sanity_checks,
                                      "Run the gradient-masking checks (5 extra FGSM/PGD runs on up to 200 samples; "
                                      "untargeted L-inf only); the table says their verdict");
  cmd->add_flag("--no-sanity-checks", args->no_sanity_checks, "Do not run them (the default; kept for old scripts)")
      ->excludes(checks);
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr (results only)");
  cmd->footer(attacks_help(/*with_ensemble=*/true) + "\n" + models_help());
  cmd->callback([args, cmd] { run(*args, *cmd); });
}

}  // namespace advgrad::cli
