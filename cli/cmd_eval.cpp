// advgrad eval --model NAME --weights FILE | --model FILE.onnx [--weights FILE] --attack LIST --eps E [...]
// Clean and robust accuracy of a zoo model with saved weights, or of an ONNX classifier, on a dataset split, under one attack, a
// comma-separated list of attacks (each on every clean-correct sample; robust = the per-sample worst case)
// or the AutoAttack-like ensemble preset (each attack on the samples all earlier ones failed on). The
// policies (targets of --targeted, how results combine, when sanity checks apply) are evaluate()'s.
// Outputs to reuse (cli/eval_outputs.h): --per-sample FILE.csv|.jsonl, --save-adv FILE.safetensors; and
// --adv-from FILE.safetensors, a transfer evaluation on such a file instead of attacks.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/cli/eval_outputs.h"
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
  NormalizationArgs normalization;  // --mean, --std
  std::string per_sample;  // --per-sample FILE.csv|.jsonl
  std::string save_adv;    // --save-adv FILE.safetensors
  std::string adv_from;    // --adv-from FILE.safetensors: a transfer evaluation instead of attacks
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

// Correctly classified samples of x (batched, no graph).
int64_t correct_count(Module& model, const Tensor& x, const Tensor& y, int64_t batch) {
  int64_t correct = 0;
  for (int64_t b = 0; b < x.size(0); b += batch) {
    const int64_t e = std::min(x.size(0), b + batch);
    const Tensor predicted = argmax(predict(model, slice(x, 0, b, e)), 1);
    correct += int64_t(sum(eq(predicted, slice(y, 0, b, e))).item());
  }
  return correct;
}

// --adv-from: the model on examples crafted against another model (or itself), and, when the file
// carries each example's row of the split, on the original samples of those rows.
void run_transfer(const EvalArgs& args) {
  apply_threads(args.attack);
  LoadedModel model = load_model(args.md);
  apply_normalization(args.normalization, model);
  const AdversarialSet set = load_adversarial(args.adv_from, model, "--adv-from");
  const int64_t n = set.x.size(0);
  std::optional<Samples> originals;
  if (!set.indices.empty()) {
    // Indices are rows of the split the file was made on: another split would pair them with other samples.
    const auto made_on = set.metadata.find("split");
    if (made_on != set.metadata.end() && !made_on->second.empty() && made_on->second != args.md.split)
      throw CLI::ValidationError("--adv-from", args.adv_from + ": its examples were made on the " +
                                                   printable_text(made_on->second) + " split, not " + args.md.split +
                                                   " (pass --split " + printable_text(made_on->second) + ")");
    originals = load_samples(args.md, model, [&](const Dataset& split) {
      for (size_t k = 0; k < set.indices.size(); ++k)
        if (set.indices[k] >= split.size())
          throw CLI::ValidationError("--adv-from", args.adv_from + ": index " + std::to_string(set.indices[k]) +
                                                       " of example " + std::to_string(k) + " is beyond the " +
                                                       std::to_string(split.size()) + " samples of " + split.source +
                                                       " (" + args.md.split + ")");
      return set.indices;
    });
    // The same samples as when they were crafted: otherwise the file is of another dataset or split.
    const std::vector<int64_t> ours = originals->y.to_vector<int64_t>(), theirs = set.labels.to_vector<int64_t>();
    for (size_t k = 0; k < ours.size(); ++k)
      if (ours[k] != theirs[k])
        throw CLI::ValidationError("--adv-from", args.adv_from + ": example " + std::to_string(k) + " (index " +
                                                     std::to_string(set.indices[k]) + ") has label " +
                                                     std::to_string(theirs[k]) + ", but that sample of " +
                                                     originals->data.source + " (" + args.md.split + ") has " +
                                                     std::to_string(ours[k]) + ": made on another dataset or split?");
  }
  const double adv_acc = double(correct_count(*model.module, set.x, set.labels, args.batch)) / double(n);
  std::optional<double> clean_acc;
  if (originals) clean_acc = double(correct_count(*model.module, originals->x, originals->y, args.batch)) / double(n);
  auto meta = [&](const std::string& key) {
    auto it = set.metadata.find(key);
    return it == set.metadata.end() ? std::string() : printable_text(it->second);  // the file's text, made safe
  };
  if (args.json) {
    nlohmann::ordered_json j;
    j["model"] = args.md.model;
    j["weights"] = args.md.weights;
    j["adv_from"] = args.adv_from;
    j["n"] = n;
    j["adv_acc"] = adv_acc;
    j["clean_acc"] = clean_acc ? nlohmann::ordered_json(*clean_acc) : nlohmann::ordered_json(nullptr);
    j["crafted"] = set.metadata;  // how the file says the examples were made
    std::cout << j.dump() << "\n";
    return;
  }
  std::printf("model      %s (weights %s)\n", args.md.model.c_str(),
              args.md.weights.empty() ? "in the file" : args.md.weights.c_str());
  std::printf("examples   %s: %lld", args.adv_from.c_str(), static_cast<long long>(n));
  if (!meta("attack").empty())
    std::printf(", crafted with %s at eps %s against %s (weights %s)", meta("attack").c_str(), meta("eps").c_str(),
                meta("model").c_str(), meta("weights").empty() ? "in the file" : meta("weights").c_str());
  std::printf("\n\naccuracy on the examples  %s\n", fixed(adv_acc, 4).c_str());
  if (clean_acc)
    std::printf("clean accuracy            %s  (the %lld original samples, %s %s)\n", fixed(*clean_acc, 4).c_str(),
                static_cast<long long>(n), originals->data.source.c_str(), args.md.split.c_str());
  else
    std::printf("clean accuracy            - (the file has no indices of the original samples)\n");
}

