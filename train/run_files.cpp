#include "train/run_files.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/file_io.h"
#include "nn/serialize.h"

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
  return j.dump();
}

EpochMetrics metrics_from_json(const std::string& line, const std::string& source) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IOError(source + ": a metrics line is not a JSON object");
  EpochMetrics m;
  try {
    m.epoch = j.at("epoch"), m.method = j.at("method"), m.train_loss = j.at("train_loss");
    m.train_clean_acc = j.at("train_clean_acc"), m.train_adv_acc = j.at("train_adv_acc");
    m.val_clean_acc = j.at("val_clean_acc"), m.val_pgd_acc = j.at("val_pgd_acc");
    m.lr = j.at("lr"), m.eps = j.at("eps"), m.seconds = j.at("seconds"), m.note = j.at("note");
  } catch (const nlohmann::json::exception& e) {
    throw IOError(source + ": bad metrics line (" + e.what() + ")");
  }
  return m;
}

std::string summary_json(const TrainSummary& s, const TrainConfig& c) {
  nlohmann::ordered_json j;
  j["model"] = c.model, j["method"] = c.method, j["eps"] = c.eps;
  j["clean_acc"] = s.clean_acc, j["fgsm_acc"] = s.fgsm_acc, j["pgd20_acc"] = s.pgd_acc;
  j["pgd_steps"] = c.final_pgd_steps, j["test_samples"] = s.test_samples;
  j["seconds"] = s.seconds, j["param_sha256"] = s.param_sha256, j["threads"] = s.threads, j["seed"] = s.seed;
  j["epochs_done"] = s.epochs_done, j["finished"] = s.finished, j["stop_reason"] = s.stop_reason;
  return j.dump(2) + "\n";
}

std::string curves_svg(const std::vector<EpochMetrics>& h, const std::string& title) {
  const double W = 640, H = 360, left = 60, right = 60, top = 40, bottom = 50;
  const double pw = W - left - right, ph = H - top - bottom;
  const size_t n = h.size();
  double max_loss = 1e-9;
  for (const auto& m : h) max_loss = std::max(max_loss, m.train_loss);
  auto x_of = [&](size_t i) { return left + (n > 1 ? pw * double(i) / double(n - 1) : pw / 2); };
  auto y_loss = [&](double v) { return top + ph * (1 - v / max_loss); };
  auto y_acc = [&](double v) { return top + ph * (1 - v); };
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n";
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
  for (size_t i = 0; i < n; ++i)
    o << "<text x=\"" << x_of(i) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">" << h[i].epoch
      << "</text>\n";
  o << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">epoch</text>\n";
  auto series = [&](const char* color, const char* label, int row, auto value, auto y_of) {
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < n; ++i) o << x_of(i) << "," << y_of(value(h[i])) << " ";
    o << "\"/>\n";
    for (size_t i = 0; i < n; ++i)
      o << "<circle cx=\"" << x_of(i) << "\" cy=\"" << y_of(value(h[i])) << "\" r=\"3\" fill=\"" << color << "\"/>\n";
    o << "<rect x=\"" << left + 10 << "\" y=\"" << top + 8 + 16 * row << "\" width=\"12\" height=\"4\" fill=\""
      << color << "\"/><text x=\"" << left + 28 << "\" y=\"" << top + 14 + 16 * row << "\">" << label << "</text>\n";
  };
  series("#d62728", "train loss (left axis)", 0, [](const EpochMetrics& m) { return m.train_loss; }, y_loss);
  series("#1f77b4", "validation clean accuracy", 1, [](const EpochMetrics& m) { return m.val_clean_acc; }, y_acc);
  series("#2ca02c", "validation PGD accuracy", 2, [](const EpochMetrics& m) { return m.val_pgd_acc; }, y_acc);
  o << "</svg>\n";
  return o.str();
}

void save_checkpoint(const std::string& dir, const Checkpoint& ck, const Module& model, const Optimizer& opt) {
  fs::create_directories(dir);
  const std::string tag = "-e" + std::to_string(ck.epochs_done);
  save_safetensors(dir + "/model" + tag + ".safetensors", model.state_dict());
  save_safetensors(dir + "/optimizer" + tag + ".safetensors", opt.state());
  nlohmann::ordered_json j;
  j["format"] = "advgrad-checkpoint-1";
  j["epochs_done"] = ck.epochs_done, j["method"] = ck.method;
  j["best_val_pgd"] = ck.best_val_pgd, j["co_best_pgd"] = ck.co_best_pgd;
  j["model_file"] = "model" + tag + ".safetensors", j["optimizer_file"] = "optimizer" + tag + ".safetensors";
  j["config"] = nlohmann::ordered_json::parse(ck.config.to_json());
  nlohmann::ordered_json hist = nlohmann::ordered_json::array();
  for (const auto& m : ck.history) hist.push_back(nlohmann::ordered_json::parse(metrics_json(m)));
  j["history"] = hist;
  write_text_atomic(dir + "/trainer.json", j.dump(2));
  // The previous epoch's tensor files are no longer referenced.
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    bool ours = (name.rfind("model-e", 0) == 0 || name.rfind("optimizer-e", 0) == 0);
    if (ours && name.find(tag + ".safetensors") == std::string::npos) fs::remove(entry.path());
  }
}

Checkpoint load_checkpoint(const std::string& dir, Module* model, Optimizer* opt) {
  const std::string path = dir + "/trainer.json";
  auto j = nlohmann::json::parse(read_text(path), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "advgrad-checkpoint-1")
    throw IOError(path + ": not an advgrad checkpoint");
  Checkpoint ck;
  try {
    ck.config = TrainConfig::from_json(j.at("config").dump(), path);
    ck.epochs_done = j.at("epochs_done");
    ck.method = j.at("method");
    ck.best_val_pgd = j.at("best_val_pgd"), ck.co_best_pgd = j.at("co_best_pgd");
    for (const auto& m : j.at("history")) ck.history.push_back(metrics_from_json(m.dump(), path));
    if (model) model->load_state_dict(load_safetensors(dir + "/" + j.at("model_file").get<std::string>()).tensors);
    if (opt) opt->load_state(load_safetensors(dir + "/" + j.at("optimizer_file").get<std::string>()).tensors);
  } catch (const nlohmann::json::exception& e) {
    throw IOError(path + ": " + e.what());
  }
  if (ck.epochs_done < 0 || ck.epochs_done > ck.config.epochs) throw IOError(path + ": bad epoch count");
  return ck;
}

}  // namespace advgrad
