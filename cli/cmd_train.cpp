// advgrad train --model NAME|FILE.onnx --method natural|pgd|fgsm-rs|free|trades|mart [...]: adversarial
// training with per-epoch metrics, checkpoints, resume, and the run outputs of train/run_files.h. A zoo model
// starts from its initialisation; an ONNX model from the weights in its file (fine-tuning).
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/cli/progress.h"
#include "advgrad/core/error.h"
#include "advgrad/core/parallel.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/mnist.h"
#include "advgrad/train/methods/method.h"
#include "advgrad/train/run_files.h"
#include "advgrad/train/trainer.h"

namespace advgrad::cli {

namespace {

struct TrainArgs {
  TrainConfig config;
  std::string resume;
  bool allow_large_eps = false;  // --allow-large-eps: an eps above 0.5 is trained with instead of refused
};

// --model: a zoo name or a path ending in .onnx (read when the run starts).
CLI::Validator zoo_name_or_onnx_file() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (is_onnx_path(text)) return "";
        for (const auto& m : model_zoo())
          if (m.name == text) return "";
        return "unknown model '" + text + "' (known: " + model_option_text() + ")";
      },
      "NAME|FILE.onnx");
}

// Every option is checked here, so a bad value is a usage error naming the option; the bounds are
// TrainConfig::validate()'s (TrainLimits), which checks library users and config.json the same way.
void add_train_options(CLI::App& cmd, TrainConfig& c) {
  using L = TrainLimits;
  const double any = std::numeric_limits<double>::max();
  cmd.add_option("--model", c.model, "Model: " + model_option_text() + "; a FILE.onnx is fine-tuned from its weights")
      ->check(zoo_name_or_onnx_file())->capture_default_str();
  std::string methods;
  for (const MethodInfo& m : method_registry()) methods += "\n  " + m.name + ": " + m.description;
  cmd.add_option("--method", c.method, "Training method:" + methods)
      ->check(CLI::IsMember(training_methods()))->capture_default_str();
  cmd.add_option("--eps", c.eps, "L-inf radius of the training attack in [0,1] pixel units, a decimal or a fraction such as 8/255")
      ->transform(fraction_to_decimal())
      ->check(number_in(0, 1))
      ->capture_default_str();
  cmd.add_option("--steps", c.steps, "Attack steps (pgd, trades; step 2.5 eps/steps) or replays (free)")
      ->check(integer_in(1, L::max_steps))->capture_default_str();
  cmd.add_option("--epochs", c.epochs, "Epochs")->check(integer_in(1, L::max_epochs))->capture_default_str();
  cmd.add_option("--batch", c.batch, "Batch size")->check(integer_in(1, L::max_batch))->capture_default_str();
  cmd.add_option("--lr", c.lr, "Peak learning rate")->check(number_in(0, any, /*lo_open=*/true))->capture_default_str();
  cmd.add_option("--schedule", c.schedule, "onecycle, cosine, step or constant")
      ->check(CLI::IsMember({"onecycle", "cosine", "step", "constant"}))->capture_default_str();
  cmd.add_option("--optimizer", c.optimizer, "sgd (momentum 0.9, weight decay 5e-4) or adam")
      ->check(CLI::IsMember({"sgd", "adam"}))->capture_default_str();
  cmd.add_option("--eps-ramp", c.eps_ramp_epochs, "Grow eps linearly from 0 over this many epochs")
      ->check(integer_in(0, L::max_epochs))->capture_default_str();
  cmd.add_option("--adv-fraction", c.adv_fraction, "Share of each batch made adversarial (pgd, fgsm-rs)")
      ->check(number_in(0, 1))->capture_default_str();
  cmd.add_option("--beta", c.trades_beta, "TRADES trade-off beta")->check(number_in(0, any))->capture_default_str();
  cmd.add_option("--mart-beta", c.mart_beta, "MART's KL weight")->check(number_in(0, any))->capture_default_str();
  cmd.add_option("--awp-gamma", c.awp_gamma, "Adversarial weight perturbation size on top of pgd, trades or mart (0: off)")
      ->check(number_in(0, 1))->capture_default_str();
  cmd.add_option("--awp-warmup", c.awp_warmup, "Epochs before AWP starts")
      ->check(integer_in(0, L::max_epochs))->capture_default_str();
  cmd.add_option("--ema", c.ema_decay, "Keep an exponential moving average of the weights with this decay (0: off)")
      ->check(number_in(0, 1))
      ->check([](const std::string& v) { return std::stod(v) < 1 ? std::string() : std::string("must be < 1"); })
      ->capture_default_str();
  cmd.add_option("--clip-norm", c.clip_norm, "Clip the global gradient norm (0: off)")
      ->check(number_in(0, any))->capture_default_str();
  cmd.add_flag("--co-fallback-pgd", c.co_fallback_pgd,
               "On catastrophic overfitting (fgsm-rs, free) continue with PGD instead of stopping");
  cmd.add_option("--limit", c.limit, "Train on the first N training samples (0: all)")
      ->check(integer_in(0, L::max_samples));
  cmd.add_option("--val-size", c.val_size, "Training samples held out for per-epoch validation (>= 1)")
      ->check(integer_in(1, L::max_samples))->capture_default_str();
  cmd.add_option("--test-limit", c.test_limit, "Final evaluation on the first N test samples (0: all)")
      ->check(integer_in(0, L::max_samples));
  cmd.add_option("--seed", c.seed, "Seed of every random choice")
      ->check(integer_in(0, int64_t(L::max_seed)))->capture_default_str();
  cmd.add_option("--threads", c.threads, "Threads (0: OMP_NUM_THREADS); results are identical for any value")
      ->check(integer_in(0, kMaxThreads));
  cmd.add_option("--data", c.data, "Dataset directory (default: Debian's Fashion-MNIST)");
  cmd.add_option("--out", c.out, "Run directory for config, metrics, curves, pictures, weights, checkpoints");
  cmd.add_option("--stop-after", c.stop_after_epochs, "Stop after N epochs of this invocation (resume later)")
      ->check(integer_in(0, L::max_epochs));
  cmd.add_flag("--quiet", c.quiet, "Print nothing but errors (and, without --out, the run directory it made)");
}

}  // namespace