void run(const EvalArgs& args, const CLI::App& cmd) {
  if (!args.adv_from.empty()) return run_transfer(args);
  // --attack and --eps are required unless --adv-from replaces them.
  for (const char* option : {"--attack", "--eps"})
    if (cmd.count(option) == 0) throw CLI::ValidationError(option, "is required (or --adv-from FILE)");
  const std::vector<AttackSpec> specs = attack_specs(args.attack, cmd);  // bad attack options fail first
  apply_threads(args.attack);
  LoadedModel model = load_model(args.md);
  apply_normalization(args.normalization, model);
  const Samples s = load_samples(args.md, model);

  EvalOptions eo;
  eo.batch_size = args.batch;
  eo.ensemble = is_ensemble(args.attack);
  eo.sanity_checks = args.sanity_checks && !args.no_sanity_checks;  // evaluate() skips them where they would not compare
  eo.per_sample = !args.per_sample.empty();
  eo.keep_adversarial = !args.save_adv.empty();
  // Progress on stderr per attack (stage k/N of a preset): samples attacked, robust so far, rate, ETA.
  Progress progress(args.quiet);
  eo.progress = attack_progress(progress);
  const EvalReport report = evaluate(*model.module, s.x, s.y, specs, eo);
  progress.finish();
  std::fflush(stderr);  // the progress lines come before the results
  // The files first: a failure to write them is then the only output (one error line).
  if (eo.per_sample) write_per_sample(args.per_sample, s, report);
  if (eo.keep_adversarial)
    save_adversarial(args.save_adv, s, report,
                     {{"model", args.md.model}, {"weights", args.md.weights}, {"attack", args.attack.attack},
                      {"eps", number_text(args.attack.eps)}, {"data", s.data.source}, {"split", args.md.split},
                      {"robust_acc", fixed(report.robust_accuracy, 6)}});
  if (args.json) {
    print_json(args, s, report);
    return;
  }
  print_table(args, s, report);
  if (eo.per_sample)
    std::printf("wrote %s: one row per sample (index, label, clean prediction; per attack: attacked, fooled, "
                "prediction, norm)\n", args.per_sample.c_str());
  if (eo.keep_adversarial)
    std::printf("wrote %s: x_adv, labels, indices of %lld samples (eval --adv-from reads it)\n", args.save_adv.c_str(),
                static_cast<long long>(report.n));
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
  add_normalization_options(*cmd, args->normalization);
  CLI::Option* per_sample =
      cmd->add_option("--per-sample", args->per_sample,
                      "Write one row per sample (index, label, clean prediction; per attack: attacked, fooled, "
                      "adversarial prediction, perturbation norm) as CSV or JSON lines, by the extension")
          ->check(per_sample_path());
  CLI::Option* save_adv =
      cmd->add_option("--save-adv", args->save_adv,
                      "Write per sample the adversarial example that decides its worst case (the clean image "
                      "when it is wrong on clean input), its label and index, as .safetensors (for --adv-from)");
  // Transfer: no attack runs, so --attack and --eps are not required (run() asks for them otherwise).
  CLI::Option* adv_from =
      cmd->add_option("--adv-from", args->adv_from,
                      "Evaluate on the examples of a --save-adv file (crafted against another model, say) "
                      "instead of attacking: accuracy on them, and on their original samples");
  for (const char* option : {"--attack", "--eps"}) cmd->get_option(option)->required(false);
  for (CLI::Option* other : {cmd->get_option("--attack"), cmd->get_option("--eps"), cmd->get_option("--limit"),
                             per_sample, save_adv, checks})
    adv_from->excludes(other);
  // No attack runs, so its options would be ignored silently: refused instead.
  for (const char* name : {"--steps", "--step-size", "--restarts", "--no-random-start", "--targeted", "--queries",
                           "--effort", "--allow-large-eps"})
    if (CLI::Option* other = cmd->get_option_no_throw(name)) adv_from->excludes(other);
  cmd->footer(attacks_help(/*with_ensemble=*/true) + "\n" + models_help());
  cmd->callback([args, cmd] { run(*args, *cmd); });
}

}  // namespace advgrad::cli
