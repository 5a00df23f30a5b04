#include "advgrad/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "advgrad/attacks/attack.h"
#include "advgrad/attacks/evaluate.h"
#include "advgrad/autograd/engine.h"
#include "advgrad/core/parallel.h"
#include "advgrad/core/sha256.h"
#include "advgrad/data/image_write.h"
#include "advgrad/data/labelled_grid.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/loader.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/losses.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"
#include "advgrad/train/ema.h"
#include "advgrad/train/run_files.h"

namespace advgrad {

namespace fs = std::filesystem;

std::string restore_best_weights(Module& model, const StateDict& best) {
  if (best.empty())
    return "the best weights could not be restored (the checkpoint this run resumed from has none), "
           "kept the current ones";
  model.load_state_dict(best);
  return "restored the best weights";
}

std::string parameter_sha256(const Module& model) {
  Sha256 h;
  auto add = [&](const auto& values) { h.update(values.data(), values.size() * sizeof(values[0])); };
  for (const auto& [key, t] : model.state_dict()) {  // the tensors' bytes, read as values (reporting only)
    if (t.dtype() == DType::F32) add(t.to_vector<float>());
    else if (t.dtype() == DType::F64) add(t.to_vector<double>());
    else add(t.to_vector<int64_t>());
  }
  return h.hex_digest();
}

int64_t training_steps(int64_t train_samples, int64_t batch, int epochs, int replays_per_batch) {
  if (batch < 1) throw ValueError("training_steps: batch must be >= 1, got " + std::to_string(batch));
  return (train_samples + batch - 1) / batch * epochs * replays_per_batch;
}

double run_eta_seconds(double epoch_elapsed, double epoch_fraction, double mean_epoch_seconds,
                       double mean_validation_seconds, int epochs_after) {
  const double f = std::clamp(epoch_fraction, 1e-9, 1.0);
  const double rest_of_epoch = epoch_elapsed * (1 - f) / f;
  const double after = double(std::max(epochs_after, 0));
  if (mean_epoch_seconds <= 0) return rest_of_epoch + after * epoch_elapsed / f;
  return rest_of_epoch + mean_validation_seconds + after * mean_epoch_seconds;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int64_t> iota(int64_t begin, int64_t end) {
  std::vector<int64_t> v;
  for (int64_t i = begin; i < end; ++i) v.push_back(i);
  return v;
}

double accuracy_of(const Tensor& logits, const Tensor& y) {
  return sum(eq(argmax(logits, 1), y)).item() / double(std::max<int64_t>(y.numel(), 1));
}

// Rows [begin, end) of a dataset as a dataset of their own. The row vectors are replaced, not assigned
// into: assigning keeps the whole copy's capacity (47 MB for a 1000-row validation split of Fashion-MNIST).
Dataset rows_of(const Dataset& d, int64_t begin, int64_t end) {
  Dataset out = d;
  out.images = std::vector<uint8_t>(d.images.begin() + begin * d.sample_numel(), d.images.begin() + end * d.sample_numel());
  out.labels = std::vector<int64_t>(d.labels.begin() + begin, d.labels.begin() + end);
  out.check();
  return out;
}

// sum(t * 0) is 0 when every value is finite and NaN as soon as one is NaN or Inf.
bool all_finite(const Tensor& t) {
  NoGradGuard no_grad;
  return std::isfinite(sum(t * 0.0).item());
}

// The first parameter whose gradient (or, with `values`, whose value) has a NaN or Inf, or "".
std::string first_non_finite(const Module& m, bool values) {
  for (const auto& [name, p] : m.named_parameters()) {
    Tensor t = values ? p : p.grad();
    if (t.defined() && !all_finite(t)) return name;
  }
  return "";
}

// Where a resumed run's checkpoint should be, and a clear error when it is not there: a run killed
// before its first epoch finished has config.json but no checkpoint, and simply starts again.
void check_resumable(const std::string& resume_dir) {
  std::error_code ec;
  if (!fs::is_directory(resume_dir, ec)) throw IOError(resume_dir + ": --resume: no such run directory");
  if (fs::exists(resume_dir + "/checkpoint/trainer.json", ec)) return;
  if (fs::exists(resume_dir + "/config.json", ec))
    throw IOError(resume_dir + ": nothing to resume: no epoch finished before the run stopped (there is no "
                  "checkpoint/trainer.json yet); start the run again with the same options (its settings are in " +
                  resume_dir + "/config.json)");
  throw IOError(resume_dir + ": not a training run directory (no config.json, no checkpoint/trainer.json)");
}

MethodOptions method_options(const TrainConfig& c) {
  MethodOptions o;
  o.steps = c.steps, o.adv_fraction = c.adv_fraction, o.trades_beta = c.trades_beta, o.mart_beta = c.mart_beta;
  o.awp_gamma = c.awp_gamma, o.awp_warmup = c.awp_warmup, o.seed = c.seed;
  return o;
}

// The options' part of a TrainConfig, for the files of a run whose objects came from elsewhere.
TrainConfig recipe_of(const TrainerOptions& o, const TrainingMethod& method) {
  TrainConfig c;
  c.model = "", c.method = method.name(), c.eps = o.eps(), c.eps_ramp_epochs = o.eps_ramp_epochs();
  c.epochs = o.epochs(), c.batch = o.batch(), c.clip_norm = o.clip_norm(), c.ema_decay = o.ema_decay();
  c.val_pgd_steps = o.val_pgd_steps(), c.final_pgd_steps = o.final_pgd_steps(), c.test_limit = o.test_limit();
  c.co_detect = o.co_detect(), c.co_fallback_pgd = bool(o.co_fallback()), c.seed = o.seed();
  c.threads = o.threads(), c.out = o.out(), c.stop_after_epochs = o.stop_after_epochs(), c.quiet = o.quiet();
  return c;
}

}  // namespace

TrainingParts make_training(const TrainConfig& cfg) {
  cfg.validate();
  if (cfg.model.empty()) throw ValueError("train: setting 'model' is empty: name a zoo model, or give Trainer a Module");
  Generator init_gen(cfg.seed, /*stream=*/1);
  TrainingParts p = make_training(cfg, make_model(cfg.model, init_gen));
  const ModelInfo& info = model_info(cfg.model);
  if (p.train.sample_shape != info.input_shape)
    throw ValueError("train: model " + cfg.model + " takes " + shape_str(info.input_shape) + " inputs, the data has " +
                     shape_str(p.train.sample_shape));
  return p;
}

TrainingParts make_training(const TrainConfig& cfg, std::shared_ptr<Module> model) {
  cfg.validate();
  if (!model) throw ValueError("make_training: no model");
  TrainingParts p;
  // Data: the last val_size training samples are held out for validation.
  const std::string dir = cfg.data.empty() ? default_fashion_mnist_dir() : cfg.data;
  Dataset all = load_dataset(dir, "train");
  const int64_t n_train_all = all.size();
  if (cfg.val_size >= n_train_all) throw ValueError("train: val_size must be smaller than the training split");
  int64_t train_end = n_train_all - cfg.val_size;
  if (cfg.limit > 0) train_end = std::min(train_end, cfg.limit);
  p.validation = rows_of(all, n_train_all - cfg.val_size, n_train_all);
  p.train = rows_of(all, 0, train_end);
  p.test = load_dataset(dir, "test");

  p.model = std::move(model);
  if (cfg.optimizer == "sgd")
    p.optimizer = std::make_unique<SGD>(p.model->parameters(), cfg.lr, cfg.momentum, 0.0, cfg.weight_decay);
  else
    p.optimizer = std::make_unique<Adam>(p.model->parameters(), cfg.lr, 0.9, 0.999, 1e-8, cfg.weight_decay);

  const MethodOptions mo = method_options(cfg);
  p.method = make_training_method(cfg.method, mo);
  const int64_t total_steps = training_steps(p.train.size(), cfg.batch, cfg.epochs, p.method->replays_per_batch());
  if (cfg.schedule == "onecycle") {
    OneCycleOptions oc;
    oc.pct_start = cfg.onecycle_pct;
    p.schedule = std::make_unique<OneCycleLR>(cfg.lr, total_steps, oc);
  } else if (cfg.schedule == "cosine") {
    p.schedule = std::make_unique<CosineAnnealingLR>(cfg.lr, total_steps);
  } else if (cfg.schedule == "step") {
    p.schedule = std::make_unique<StepLR>(cfg.lr, std::max<int64_t>(1, total_steps / 3), 0.1);
  } else {
    p.schedule = std::make_unique<Constant>(cfg.lr);
  }

  TrainerOptions& o = p.options;
  o.epochs(cfg.epochs).batch(cfg.batch).eps(cfg.eps).eps_ramp_epochs(cfg.eps_ramp_epochs).clip_norm(cfg.clip_norm);
  o.ema_decay(cfg.ema_decay).val_pgd_steps(cfg.val_pgd_steps).final_pgd_steps(cfg.final_pgd_steps);
  o.test_limit(cfg.test_limit).co_detect(cfg.co_detect).seed(cfg.seed).threads(cfg.threads).out(cfg.out);
  o.stop_after_epochs(cfg.stop_after_epochs).quiet(cfg.quiet);
  if (cfg.co_fallback_pgd) o.co_fallback([mo] { return make_training_method("pgd", mo); });
  p.recipe = cfg;
  p.recipe->data = dir;  // the directory the data came from, also when it was the default
  return p;
}

struct Trainer::State {
  bool from_config = false;
  TrainConfig cfg;  // the recipe written to the run files
  TrainingParts parts;
  std::unique_ptr<DataLoader> loader;
  std::unique_ptr<WeightAverage> ema;
  Checkpoint ck;           // counters, history, current method
  StateDict best_weights;  // best by validation PGD accuracy (kept in memory, saved as best.safetensors)
};

Trainer::Trainer(TrainingParts parts) : s_(std::make_unique<State>()) {
  TrainingParts& p = parts;
  if (!p.model) throw ValueError("Trainer: no model");
  if (!p.optimizer) throw ValueError("Trainer: no optimizer");
  if (!p.schedule) throw ValueError("Trainer: no LR schedule");
  if (!p.method) throw ValueError("Trainer: no training method");
  if (p.train.size() == 0) throw ValueError("Trainer: the training set is empty");
  if (p.validation.size() == 0) throw ValueError("Trainer: the validation set is empty (it picks the best weights)");
  const TrainerOptions& o = p.options;
  if (o.epochs() < 1) throw ValueError("Trainer: epochs must be >= 1, got " + std::to_string(o.epochs()));
  if (o.batch() < 1) throw ValueError("Trainer: batch must be >= 1, got " + std::to_string(o.batch()));
  if (!(o.eps() >= 0 && o.eps() <= 1)) throw ValueError("Trainer: eps must be in [0, 1], got " + std::to_string(o.eps()));
  if (!(o.ema_decay() >= 0 && o.ema_decay() < 1))
    throw ValueError("Trainer: ema_decay must be in [0, 1), got " + std::to_string(o.ema_decay()));
  if (o.val_pgd_steps() < 1 || o.final_pgd_steps() < 1) throw ValueError("Trainer: PGD steps must be >= 1");
  s_->cfg = p.recipe ? *p.recipe : recipe_of(o, *p.method);
  s_->parts = std::move(parts);
}

Trainer::Trainer(std::shared_ptr<Module> model, Dataset train, Dataset validation, Dataset test,
                 std::unique_ptr<Optimizer> optimizer, std::unique_ptr<LRSchedule> schedule,
                 std::unique_ptr<TrainingMethod> method, TrainerOptions options)
    : Trainer(TrainingParts{std::move(model), std::move(train), std::move(validation), std::move(test),
                            std::move(optimizer), std::move(schedule), std::move(method), std::move(options), std::nullopt}) {}

Trainer::Trainer(TrainConfig config) : s_(std::make_unique<State>()) {
  config.validate();
  s_->from_config = true;
  s_->cfg = std::move(config);
}
Trainer::~Trainer() = default;
Module& Trainer::model() {
  if (!s_->parts.model) throw ValueError("Trainer::model: a Trainer from a TrainConfig builds its model in run()");
  return *s_->parts.model;
}
const TrainConfig& Trainer::config() const { return s_->cfg; }
const StateDict& Trainer::best_weights() const { return s_->best_weights; }
StateDict Trainer::ema_weights() const { return s_->ema ? s_->ema->weights() : StateDict{}; }

TrainSummary Trainer::run(const std::string& resume_dir) {
  State& s = *s_;
  auto t_start = Clock::now();
  if (!resume_dir.empty()) check_resumable(resume_dir);
  if (s.from_config) {
    if (!resume_dir.empty()) {
      // The checkpoint's config defines the run; only how it is watched and where it goes may change.
      Checkpoint probe = load_checkpoint(resume_dir + "/checkpoint", nullptr, nullptr);
      TrainConfig c = probe.config;
      c.threads = s.cfg.threads, c.quiet = s.cfg.quiet, c.stop_after_epochs = s.cfg.stop_after_epochs;
      c.out = s.cfg.out.empty() ? resume_dir : s.cfg.out;
      s.cfg = c;
    }
    if (s.cfg.threads > 0) set_num_threads(s.cfg.threads);
    s.parts = make_training(s.cfg);
    s.cfg = *s.parts.recipe;  // with the data directory found
  } else if (!resume_dir.empty() && s.cfg.out.empty()) {
    s.cfg.out = resume_dir;
  }
  const TrainConfig& cfg = s.cfg;
  TrainingParts& p = s.parts;
  const TrainerOptions& o = p.options;
  if (o.threads() > 0) set_num_threads(o.threads());
  Module& model = *p.model;
  Optimizer& opt = *p.optimizer;
  const std::vector<Tensor> params = model.parameters();
  const Device device = params.empty() ? Device::CPU : params[0].device();  // batches go where the model is

  LoaderOptions lo;
  lo.batch_size = o.batch(), lo.shuffle = true, lo.seed = o.seed();
  s.loader = std::make_unique<DataLoader>(p.train, lo);
  const int64_t steps_per_epoch = s.loader->num_batches();

  s.ck = Checkpoint{};
  s.ck.config = cfg, s.ck.method = p.method->name();
  StateDict ema;  // the checkpoint's weight average, if it kept one
  if (!resume_dir.empty()) {
    StateDict method_state;
    s.ck = load_checkpoint(resume_dir + "/checkpoint", &model, &opt, &s.best_weights, &ema, &method_state);
    s.ck.config = cfg;
    // Older checkpoints did not keep the best weights; the run directory's copy is the best there is.
    const std::string old_best = resume_dir + "/best.safetensors";
    if (s.best_weights.empty() && s.ck.best_val_pgd >= 0 && fs::exists(old_best) && !cfg.model.empty())
      s.best_weights = load_weights_file(old_best, cfg.model);
    if (!method_state.empty()) p.method->load_state(method_state);
    const auto generators = model.named_generators();
    for (const auto& saved : s.ck.random_state) {
      const std::string& name = saved.first;  // a named copy: C++17 lambdas cannot capture a structured binding
      const uint64_t offset = saved.second;
      auto it = std::find_if(generators.begin(), generators.end(), [&](const auto& g) { return g.first == name; });
      if (it == generators.end())
        throw IOError(resume_dir + "/checkpoint/trainer.json: random_state names generator '" + name +
                      "', which the model does not have");
      it->second->set_offset(offset);
    }
    // After a catastrophic-overfitting fallback the run continues with the fallback method.
    if (s.ck.method != p.method->name() && o.co_fallback()) {
      auto fallback = o.co_fallback()();
      if (fallback->name() == s.ck.method) p.method = std::move(fallback);
    }
    // Temporaries of writes a kill interrupted; only stale ones go (see remove_stale_temporaries).
    for (const std::string& d : {resume_dir, resume_dir + "/checkpoint", cfg.out, cfg.out + "/checkpoint"})
      remove_stale_temporaries(d);
  }
  // The average starts from the weights the run continues from (the checkpoint's, after a resume), or is
  // the checkpoint's own.
  if (o.ema_decay() > 0) {
    s.ema = std::make_unique<WeightAverage>(model, o.ema_decay());
    if (!ema.empty()) s.ema->load(ema);
  }
  if (!cfg.out.empty()) {
    fs::create_directories(cfg.out);
    write_text_atomic(cfg.out + "/config.json", config_json(cfg));
  }

  TrainSummary summary;
  summary.seed = o.seed(), summary.threads = num_threads();
  const std::vector<int64_t> val_rows = iota(0, p.validation.size());
  const Tensor val_x = p.validation.images_float(val_rows).to(device), val_y = p.validation.labels_tensor(val_rows).to(device);
  // A fixed training sample: the catastrophic-overfitting check and the per-epoch clean training accuracy.
  const std::vector<int64_t> probe_rows = iota(0, std::min<int64_t>(p.train.size(), 512));
  const Tensor probe_x = p.train.images_float(probe_rows).to(device), probe_y = p.train.labels_tensor(probe_rows).to(device);
  const std::string where_kept = cfg.out.empty() ? "" : " in " + cfg.out + "/checkpoint";

  int epochs_this_run = 0;
  // For the progress ETA: the last epoch this invocation runs, and the finished epochs' seconds.
  const int last_epoch = o.stop_after_epochs() > 0 ? std::min(o.epochs(), s.ck.epochs_done + o.stop_after_epochs()) : o.epochs();
  double finished_epoch_seconds = 0, finished_validation_seconds = 0;
  for (int epoch = s.ck.epochs_done; epoch < o.epochs(); ++epoch) {
    auto t_epoch = Clock::now();
    TrainingMethod& method = *p.method;
    const int replays = method.replays_per_batch();
    EpochMetrics m;
    m.epoch = epoch + 1, m.method = method.name();
    // Every step's loss only where curves.svg plots it (short runs): a long run's history, rewritten into
    // the checkpoint each epoch, would grow with every step.
    const bool keep_step_losses = size_t(o.epochs()) <= kStepLossEpochs;
    if (keep_step_losses) m.step_losses.reserve(size_t(steps_per_epoch));
    double loss_sum = 0, adv_hits = 0;
    int64_t seen = 0;
    method.begin_epoch(epoch);
    for (int64_t i = 0; i < steps_per_epoch; ++i) {
      Batch b = s.loader->batch(epoch, i);
      const Tensor x = b.x.to(device), y = b.y.to(device);
      const int64_t B = y.numel();
      const int64_t progress_step = int64_t(epoch) * steps_per_epoch + i;
      double eps = o.eps();
      if (o.eps_ramp_epochs() > 0)
        eps *= std::min(1.0, double(progress_step + 1) / double(o.eps_ramp_epochs() * steps_per_epoch));
      m.eps = eps;

      for (int r = 0; r < replays; ++r) {
        const StepContext c{model, x, y, eps, epoch, progress_step * replays + r, r};
        const Tensor inputs = method.craft(c);
        model.train();
        method.before_loss(c, inputs);
        const StepLoss out = method.loss(c, inputs);
        opt.zero_grad();
        backward(out.loss);
        method.after_backward(c);
        method.before_optimizer_step(c);  // first: AWP's weights are back at w even when the guard throws
        const std::string bad = first_non_finite(model, /*values=*/false);
        if (!bad.empty())
          throw TrainingDiverged("train: epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(i + 1) +
                                 ": the gradient of parameter '" + bad + "' is NaN or Inf (loss " +
                                 std::to_string(out.loss.item()) + "); the last good checkpoint is kept" + where_kept);
        if (o.clip_norm() > 0) clip_grad_norm(opt.params(), o.clip_norm());
        apply_schedule(opt, *p.schedule, c.step);
        m.lr = opt.lr();
        opt.step();
        // A finite gradient can still give non-finite weights (a huge LR, a bad optimizer buffer).
        const std::string bad_value = first_non_finite(model, /*values=*/true);
        if (!bad_value.empty())
          throw TrainingDiverged("train: epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(i + 1) +
                                 ": parameter '" + bad_value + "' is NaN or Inf after the optimizer step (lr " +
                                 std::to_string(m.lr) + "); the last good checkpoint is kept" + where_kept);
        if (s.ema) s.ema->update(model);

        if (r == replays - 1) {  // what the step computed: its loss and the accuracy of its logits
          NoGradGuard ng;
          const double step_loss = out.loss.item();
          loss_sum += step_loss * double(B);
          if (keep_step_losses) m.step_losses.push_back(float(step_loss));
          adv_hits += accuracy_of(out.logits.detach(), y) * double(B);
          m.train_adv_acc_of = out.accuracy_of;
          seen += B;
        }
      }
      if (on_progress && !o.quiet()) {
        TrainProgress tp;
        tp.epoch = epoch + 1, tp.epochs = o.epochs(), tp.step = i + 1, tp.steps = steps_per_epoch;
        tp.loss = loss_sum / double(std::max<int64_t>(seen, 1));
        tp.accuracy = adv_hits / double(std::max<int64_t>(seen, 1));
        tp.accuracy_of = m.train_adv_acc_of;
        const double elapsed = since(t_epoch);
        tp.samples_per_s = double(seen) / std::max(1e-9, elapsed);
        const double mean_epoch = epochs_this_run > 0 ? finished_epoch_seconds / epochs_this_run : 0;
        const double mean_validation = epochs_this_run > 0 ? finished_validation_seconds / epochs_this_run : 0;
        tp.eta_seconds = run_eta_seconds(elapsed, double(i + 1) / double(steps_per_epoch), mean_epoch, mean_validation,
                                         last_epoch - (epoch + 1));
        on_progress(tp);
      }
    }
    const double training_seconds = since(t_epoch);
    m.train_loss = loss_sum / double(std::max<int64_t>(seen, 1));
    m.train_adv_acc = adv_hits / double(std::max<int64_t>(seen, 1));
    if (m.train_adv_acc_of == "clean") {  // the steps trained on clean inputs: their accuracy is the clean one
      m.train_clean_acc = m.train_adv_acc;
      m.train_clean_acc_of = "training steps";
    } else {  // one eval-mode pass over a fixed sample, instead of one per step
      EvalOptions po;
      po.batch_size = o.batch();  // in training-size batches: no new memory peak
      m.train_clean_acc = evaluate(model, probe_x, probe_y, {}, po).clean_accuracy;
      m.train_clean_acc_of = "fixed training sample";
    }

    // Validation on the held-out samples: clean and PGD, for the model and for its weight average.
    // At the training batch size: its size classes are already in the block cache, so the evaluation adds
    // no new memory peak (docs/PERFORMANCE.md "Memory").
    EvalOptions eo;
    eo.batch_size = o.batch();
    const AttackOptions vo = pgd_options(o.eps(), o.val_pgd_steps(), o.seed() + 7);
    {
      EvalReport vr = evaluate(model, val_x, val_y, {{"pgd", vo}}, eo);
      m.val_clean_acc = vr.clean_accuracy;
      m.val_pgd_acc = vr.robust_accuracy;
    }
    if (s.ema) {
      EvalReport er = with_weights(model, s.ema->weights(), [&] { return evaluate(model, val_x, val_y, {{"pgd", vo}}, eo); });
      m.ema_val_clean_acc = er.clean_accuracy;
      m.ema_val_pgd_acc = er.robust_accuracy;
    }
    bool best_changed = false;
    // The best weights are the most robust ones, except for natural training, which does not aim at
    // robustness: there the best clean validation accuracy (the checkpoint's best_val_pgd then holds it).
    const bool by_clean = p.method->name() == "natural";
    const double model_score = by_clean ? m.val_clean_acc : m.val_pgd_acc;
    const double ema_score = by_clean ? m.ema_val_clean_acc : m.ema_val_pgd_acc;
    const bool ema_better = s.ema && ema_score > model_score;
    const double candidate = ema_better ? ema_score : model_score;
    if (candidate > s.ck.best_val_pgd) {
      s.ck.best_val_pgd = candidate;
      s.ck.best_epoch = epoch + 1;
      s.best_weights.clear();
      const StateDict source = ema_better ? s.ema->weights() : model.state_dict();
      for (const auto& [k, t] : source) s.best_weights[k] = t.clone();
      m.best_from = ema_better ? "ema" : "model";
      best_changed = true;
    }

    // Catastrophic overfitting (Wong et al.): on a fixed training batch, PGD accuracy collapses while
    // FGSM accuracy stays high.
    bool stop = false;
    if (o.co_detect() && method.watch_catastrophic_overfitting()) {
      AttackOptions fo;
      fo.eps = o.eps(), fo.seed = o.seed();
      EvalOptions co;
      co.batch_size = o.batch();
      const EvalReport cr = evaluate(model, probe_x, probe_y, {{"fgsm", fo}, {"pgd", pgd_options(o.eps(), o.val_pgd_steps(), o.seed())}}, co);
      const double fgsm = cr.attacks[0].accuracy, pgd = cr.attacks[1].accuracy;
      if (s.ck.co_best_pgd > 0.1 && pgd < 0.5 * s.ck.co_best_pgd && fgsm > pgd + 0.2) {
        const bool fallback = bool(o.co_fallback());
        m.note = "catastrophic overfitting: PGD accuracy on a training batch fell to " + std::to_string(pgd) +
                 " (best " + std::to_string(s.ck.co_best_pgd) + ") while FGSM accuracy is " + std::to_string(fgsm) +
                 "; " + restore_best_weights(model, s.best_weights) + (fallback ? ", continuing with PGD" : ", stopping");
        if (fallback) {
          p.method = o.co_fallback()();
          s.ck.method = p.method->name();
        } else {
          stop = true;
        }
      }
      s.ck.co_best_pgd = std::max(s.ck.co_best_pgd, pgd);
    }

    m.seconds = since(t_epoch);
    finished_epoch_seconds += m.seconds, finished_validation_seconds += m.seconds - training_seconds;
    s.ck.history.push_back(m);
    s.ck.epochs_done = epoch + 1;
    s.ck.random_state.clear();
    for (const auto& [name, g] : model.named_generators()) s.ck.random_state.emplace_back(name, g->offset());
    ++epochs_this_run;
    if (!cfg.out.empty()) {
      // The best weights are written when they change, and once per process (a resume may write to a new --out).
      const bool write_best = !s.best_weights.empty() && (best_changed || epochs_this_run == 1);
      if (write_best) save_safetensors(cfg.out + "/best.safetensors", s.best_weights);
      const StateDict ema = s.ema ? s.ema->weights() : StateDict{};
      if (s.ema) save_safetensors(cfg.out + "/ema.safetensors", ema);
      const StateDict method_state = p.method->state();
      save_checkpoint(cfg.out + "/checkpoint", s.ck, model, opt, write_best ? &s.best_weights : nullptr, &ema,
                      &method_state);
      std::string lines;
      for (const auto& h : s.ck.history) lines += metrics_json(h) + "\n";
      write_text_atomic(cfg.out + "/metrics.jsonl", lines);
      write_text_atomic(cfg.out + "/curves.svg",
                        curves_svg(s.ck.history, (cfg.model.empty() ? "model" : cfg.model) + " " + cfg.method +
                                                     " eps " + eps_text(o.eps())));
    }
    if (on_epoch) on_epoch(m);
    if (stop) {
      summary.stop_reason = m.note;
      break;
    }
    if (o.stop_after_epochs() > 0 && epochs_this_run >= o.stop_after_epochs() && epoch + 1 < o.epochs()) {
      summary.stop_reason = "stopped after " + std::to_string(epochs_this_run) + " epoch(s) as asked (--stop-after)";
      summary.epochs_done = s.ck.epochs_done;
      summary.param_sha256 = parameter_sha256(model);
      summary.seconds = since(t_start);
      return summary;
    }
  }

  // Final evaluation on the test split: clean, FGSM, PGD-K (one random start).
  summary.epochs_done = s.ck.epochs_done;
  summary.finished = summary.stop_reason.empty();
  const int64_t n_test = o.test_limit() > 0 ? std::min(o.test_limit(), p.test.size()) : p.test.size();
  summary.test_samples = n_test, summary.test_split_samples = p.test.size();
  summary.param_sha256 = parameter_sha256(model);
  if (n_test == 0) {
    summary.seconds = since(t_start);
    return summary;
  }
  const std::vector<int64_t> test_rows = iota(0, n_test);
  const Tensor tx = p.test.images_float(test_rows).to(device), ty = p.test.labels_tensor(test_rows).to(device);
  AttackOptions fo;
  fo.eps = o.eps(), fo.seed = o.seed() + 11;
  EvalOptions eo;
  eo.batch_size = o.batch();  // as in validation: no new peak after training
  if (!o.quiet()) eo.progress = on_test_progress;
  EvalReport er = evaluate(model, tx, ty, {{"fgsm", fo}, {"pgd", pgd_options(o.eps(), o.final_pgd_steps(), o.seed() + 13)}}, eo);
  summary.clean_acc = er.clean_accuracy;
  summary.fgsm_acc = er.attacks[0].accuracy;
  summary.pgd_acc = er.attacks[1].accuracy;
  summary.seconds = since(t_start);
  if (!cfg.out.empty()) {
    save_safetensors(cfg.out + "/model.safetensors", model.state_dict(),
                     {{"model", cfg.model.empty() ? "custom" : cfg.model}, {"method", cfg.method}, {"eps", std::to_string(o.eps())}});
    if (s.ema) save_safetensors(cfg.out + "/ema.safetensors", s.ema->weights());
    write_model_onnx(model, Shape(tx.shape().begin() + 1, tx.shape().end()), cfg.out + "/model.onnx");
    // adversarial.png: clean row, PGD row, perturbation row (magnified around gray).
    const std::vector<int64_t> rows = iota(0, std::min<int64_t>(n_test, 8));
    Tensor cx = take_rows(tx, rows), cy = take_rows(ty, rows);
    Tensor ax = make_attack("pgd", pgd_options(o.eps(), o.final_pgd_steps(), o.seed() + 13))->perturb(model, cx, cy, 0);
    Tensor delta;
    {
      NoGradGuard ng;
      delta = clamp((ax - cx) * (0.5 / std::max(o.eps(), 1e-12)) + 0.5, 0.0, 1.0);
    }
    std::vector<int64_t> clean_pred, adv_pred;
    {
      EvalModeGuard eval(model);
      clean_pred = argmax(predict(model, cx), 1).to_vector<int64_t>();
      adv_pred = argmax(predict(model, ax), 1).to_vector<int64_t>();
    }
    GridOptions go;
    go.cols = int64_t(rows.size()), go.scale = 3;
    write_png_image(cfg.out + "/adversarial.png",
                    make_labelled_grid({make_grid(concat({cx, ax, delta}, 0).to(Device::CPU), go), go.separator,
                                        int64_t(rows.size()), cy.to_vector<int64_t>(), clean_pred, adv_pred,
                                        p.test.class_names, text_scale_for(go.scale)}));
    write_text_atomic(cfg.out + "/summary.json", summary_json(summary, cfg));
  }
  return summary;
}

}  // namespace advgrad
