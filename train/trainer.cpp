#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "attacks/attack.h"
#include "attacks/evaluate.h"
#include "autograd/engine.h"
#include "core/parallel.h"
#include "core/sha256.h"
#include "data/image_write.h"
#include "data/load_dataset.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "nn/losses.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "nn/serialize.h"
#include "train/run_files.h"

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
  for (const auto& [key, t] : model.state_dict()) {
    Tensor d = t.to(Device::CPU).dense();
    h.update(d.raw_data(), size_t(d.numel()) * dtype_size(d.dtype()));
  }
  return h.hex_digest();
}

struct Trainer::State {
  TrainConfig cfg;
  std::shared_ptr<Module> model;
  std::unique_ptr<Optimizer> opt;
  std::unique_ptr<LRSchedule> schedule;
  Dataset train_data, test_data;
  std::unique_ptr<DataLoader> loader;
  std::vector<int64_t> val_rows;  // training-split indices held out for validation
  Checkpoint ck;                  // counters, history, current method
  StateDict best_weights;         // best by validation PGD accuracy (kept in memory, saved as best.safetensors)
  int64_t steps_per_epoch = 0;
};

Trainer::Trainer(TrainConfig config) : s_(std::make_unique<State>()) {
  config.validate();
  s_->cfg = std::move(config);
}
Trainer::~Trainer() = default;
Module& Trainer::model() { return *s_->model; }
const TrainConfig& Trainer::config() const { return s_->cfg; }
const StateDict& Trainer::best_weights() const { return s_->best_weights; }

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

// A stable stream number for the attack of global step `step` (attack seeds never repeat across steps).
uint64_t attack_stream(uint64_t step, uint64_t salt) { return step * 8 + salt; }

AttackOptions pgd_options(double eps, int steps, uint64_t seed) {
  AttackOptions o;
  o.eps = eps, o.steps = steps, o.step_size = 2.5 * eps / steps, o.seed = seed, o.random_start = true;
  return o;
}

