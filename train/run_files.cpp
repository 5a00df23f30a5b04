#include "advgrad/train/run_files.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "advgrad/core/cpu_features.h"
#include "advgrad/data/file_io.h"
#include "advgrad/data/html_text.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"
#include "advgrad/train/build_info.h"
#ifdef ADVGRAD_HAVE_ONNX
#include "advgrad/onnx/save_onnx.h"
#endif
#include "advgrad/train/json_fields.h"

namespace advgrad {

namespace fs = std::filesystem;

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

std::string read_text(const std::string& path, size_t max_bytes) {
  auto bytes = read_file_bytes(path, max_bytes);
  return std::string(bytes.begin(), bytes.end());
}

std::string metrics_json(const EpochMetrics& m) {
  nlohmann::ordered_json j;
  j["epoch"] = m.epoch, j["method"] = m.method, j["train_loss"] = m.train_loss;
  j["train_clean_acc"] = m.train_clean_acc, j["train_adv_acc"] = m.train_adv_acc;
  j["val_clean_acc"] = m.val_clean_acc, j["val_pgd_acc"] = m.val_pgd_acc;
  j["lr"] = m.lr, j["eps"] = m.eps, j["seconds"] = m.seconds, j["note"] = m.note;
  j["train_adv_acc_of"] = m.train_adv_acc_of, j["train_clean_acc_of"] = m.train_clean_acc_of;
  if (m.ema_val_pgd_acc >= 0) j["ema_val_clean_acc"] = m.ema_val_clean_acc, j["ema_val_pgd_acc"] = m.ema_val_pgd_acc;
  if (!m.best_from.empty()) j["best_from"] = m.best_from;
  if (!m.step_losses.empty()) {
    // Six significant digits (plenty for a plot): a float widened to double would print 17.
    nlohmann::ordered_json losses = nlohmann::ordered_json::array();
    for (float v : m.step_losses) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", double(v));
      losses.push_back(std::strtod(buf, nullptr));
    }
    j["step_losses"] = losses;
  }
  return j.dump();
}