void print_epoch(const EpochMetrics& m) {
  const std::string ema = m.ema_val_pgd_acc < 0 ? "" : "  ema clean " + std::to_string(m.ema_val_clean_acc).substr(0, 5) +
                                                          " pgd " + std::to_string(m.ema_val_pgd_acc).substr(0, 5);
  // The epoch whose weights became best.safetensors says so, and by which score (trainer.cpp's rule).
  const std::string best = m.best_from.empty() ? ""
                           : std::string("  best") + (m.method == "natural" ? " (val clean)" : " (val pgd)") +
                                 (m.best_from == "ema" ? " ema" : "");
  std::printf("epoch %2d  %-7s loss %.4f  train clean %.3f adv %.3f  val clean %.3f pgd %.3f%s  lr %.4f  %.0f s%s%s%s\n",
              m.epoch, m.method.c_str(), m.train_loss, m.train_clean_acc, m.train_adv_acc, m.val_clean_acc,
              m.val_pgd_acc, ema.c_str(), m.lr, m.seconds, best.c_str(), m.note.empty() ? "" : "\n  warning: ",
              m.note.c_str());
  std::fflush(stdout);
}

namespace {
// What the steps' running accuracy is of, for the bar: "adv acc", "clean acc", "mixed acc".
std::string accuracy_label(const std::string& of) {
  if (of == "adversarial") return "adv acc";
  return (of.empty() ? std::string("train") : of) + " acc";
}
}  // namespace

// `announce`, when not empty, is printed on stdout once the first step has run (a run that fails on its
// data prints nothing but its error line).
TrainSummary run_training(Trainer& trainer, const std::string& resume, bool quiet, std::string announce) {
  // Progress on stderr: the epoch's steps with the running loss and accuracy and the whole run's ETA,
  // then the final evaluation on the test split as `advgrad eval` shows it (one bar per attack).
  Progress progress(quiet), test_progress(quiet);
  auto announce_once = [&] {
    if (announce.empty()) return;  // also under --quiet: it is where the results are
    std::printf("%s\n", announce.c_str());
    std::fflush(stdout);
    announce.clear();
  };
  trainer.on_progress = [&](const TrainProgress& p) {
    announce_once();  // before the bar is drawn
    ProgressLine line;
    line.done = p.step, line.total = p.steps, line.samples_per_s = p.samples_per_s;
    line.label = "epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs);
    line.extra = "loss " + fixed(p.loss, 4) + "  " + accuracy_label(p.accuracy_of) + " " + fixed(p.accuracy, 3);
    line.eta_seconds = p.eta_seconds, line.eta_label = "run ETA";
    progress.update(line);
  };
  trainer.on_epoch = [&](const EpochMetrics& m) {
    progress.finish();
    announce_once();  // (quiet runs report no steps)
    std::fflush(stderr);  // the bar's end before the epoch's line
    if (!quiet) print_epoch(m);
  };
  trainer.on_test_progress = attack_progress(test_progress, "test ");
  TrainSummary s = trainer.run(resume);
  test_progress.finish();
  std::fflush(stderr);  // the progress lines come before the results
  return s;
}

TrainSummary run_training(Trainer& trainer, const std::string& resume, bool quiet) {  // cmd_demo.cpp's
  return run_training(trainer, resume, quiet, "");
}