bool all_finite(const Tensor& t) {
  Tensor d = t.to(Device::CPU).dense();
  const int64_t n = d.numel();
  if (d.dtype() == DType::F32) {
    const float* p = d.data<float>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  } else if (d.dtype() == DType::F64) {
    const double* p = d.data<double>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
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

}  // namespace

TrainSummary Trainer::run(const std::string& resume_dir) {
  State& s = *s_;
  auto t_start = Clock::now();
  if (!resume_dir.empty()) {
    check_resumable(resume_dir);
    // The checkpoint's config defines the run; only how it is watched and where it goes may change.
    Checkpoint probe = load_checkpoint(resume_dir + "/checkpoint", nullptr, nullptr);
    TrainConfig c = probe.config;
    c.threads = s.cfg.threads, c.quiet = s.cfg.quiet, c.stop_after_epochs = s.cfg.stop_after_epochs;
    c.out = s.cfg.out.empty() ? resume_dir : s.cfg.out;
    s.cfg = c;
  }
  TrainConfig& cfg = s.cfg;
  if (cfg.threads > 0) set_num_threads(cfg.threads);

  // Data: the last val_size training samples are held out for validation.
  const std::string dir = cfg.data.empty() ? default_fashion_mnist_dir() : cfg.data;
  s.train_data = load_dataset(dir, "train");
  s.test_data = load_dataset(dir, "test");
  const int64_t n_train_all = s.train_data.size();
  if (cfg.val_size >= n_train_all) throw ValueError("train: val_size must be smaller than the training split");
  int64_t train_end = n_train_all - cfg.val_size;
  if (cfg.limit > 0) train_end = std::min(train_end, cfg.limit);
  s.val_rows = iota(n_train_all - cfg.val_size, n_train_all);
  LoaderOptions lo;
  lo.batch_size = cfg.batch, lo.shuffle = true, lo.seed = cfg.seed, lo.subset = iota(0, train_end);
  s.loader = std::make_unique<DataLoader>(s.train_data, lo);
  s.steps_per_epoch = s.loader->num_batches();
  const int replays = cfg.method == "free" ? cfg.steps : 1;  // Free-AT: m optimizer steps per batch
  const int64_t total_steps = s.steps_per_epoch * cfg.epochs * replays;

  // Model, optimizer, schedule.
  Generator init_gen(cfg.seed, /*stream=*/1);
  s.model = make_model(cfg.model, init_gen);
  const ModelInfo& info = model_info(cfg.model);
  if (s.train_data.sample_shape != info.input_shape)
    throw ValueError("train: model " + cfg.model + " takes " + shape_str(info.input_shape) + " inputs, the data has " +
                     shape_str(s.train_data.sample_shape));
  if (cfg.optimizer == "sgd")
    s.opt = std::make_unique<SGD>(s.model->parameters(), cfg.lr, cfg.momentum, 0.0, cfg.weight_decay);
  else
    s.opt = std::make_unique<Adam>(s.model->parameters(), cfg.lr, 0.9, 0.999, 1e-8, cfg.weight_decay);
  if (cfg.schedule == "onecycle") {
    OneCycleOptions oc;
    oc.pct_start = cfg.onecycle_pct;
    s.schedule = std::make_unique<OneCycleLR>(cfg.lr, total_steps, oc);
  } else if (cfg.schedule == "cosine") {
    s.schedule = std::make_unique<CosineAnnealingLR>(cfg.lr, total_steps);
  } else if (cfg.schedule == "step") {
    s.schedule = std::make_unique<StepLR>(cfg.lr, std::max<int64_t>(1, total_steps / 3), 0.1);
  } else {
    s.schedule = std::make_unique<Constant>(cfg.lr);
  }

  s.ck = Checkpoint{};
  s.ck.config = cfg, s.ck.method = cfg.method;
  if (!resume_dir.empty()) {
    s.ck = load_checkpoint(resume_dir + "/checkpoint", s.model.get(), s.opt.get(), &s.best_weights);
    s.ck.config = cfg;
    // Older checkpoints did not keep the best weights; the run directory's copy is the best there is.
    const std::string old_best = resume_dir + "/best.safetensors";
    if (s.best_weights.empty() && s.ck.best_val_pgd >= 0 && fs::exists(old_best)) {
      s.best_weights = load_weights_file(old_best, cfg.model);
    }
    // Temporaries of writes a kill interrupted; only stale ones go (see remove_stale_temporaries).
    for (const std::string& d : {resume_dir, resume_dir + "/checkpoint", cfg.out, cfg.out + "/checkpoint"})
      remove_stale_temporaries(d);
  }
  if (!cfg.out.empty()) {
    fs::create_directories(cfg.out);
    write_text_atomic(cfg.out + "/config.json", cfg.to_json() + "\n");
  }

  TrainSummary summary;
  summary.seed = cfg.seed, summary.threads = num_threads();
  Module& model = *s.model;
  const Tensor val_x = s.train_data.images_float(s.val_rows), val_y = s.train_data.labels_tensor(s.val_rows);
  // A fixed training batch for the catastrophic-overfitting check.
  const std::vector<int64_t> probe_rows = iota(0, std::min<int64_t>(train_end, 512));
  const Tensor probe_x = s.train_data.images_float(probe_rows), probe_y = s.train_data.labels_tensor(probe_rows);

  int epochs_this_run = 0;
  for (int epoch = s.ck.epochs_done; epoch < cfg.epochs; ++epoch) {
    auto t_epoch = Clock::now();
    const std::string method = s.ck.method;
    EpochMetrics m;
    m.epoch = epoch + 1, m.method = method;
    double loss_sum = 0, clean_hits = 0, adv_hits = 0;
    int64_t seen = 0;
    Tensor free_delta;  // Free-AT keeps its perturbation across batches
    for (int64_t i = 0; i < s.steps_per_epoch; ++i) {
      Batch b = s.loader->batch(epoch, i);
      const int64_t B = b.y.numel();
      const int64_t progress_step = int64_t(epoch) * s.steps_per_epoch + i;
      double eps = cfg.eps;
      if (cfg.eps_ramp_epochs > 0)
        eps *= std::min(1.0, double(progress_step + 1) / double(cfg.eps_ramp_epochs * s.steps_per_epoch));
      m.eps = eps;

      for (int r = 0; r < replays; ++r) {
        const int64_t step = progress_step * replays + r;
        Tensor x_in = b.x, loss, logits, x_in_leaf;
        if (method == "pgd" || method == "fgsm-rs") {
          // PGD: K steps of 2.5 eps / K; FGSM-RS: make_attack's defaults (one step of 1.25 eps).
          AttackOptions o = pgd_options(eps, cfg.steps, cfg.seed);
          if (method == "fgsm-rs") o.step_size = 0;
          const int64_t k = int64_t(std::llround(cfg.adv_fraction * double(B)));
          if (k > 0 && eps > 0) {
            auto attack = make_attack(method == "pgd" ? "pgd" : "fgsm-rs", o);
            std::vector<int64_t> adv_rows = iota(0, k);
            Tensor xa = attack->perturb(model, take_rows(b.x, adv_rows), take_rows(b.y, adv_rows),
                                        attack_stream(uint64_t(step), 1));
            x_in = b.x.clone();
            put_rows(x_in, adv_rows, xa);
          }
          model.train();
          logits = model.forward(x_in);
          loss = cross_entropy(logits, b.y);
        } else if (method == "trades") {
          // Zhang et al.: maximise KL(f(x) || f(x')) from x + 0.001 N(0,1), then train on
          // CE(f(x), y) + beta * KL(f(x) || f(x')).
          Tensor x_adv;
          {
            EvalModeGuard eval(model);
            Tensor p_clean = softmax(predict(model, b.x), 1);
            Generator g = Generator(cfg.seed).fork(attack_stream(uint64_t(step), 2));
            NoGradGuard ng;
            x_adv = project(add(b.x, mul(randn(b.x.shape(), g), 0.001)), b.x, eps, Norm::Linf);
            for (int k = 0; k < cfg.steps; ++k) {
              EnableGradGuard eg;
              Tensor probe = x_adv.detach().requires_grad_();
              Tensor kl = kl_div(log_softmax(model.forward(probe), 1), p_clean);
              Tensor gx = grad({kl}, {probe})[0];
              NoGradGuard ng2;
              x_adv = project(add(x_adv, mul(sign(gx), 2.5 * eps / cfg.steps)), b.x, eps, Norm::Linf);
            }
          }
          model.train();
          logits = model.forward(b.x);
          Tensor adv_logits = model.forward(x_adv);
          loss = add(cross_entropy(logits, b.y), mul(kl_div(log_softmax(adv_logits, 1), softmax(logits, 1)), cfg.trades_beta));
          x_in = x_adv;
        } else if (method == "free") {
          // Shafahi et al.: one backward gives both the weight and the input gradient; the perturbation
          // persists across replays and batches.
          if (!free_delta.defined() || free_delta.shape() != b.x.shape()) free_delta = zeros_like(b.x);
          model.train();
          x_in_leaf = project(add(b.x, free_delta), b.x, eps, Norm::Linf).requires_grad_();
          logits = model.forward(x_in_leaf);
          loss = cross_entropy(logits, b.y);
          x_in = x_in_leaf.detach();
        } else {  // natural
          model.train();
          logits = model.forward(x_in);
          loss = cross_entropy(logits, b.y);
        }

        s.opt->zero_grad();
        backward(loss);  // for Free-AT this also fills the perturbed input's .grad
        if (method == "free") {
          NoGradGuard ng;
          Tensor gx = x_in_leaf.grad();
          free_delta = sub(project(add(add(b.x, free_delta), mul(sign(gx), eps)), b.x, eps, Norm::Linf), b.x);
        }
        const std::string bad = first_non_finite(model, /*values=*/false);
        if (!bad.empty())
          throw TrainingDiverged("train: epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(i + 1) +
                                 ": the gradient of parameter '" + bad + "' is NaN or Inf (loss " +
                                 std::to_string(loss.item()) + "); the last good checkpoint is kept" +
                                 (cfg.out.empty() ? "" : " in " + cfg.out + "/checkpoint"));
        if (cfg.clip_norm > 0) clip_grad_norm(s.opt->params(), cfg.clip_norm);
        apply_schedule(*s.opt, *s.schedule, step);
        m.lr = s.opt->lr();
        s.opt->step();
        // A finite gradient can still give non-finite weights (a huge LR, a bad optimizer buffer).
        const std::string bad_value = first_non_finite(model, /*values=*/true);
        if (!bad_value.empty())
          throw TrainingDiverged("train: epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(i + 1) +
                                 ": parameter '" + bad_value + "' is NaN or Inf after the optimizer step (lr " +
                                 std::to_string(m.lr) + "); the last good checkpoint is kept" +
                                 (cfg.out.empty() ? "" : " in " + cfg.out + "/checkpoint"));

        if (r == replays - 1) {
          NoGradGuard ng;
          loss_sum += loss.item() * double(B);
          adv_hits += accuracy_of(logits.detach(), b.y) * double(B);
          if (method == "natural") {
            clean_hits += accuracy_of(logits.detach(), b.y) * double(B);
          } else {
            EvalModeGuard eval(model);
            clean_hits += accuracy_of(model.forward(b.x), b.y) * double(B);
          }
          seen += B;
        }
      }
      if (on_progress && !cfg.quiet) on_progress(i + 1, s.steps_per_epoch, double(seen) / std::max(1e-9, since(t_epoch)));
    }
    m.train_loss = loss_sum / double(std::max<int64_t>(seen, 1));
    m.train_clean_acc = clean_hits / double(std::max<int64_t>(seen, 1));
    m.train_adv_acc = adv_hits / double(std::max<int64_t>(seen, 1));

    // Validation on the held-out samples: clean and PGD.
    {
      EvalModeGuard eval(model);
      EvalOptions eo;
      eo.batch_size = 500;
      AttackOptions vo = pgd_options(cfg.eps, cfg.val_pgd_steps, cfg.seed + 7);
      EvalReport vr = evaluate(model, val_x, val_y, {{"pgd", vo}}, eo);
      m.val_clean_acc = vr.clean_accuracy;
      m.val_pgd_acc = vr.robust_accuracy;
    }
    bool best_changed = false;
    if (m.val_pgd_acc > s.ck.best_val_pgd) {
      s.ck.best_val_pgd = m.val_pgd_acc;
      s.ck.best_epoch = epoch + 1;
      s.best_weights.clear();
      for (const auto& [k, t] : model.state_dict()) s.best_weights[k] = t.clone();
      best_changed = true;
    }

    // Catastrophic overfitting (Wong et al.): on a fixed training batch, PGD accuracy collapses while
    // FGSM accuracy stays high.
    bool stop = false;
    if (cfg.co_detect && (method == "fgsm-rs" || method == "free")) {
      AttackOptions fo;
      fo.eps = cfg.eps, fo.seed = cfg.seed;
      double fgsm = make_attack("fgsm", fo)->run(model, probe_x, probe_y).accuracy();
      double pgd = make_attack("pgd", pgd_options(cfg.eps, cfg.val_pgd_steps, cfg.seed))->run(model, probe_x, probe_y).accuracy();
      if (s.ck.co_best_pgd > 0.1 && pgd < 0.5 * s.ck.co_best_pgd && fgsm > pgd + 0.2) {
        m.note = "catastrophic overfitting: PGD accuracy on a training batch fell to " + std::to_string(pgd) +
                 " (best " + std::to_string(s.ck.co_best_pgd) + ") while FGSM accuracy is " + std::to_string(fgsm) +
                 "; " + restore_best_weights(model, s.best_weights) +
                 (cfg.co_fallback_pgd ? ", continuing with PGD" : ", stopping");
        if (cfg.co_fallback_pgd) s.ck.method = "pgd";
        else stop = true;
      }
      s.ck.co_best_pgd = std::max(s.ck.co_best_pgd, pgd);
    }

    m.seconds = since(t_epoch);
    s.ck.history.push_back(m);
    s.ck.epochs_done = epoch + 1;
    ++epochs_this_run;
    if (!cfg.out.empty()) {
      // The best weights are written when they change, and once per process (a resume may write to a new --out).
      const bool write_best = !s.best_weights.empty() && (best_changed || epochs_this_run == 1);
      if (write_best) save_safetensors(cfg.out + "/best.safetensors", s.best_weights);
      save_checkpoint(cfg.out + "/checkpoint", s.ck, model, *s.opt, write_best ? &s.best_weights : nullptr);
      std::string lines;
      for (const auto& h : s.ck.history) lines += metrics_json(h) + "\n";
      write_text_atomic(cfg.out + "/metrics.jsonl", lines);
      write_text_atomic(cfg.out + "/curves.svg",
                        curves_svg(s.ck.history, cfg.model + " " + cfg.method + " eps " + std::to_string(cfg.eps)));
    }
    if (on_epoch) on_epoch(m);
    if (stop) {
      summary.stop_reason = m.note;
      break;
    }
    if (cfg.stop_after_epochs > 0 && epochs_this_run >= cfg.stop_after_epochs && epoch + 1 < cfg.epochs) {
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
  const int64_t n_test = cfg.test_limit > 0 ? std::min(cfg.test_limit, s.test_data.size()) : s.test_data.size();
  const std::vector<int64_t> test_rows = iota(0, n_test);
  const Tensor tx = s.test_data.images_float(test_rows), ty = s.test_data.labels_tensor(test_rows);
  AttackOptions fo;
  fo.eps = cfg.eps, fo.seed = cfg.seed + 11;
  EvalOptions eo;
  eo.batch_size = 500;
  EvalReport er = evaluate(model, tx, ty, {{"fgsm", fo}, {"pgd", pgd_options(cfg.eps, cfg.final_pgd_steps, cfg.seed + 13)}}, eo);
  summary.test_samples = n_test;
  summary.clean_acc = er.clean_accuracy;
  summary.fgsm_acc = er.attacks[0].accuracy;
  summary.pgd_acc = er.attacks[1].accuracy;
  summary.param_sha256 = parameter_sha256(model);
  summary.seconds = since(t_start);
  if (!cfg.out.empty()) {
    save_safetensors(cfg.out + "/model.safetensors", model.state_dict(),
                     {{"model", cfg.model}, {"method", cfg.method}, {"eps", std::to_string(cfg.eps)}});
    // adversarial.png: clean row, PGD row, perturbation row (magnified around gray).
    const std::vector<int64_t> rows = iota(0, std::min<int64_t>(n_test, 8));
    Tensor cx = take_rows(tx, rows), cy = take_rows(ty, rows);
    Tensor ax = make_attack("pgd", pgd_options(cfg.eps, cfg.final_pgd_steps, cfg.seed + 13))->perturb(model, cx, cy, 0);
    Tensor delta;
    {
      NoGradGuard ng;
      delta = clamp(add(mul(sub(ax, cx), 0.5 / std::max(cfg.eps, 1e-12)), 0.5), 0.0, 1.0);
    }
    GridOptions go;
    go.cols = int64_t(rows.size()), go.scale = 3;
    write_png_grid(cfg.out + "/adversarial.png", concat({cx, ax, delta}, 0), go);
    write_text_atomic(cfg.out + "/summary.json", summary_json(summary, cfg));
  }
  return summary;
}

}  // namespace advgrad