namespace {

namespace jf = json_fields;

// step_losses: an array of finite losses >= 0, one per step (at most kMaxStepLosses).
constexpr size_t kMaxStepLosses = size_t(1) << 24;
std::vector<float> step_losses_from(const nlohmann::json& j, const std::string& source) {
  const nlohmann::json& a = j.at("step_losses");
  if (!a.is_array() || a.size() > kMaxStepLosses)
    throw IOError(source + ": field 'step_losses' must be an array of at most " + std::to_string(kMaxStepLosses) +
                  " losses, got " + jf::shown(a));
  std::vector<float> out;
  out.reserve(a.size());
  for (const auto& v : a) {
    const double d = v.is_number() ? v.get<double>() : NAN;
    if (!(std::isfinite(d) && d >= 0 && d <= double(std::numeric_limits<float>::max())))
      throw IOError(source + ": field 'step_losses' must hold finite losses >= 0, got " + jf::shown(v));
    out.push_back(float(d));
  }
  return out;
}

EpochMetrics metrics_from(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw IOError(source + ": a metrics line is not a JSON object");
  EpochMetrics m;
  m.epoch = int(jf::get_int(j, "epoch", 1, TrainLimits::max_epochs, source));
  m.method = jf::get_string(j, "method", source);
  if (!is_training_method(m.method)) throw IOError(source + ": field 'method' names no training method: '" + m.method + "'");
  m.train_loss = jf::get_number(j, "train_loss", 0, kAnyPositive, source);
  m.train_clean_acc = jf::get_number(j, "train_clean_acc", 0, 1, source);
  m.train_adv_acc = jf::get_number(j, "train_adv_acc", 0, 1, source);
  m.val_clean_acc = jf::get_number(j, "val_clean_acc", 0, 1, source);
  m.val_pgd_acc = jf::get_number(j, "val_pgd_acc", 0, 1, source);
  m.lr = jf::get_number(j, "lr", 0, kAnyPositive, source);
  m.eps = jf::get_number(j, "eps", 0, 1, source);
  m.seconds = jf::get_number(j, "seconds", 0, kAnyPositive, source);
  m.note = jf::get_string(j, "note", source);
  // Added later (issue 13): lines written before have none of them.
  if (j.contains("train_adv_acc_of")) m.train_adv_acc_of = jf::get_string(j, "train_adv_acc_of", source);
  if (j.contains("train_clean_acc_of")) m.train_clean_acc_of = jf::get_string(j, "train_clean_acc_of", source);
  if (j.contains("ema_val_pgd_acc")) {
    m.ema_val_clean_acc = jf::get_number(j, "ema_val_clean_acc", 0, 1, source);
    m.ema_val_pgd_acc = jf::get_number(j, "ema_val_pgd_acc", 0, 1, source);
  }
  if (j.contains("best_from")) {
    m.best_from = jf::get_string(j, "best_from", source);
    if (m.best_from != "model" && m.best_from != "ema")
      throw IOError(source + ": field 'best_from' must be \"model\" or \"ema\", got " + jf::shown(j.at("best_from")));
  }
  if (j.contains("step_losses")) m.step_losses = step_losses_from(j, source);  // added later (issue 16)
  return m;
}

// A file name trainer.json may point at: a plain name inside the checkpoint directory, never a path.
std::string plain_file_name(const nlohmann::json& j, const std::string& field, const std::string& source) {
  std::string name = jf::get_string(j, field, source);
  const bool plain = !name.empty() && name.size() <= 255 && name.find('/') == std::string::npos &&
                     name.find('\0') == std::string::npos && name[0] != '.';
  if (!plain) throw IOError(source + ": field '" + field + "' must be a file name in the checkpoint directory, got " + jf::shown(j.at(field)));
  return name;
}

std::string best_file_name(int epoch) { return "best-e" + std::to_string(epoch) + ".safetensors"; }

// model-e<N>.safetensors, optimizer-e<N>.safetensors or best-e<N>.safetensors (not their temporaries).
bool is_checkpoint_tensor_file(const std::string& name) {
  for (const char* prefix : {"model-e", "optimizer-e", "best-e", "ema-e", "method-e"}) {
    const std::string p = prefix, suffix = ".safetensors";
    if (name.size() <= p.size() + suffix.size() || name.compare(0, p.size(), p) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string digits = name.substr(p.size(), name.size() - p.size() - suffix.size());
    if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
  }
  return false;
}

// Runs `f`; any advgrad error becomes an IOError that names `file` (once: a message naming it already
// passes unchanged).
template <class F>
void naming_file(const std::string& file, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string what = e.what();
    throw IOError(what.find(file) == std::string::npos ? file + ": " + what : what);
  }
}

// A tensor name from a file, quoted and escaped for a message.
std::string quoted(const std::string& name) {
  std::string s = nlohmann::json(name).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  s = s.substr(1, s.size() - 2);  // JSON's escapes, without its double quotes
  return "'" + (s.size() > 80 ? s.substr(0, 77) + "..." : s) + "'";
}

// The most buffers any optimizer here keeps per parameter (Adam: exp_avg and exp_avg_sq), besides a count.
constexpr uint64_t kMaxBuffersPerParameter = 2;

// Reads an optimizer file into `opt` without trusting its header: every entry must be "step" (one
// count) or "<i>.step" (one count) or a buffer "<i>.<name>" shaped and typed like parameter i, checked
// before any tensor data is read, and the data read is capped at what a full state can take. So a file
// naming an extra 4 GiB tensor is refused from its header. load_state then checks the buffer names.
void load_optimizer_file(const std::string& file, Optimizer& opt) {
  const SafetensorsHeader header = read_safetensors_header(file);
  const std::vector<Tensor>& params = opt.params();
  uint64_t most = 8 * (1 + uint64_t(params.size()));
  for (const Tensor& p : params) most += kMaxBuffersPerParameter * uint64_t(p.numel()) * dtype_size(p.dtype());
  for (const auto& [key, info] : header.tensors) {
    const std::string entry = quoted(key) + " (" + dtype_name(info.dtype) + " " + shape_str(info.shape) + ")";
    const size_t dot = key.find('.');
    const std::string index = key.substr(0, dot), field = dot == std::string::npos ? "" : key.substr(dot + 1);
    if (key == "step" || (field == "step" && !index.empty())) {
      if (shape_numel(info.shape) != 1) throw IOError(file + ": entry " + entry + " must be a single step count");
      if (key == "step") continue;
    }
    const bool numbered = dot != std::string::npos && !index.empty() && index.size() <= 12 && !field.empty() &&
                          std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!numbered) throw IOError(file + ": unexpected entry " + entry + " (optimizer state is 'step' and '<parameter>.<buffer>')");
    const uint64_t i = std::stoull(index);
    if (i >= params.size())
      throw IOError(file + ": entry " + entry + " refers to parameter " + index + " but the optimizer has " +
                    std::to_string(params.size()));
    if (field == "step") continue;
    const Tensor& p = params[size_t(i)];
    if (info.shape != p.shape() || info.dtype != p.dtype())
      throw IOError(file + ": entry " + entry + " does not match parameter " + index + " (" + dtype_name(p.dtype()) +
                    " " + shape_str(p.shape()) + ")");
  }
  naming_file(file, [&] { opt.load_state(load_safetensors(file, most).tensors); });
}

}  // namespace