void print_summary(const TrainSummary& s, const TrainConfig& c) {
  const bool full = s.test_samples == s.test_split_samples;
  const std::string which = full ? "the full test set (" + std::to_string(s.test_samples) + " samples)"
                                 : "the first " + std::to_string(s.test_samples) + " test samples";
  if (s.test_samples == 0) {  // stopped by --stop-after (the run evaluates at its end), or no test split
    std::printf("\n%s, eps %s: no final evaluation\n", c.model.c_str(), eps_text(c.eps).c_str());
  } else {
    std::printf("\n%s on %s, eps %s:\n", c.model.c_str(), which.c_str(), eps_text(c.eps).c_str());
    std::printf("  clean %.4f   FGSM %.4f   PGD-%d %.4f\n", s.clean_acc, s.fgsm_acc, c.final_pgd_steps, s.pgd_acc);
  }
  std::printf("  %.1f s, %d thread(s), seed %llu, parameters sha256 %s\n", s.seconds, s.threads,
              (unsigned long long)s.seed, s.param_sha256.c_str());
  if (!s.stop_reason.empty()) std::printf("  stopped: %s\n", s.stop_reason.c_str());
  if (!c.out.empty()) std::printf("  outputs in %s\n", c.out.c_str());
}

namespace {

// The recipe of a run directory (its config.json), when it has one.
std::optional<TrainConfig> recorded_recipe(const std::string& run_dir) {
  const std::string path = run_dir + "/config.json";
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream text;
  text << f.rdbuf();
  return TrainConfig::from_json(text.str(), path);
}

// The "model" a run directory's config.json names; "" when it cannot tell (the Trainer then explains).
std::string recorded_model(const std::string& run_dir) {
  std::ifstream f(run_dir + "/config.json", std::ios::binary);
  const auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : "";
}

// A run of an ONNX model: the Trainer gets the loaded model as an object (make_training around it); a
// resumed one reloads the file its config.json names, then the checkpoint's weights replace the file's.
TrainSummary train_onnx_model(TrainConfig config, const std::string& resume, const std::string& announce) {
  if (!resume.empty()) {
    const std::optional<TrainConfig> in_dir = recorded_recipe(resume);
    if (!in_dir) throw IOError(resume + ": not a training run directory (no config.json)");
    TrainConfig recorded = *in_dir;
    recorded.threads = config.threads, recorded.quiet = config.quiet, recorded.stop_after_epochs = config.stop_after_epochs;
    recorded.out = config.out.empty() ? resume : config.out;
    config = recorded;
  }
  ModelDataArgs md;
  md.model = config.model;
  md.data_dir = config.data.empty() ? default_fashion_mnist_dir() : config.data;
  LoadedModel model = load_model(md);
  TrainingParts parts = make_training(config, model.module);
  check_sample_shape(model, parts.train);  // the trainer feeds the dataset's samples as they are
  Trainer trainer(std::move(parts));
  TrainSummary s = run_training(trainer, resume, config.quiet, announce);
  if (!config.quiet) print_summary(s, config);
  return s;
}

}  // namespace

void register_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a zoo model, or fine-tune an ONNX model, naturally or adversarially");
  add_train_options(*cmd, args->config);
  cmd->add_flag("--allow-large-eps", args->allow_large_eps,
                "Accept an eps above 0.5 (refused by default: it is almost always a radius in 0..255 units)");
  cmd->footer(models_help());
  cmd->add_option("--resume", args->resume, "Continue the run in this directory from its last checkpoint");
  cmd->callback([args] {
    TrainConfig& c = args->config;
    refuse_large_linf_eps("--eps", c.eps, args->allow_large_eps, "the training and evaluation attacks");
    // Without --out a new run gets a directory of its own under ./runs/, and says which.
    std::string made_dir, announce;
    const bool had_runs = std::filesystem::exists("runs");
    if (args->resume.empty() && c.out.empty()) {
      c.validate();  // a bad recipe leaves no directory behind
      made_dir = c.out = create_new_run_directory("runs", default_run_name(c.model, c.method, std::time(nullptr)));
      announce = "no --out given: the run goes to " + c.out;
    }
    try {
      // A resumed run's model is the one its directory records, whatever --model says.
      if (is_onnx_path(args->resume.empty() ? c.model : recorded_model(args->resume))) {
        train_onnx_model(c, args->resume, announce);
        return;
      }
      Trainer trainer(c);
      TrainSummary s = run_training(trainer, args->resume, c.quiet, announce);
      if (!c.quiet) print_summary(s, trainer.config());
    } catch (...) {
      std::error_code ec;
      if (!made_dir.empty()) std::filesystem::remove(made_dir, ec);  // only while still empty
      if (!made_dir.empty() && !had_runs) std::filesystem::remove("runs", ec);  // the same
      throw;
    }
  });
}

}  // namespace advgrad::cli