StateDict load_weights_file(const std::string& file, const std::string& model) {
  // Read into a scratch model: names and shapes are checked before any data is read, only its tensors
  // are read, values are checked; the tensors stay alive in the returned dict after the model goes.
  Generator gen(0);
  std::shared_ptr<Module> scratch = make_model(model, gen);
  naming_file(file, [&] { load_safetensors_into(*scratch, file); });
  return scratch->state_dict();
}

EpochMetrics metrics_from_json(const std::string& line, const std::string& source) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IOError(source + ": a metrics line is not a JSON object");
  return metrics_from(j, source);
}

std::string summary_json(const TrainSummary& s, const TrainConfig& c) {
  nlohmann::ordered_json j;
  j["model"] = c.model, j["method"] = c.method, j["eps"] = c.eps;
  j["clean_acc"] = s.clean_acc, j["fgsm_acc"] = s.fgsm_acc, j["pgd20_acc"] = s.pgd_acc;
  j["pgd_steps"] = c.final_pgd_steps, j["test_samples"] = s.test_samples;
  j["test_split_samples"] = s.test_split_samples;  // added in issue 16: test_samples equal to it = the full test set
  j["seconds"] = s.seconds, j["param_sha256"] = s.param_sha256, j["threads"] = s.threads, j["seed"] = s.seed;
  j["epochs_done"] = s.epochs_done, j["finished"] = s.finished, j["stop_reason"] = s.stop_reason;
  j["cpu_path"] = cpu_path_name(cpu_path());  // which kernels ran: results are bit-reproducible per path
  return j.dump(2) + "\n";
}

std::string config_json(const TrainConfig& c) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(c.to_json());
  // How the run was made, after the recipe (TrainConfig::from_json reads the recipe and ignores these).
  const BuildInfo& b = build_info();
  j["advgrad_version"] = b.version;
  j["build"] = {{"compiler", b.compiler},
                {"build_type", b.build_type},
                {"cpu_build", b.native ? "native" : "portable"},
                {"openmp", b.openmp}};
  j["cpu_path"] = cpu_path_name(cpu_path());
  return j.dump(2) + "\n";
}

std::string default_run_name(const std::string& model, const std::string& method, std::time_t when) {
  // An ONNX model by its file's stem; anything but letters, digits, '.', '_' and '-' becomes '_'.
  std::string stem = fs::path(model).stem().string();
  if (stem.empty()) stem = "model";
  std::string name = stem + "-" + method + "-";
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') ch = '_';
  std::tm local{};
  localtime_r(&when, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  return name + stamp;
}

std::string create_new_run_directory(const std::string& parent, const std::string& name) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw IOError(parent + ": cannot create the runs directory: " + ec.message());
  // create_directory is false for a directory that exists: the first free name wins, also between two
  // runs started in the same second.
  for (int k = 1; k <= 10000; ++k) {
    const std::string dir = (fs::path(parent) / (k == 1 ? name : name + "-" + std::to_string(k))).string();
    if (fs::create_directory(dir, ec)) return dir;
    if (ec && !fs::exists(dir)) throw IOError(dir + ": cannot create the run directory: " + ec.message());  // a file of that name: next
  }
  throw IOError((fs::path(parent) / name).string() + ": 10000 run directories of this name exist already");
}

std::string eps_text(double eps) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4g", eps);
  if (std::strtod(buf, nullptr) == eps) return buf;  // 0.1, 0.3, 0.0314
  const double k = std::round(eps * 255);
  if (k >= 1 && k <= 255 && std::fabs(k / 255 - eps) <= 1e-12) {
    std::snprintf(buf, sizeof buf, "%.0f/255", k);  // 8/255: what --eps 8/255 gave
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%g", eps);
  return buf;
}

std::string curves_svg(const std::vector<EpochMetrics>& h, const std::string& title) {
  const double W = 640, H = 360, left = 60, right = 60, top = 40, bottom = 50;
  const double pw = W - left - right, ph = H - top - bottom;
  const size_t n = h.size();
  // A short run also shows every step's loss: epoch e's steps lie between e - 1 and e on the epoch axis,
  // which then starts at 0; otherwise it runs from epoch 1 to n.
  bool steps = n > 0 && n <= kStepLossEpochs;
  for (const auto& m : h) steps = steps && !m.step_losses.empty();
  double max_loss = 1e-9;
  for (const auto& m : h) {
    max_loss = std::max(max_loss, m.train_loss);
    if (steps)
      for (float v : m.step_losses) max_loss = std::max(max_loss, double(v));
  }
  const double lo = steps ? 0 : 1, hi = double(n);
  auto x_at = [&](double epoch) { return hi > lo ? left + pw * (epoch - lo) / (hi - lo) : left + pw / 2; };
  auto x_of = [&](size_t i) { return x_at(double(i + 1)); };  // where epoch i + 1's end-of-epoch values go
  auto y_loss = [&](double v) { return top + ph * (1 - v / max_loss); };
  auto y_acc = [&](double v) { return top + ph * (1 - v); };
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << html_escape(title) << "</text>\n";
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k) {  // accuracy grid on the right axis, loss labels on the left
    double y = top + ph * k / 4.0;
    o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#eee\"/>\n";
    o << "<text x=\"" << left + pw + 6 << "\" y=\"" << y + 4 << "\">" << (100 - 25 * k) << "%</text>\n";
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << std::setprecision(2)
      << max_loss * (1 - k / 4.0) << std::setprecision(1) << "</text>\n";
  }
  if (steps) o << "<text x=\"" << x_at(0) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">0</text>\n";
  for (size_t i = 0; i < n; ++i)
    o << "<text x=\"" << x_of(i) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">" << h[i].epoch
      << "</text>\n";
  // The axes' names: epoch below, loss on the left, accuracy on the right (both turned upright).
  o << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">epoch</text>\n";
  const double mid = top + ph / 2;
  o << "<text x=\"16\" y=\"" << mid << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " << mid
    << ")\">loss</text>\n";
  o << "<text x=\"" << W - 10 << "\" y=\"" << mid << "\" text-anchor=\"middle\" transform=\"rotate(90 " << W - 10
    << " " << mid << ")\">accuracy</text>\n";
  auto legend = [&](const char* color, const char* label, int row) {
    o << "<rect x=\"" << left + 10 << "\" y=\"" << top + 8 + 16 * row << "\" width=\"12\" height=\"4\" fill=\""
      << color << "\"/><text x=\"" << left + 28 << "\" y=\"" << top + 14 + 16 * row << "\">" << label << "</text>\n";
  };
  int row = 0;
  if (steps) {  // under the epoch curves
    o << "<polyline class=\"step-loss\" fill=\"none\" stroke=\"#f4a6a6\" stroke-width=\"1\" points=\"";
    for (size_t i = 0; i < n; ++i) {
      const size_t s = h[i].step_losses.size();
      for (size_t j = 0; j < s; ++j)
        o << x_at(double(i) + double(j + 1) / double(s)) << "," << y_loss(h[i].step_losses[j]) << " ";
    }
    o << "\"/>\n";
    legend("#f4a6a6", "train loss per step (left axis)", row++);
  }
  auto series = [&](const char* color, const char* label, auto value, auto y_of) {
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < n; ++i) o << x_of(i) << "," << y_of(value(h[i])) << " ";
    o << "\"/>\n";
    for (size_t i = 0; i < n; ++i)
      o << "<circle cx=\"" << x_of(i) << "\" cy=\"" << y_of(value(h[i])) << "\" r=\"3\" fill=\"" << color << "\"/>\n";
    legend(color, label, row++);
  };
  series("#d62728", "train loss, epoch mean (left axis)", [](const EpochMetrics& m) { return m.train_loss; }, y_loss);
  series("#1f77b4", "validation clean accuracy", [](const EpochMetrics& m) { return m.val_clean_acc; }, y_acc);
  series("#2ca02c", "validation PGD accuracy", [](const EpochMetrics& m) { return m.val_pgd_acc; }, y_acc);
  o << "</svg>\n";
  return o.str();
}

void write_model_onnx(Module& model, const Shape& sample_shape, const std::string& path) {
#ifdef ADVGRAD_HAVE_ONNX
  try {
    save_onnx(model, sample_shape, path);
  } catch (const ValueError& e) {
    std::fprintf(stderr, "warning: %s not written: %s\n", path.c_str(), e.what());
  }
#else
  (void)model, (void)sample_shape, (void)path;  // built with -DADVGRAD_ONNX=OFF: no model.onnx
#endif
}

void save_checkpoint(const std::string& dir, const Checkpoint& ck, const Module& model, const Optimizer& opt,
                     const StateDict* best, const StateDict* ema, const StateDict* method_state) {
  fs::create_directories(dir);
  const std::string tag = "-e" + std::to_string(ck.epochs_done);
  const std::string model_file = "model" + tag + ".safetensors", optimizer_file = "optimizer" + tag + ".safetensors";
  const std::string best_file = ck.best_epoch > 0 ? best_file_name(ck.best_epoch) : "";
  save_safetensors(dir + "/" + model_file, model.state_dict());
  save_safetensors(dir + "/" + optimizer_file, opt.state());
  if (best && !best_file.empty()) save_safetensors(dir + "/" + best_file, *best);
  const std::string ema_file = ema && !ema->empty() ? "ema" + tag + ".safetensors" : "";
  const std::string method_file = method_state && !method_state->empty() ? "method" + tag + ".safetensors" : "";
  if (!ema_file.empty()) save_safetensors(dir + "/" + ema_file, *ema);
  if (!method_file.empty()) save_safetensors(dir + "/" + method_file, *method_state);
  nlohmann::ordered_json j;
  j["format"] = "advgrad-checkpoint-1";
  j["epochs_done"] = ck.epochs_done, j["method"] = ck.method;
  j["best_val_pgd"] = ck.best_val_pgd, j["co_best_pgd"] = ck.co_best_pgd;
  j["model_file"] = model_file, j["optimizer_file"] = optimizer_file;
  if (!best_file.empty()) j["best_epoch"] = ck.best_epoch, j["best_file"] = best_file;
  if (!ema_file.empty()) j["ema_file"] = ema_file;
  if (!method_file.empty()) j["method_file"] = method_file;
  if (!ck.random_state.empty()) {
    nlohmann::ordered_json rs = nlohmann::ordered_json::object();
    for (const auto& [name, offset] : ck.random_state) rs[name] = offset;
    j["random_state"] = rs;
  }
  j["config"] = nlohmann::ordered_json::parse(ck.config.to_json());
  nlohmann::ordered_json hist = nlohmann::ordered_json::array();
  for (const auto& m : ck.history) hist.push_back(nlohmann::ordered_json::parse(metrics_json(m)));
  j["history"] = hist;
  write_text_atomic(dir + "/trainer.json", j.dump(2));
  // The tensor files of earlier epochs are no longer referenced (temporaries are remove_stale_temporaries' job).
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (is_checkpoint_tensor_file(name) && name != model_file && name != optimizer_file && name != best_file &&
        name != ema_file && name != method_file)
      fs::remove(entry.path());
  }
}

CheckpointIndex parse_trainer_json(const std::string& text, const std::string& source) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IOError(source + ": not an advgrad checkpoint (not a JSON object)");
  if (jf::get_string(j, "format", source) != "advgrad-checkpoint-1")
    throw IOError(source + ": not an advgrad checkpoint (format " + jf::shown(j.at("format")) + ")");
  CheckpointIndex ix;
  Checkpoint& ck = ix.ck;
  const nlohmann::json& config = jf::field(j, "config", source);
  if (!config.is_object()) throw IOError(source + ": field 'config' must be an object");
  ck.config = TrainConfig::from_json(config.dump(), source + " (config)");
  ck.epochs_done = int(jf::get_int(j, "epochs_done", 0, ck.config.epochs, source));
  ck.method = jf::get_string(j, "method", source);
  if (!is_training_method(ck.method)) throw IOError(source + ": field 'method' names no training method: '" + ck.method + "'");
  ck.best_val_pgd = jf::get_number(j, "best_val_pgd", -1, 1, source);
  ck.co_best_pgd = jf::get_number(j, "co_best_pgd", -1, 1, source);
  ix.model_file = plain_file_name(j, "model_file", source);
  ix.optimizer_file = plain_file_name(j, "optimizer_file", source);
  if (j.contains("best_epoch")) {  // absent in checkpoints from before best weights were kept in them
    ck.best_epoch = int(jf::get_int(j, "best_epoch", 1, ck.epochs_done, source));
    ix.best_file = best_file_name(ck.best_epoch);
  }
  // Added later (issue 13); absent in older checkpoints.
  if (j.contains("ema_file")) ix.ema_file = plain_file_name(j, "ema_file", source);
  if (j.contains("method_file")) ix.method_file = plain_file_name(j, "method_file", source);
  if (j.contains("random_state")) {
    const nlohmann::json& rs = j.at("random_state");
    if (!rs.is_object()) throw IOError(source + ": field 'random_state' must be an object of generator offsets");
    for (auto it = rs.begin(); it != rs.end(); ++it)
      ck.random_state.emplace_back(it.key(), uint64_t(jf::get_int(rs, it.key(), 0, INT64_MAX, source + " (random_state)")));
  }
  const nlohmann::json& hist = jf::field(j, "history", source);
  if (!hist.is_array() || hist.size() != size_t(ck.epochs_done))
    throw IOError(source + ": field 'history' must be an array of one entry per finished epoch (" +
                  std::to_string(ck.epochs_done) + ")");
  for (const auto& m : hist) {
    ck.history.push_back(metrics_from(m, source + " (history)"));
    if (ck.history.back().epoch != int(ck.history.size()))
      throw IOError(source + ": history entry " + std::to_string(ck.history.size()) + " says epoch " +
                    std::to_string(ck.history.back().epoch));
  }
  return ix;
}

namespace {
// Weights shaped like `model`'s state_dict (any Module), checked as load_safetensors_into checks them.
StateDict load_weights_like(const std::string& file, const Module& model) {
  StateDict into;
  for (const auto& [k, t] : model.state_dict()) into[k] = t.clone();
  naming_file(file, [&] { load_safetensors_into(file, into); });
  return into;
}
}  // namespace

Checkpoint load_checkpoint(const std::string& dir, Module* model, Optimizer* opt, StateDict* best, StateDict* ema,
                           StateDict* method_state) {
  const std::string path = dir + "/trainer.json";
  CheckpointIndex ix = parse_trainer_json(read_text(path), path);
  if (model) {
    // Names and shapes checked against the model before any data is read (a tampered file's claims cost nothing).
    const std::string file = dir + "/" + ix.model_file;
    naming_file(file, [&] { load_safetensors_into(*model, file); });
  }
  if (opt) load_optimizer_file(dir + "/" + ix.optimizer_file, *opt);
  auto weights = [&](const std::string& name) {
    return model ? load_weights_like(dir + "/" + name, *model) : load_weights_file(dir + "/" + name, ix.ck.config.model);
  };
  if (best && !ix.best_file.empty()) *best = weights(ix.best_file);
  if (ema && !ix.ema_file.empty()) *ema = weights(ix.ema_file);
  if (method_state && !ix.method_file.empty()) {
    const std::string file = dir + "/" + ix.method_file;
    naming_file(file, [&] { *method_state = load_safetensors(file).tensors; });
  }
  return ix.ck;
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    // NAME.tmp.<pid>.<n>, as write_file_atomic names them.
    const size_t n_dot = name.rfind('.');
    if (n_dot == std::string::npos || n_dot == 0) continue;
    const size_t pid_dot = name.rfind('.', n_dot - 1);
    if (pid_dot == std::string::npos || pid_dot < 4 || name.compare(pid_dot - 4, 4, ".tmp") != 0) continue;
    const std::string pid_text = name.substr(pid_dot + 1, n_dot - pid_dot - 1), n_text = name.substr(n_dot + 1);
    auto digits = [](const std::string& t) {
      return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(pid_text) || !digits(n_text) || !entry.is_regular_file(ec)) continue;
    const pid_t pid = pid_t(std::stol(pid_text));
    const bool stale = pid == ::getpid() || pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH);
    if (stale && fs::remove(entry.path(), ec)) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace advgrad
