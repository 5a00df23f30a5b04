#include "advgrad/cli/eval_outputs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "advgrad/autograd/ops.h"
#include "advgrad/core/error.h"
#include "advgrad/nn/serialize.h"

namespace advgrad::cli {

// ---- per-sample results ----

namespace {
bool is_csv(const std::string& path) { return path.size() > 4 && ends_with(path, ".csv"); }
bool is_jsonl(const std::string& path) { return path.size() > 6 && ends_with(path, ".jsonl"); }

// Enough digits to tell a norm at eps from one just above it.
std::string norm_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

CLI::Validator per_sample_path() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return is_csv(text) || is_jsonl(text) ? "" : "must end in .csv or .jsonl (the format), got '" + text + "'";
      },
      "FILE.csv|.jsonl");
}

void write_per_sample(const std::string& path, const Samples& s, const EvalReport& rep) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IOError(path + ": cannot be written");
  const std::vector<int64_t> labels = s.y.to_vector<int64_t>();
  if (is_csv(path)) {
    out << "index,label,clean_prediction";
    for (const AttackReport& a : rep.attacks)
      for (const char* field : {"attacked", "fooled", "prediction", "norm"}) out << ',' << a.name << '_' << field;
    out << '\n';
    for (size_t i = 0; i < labels.size(); ++i) {
      out << s.rows[i] << ',' << labels[i] << ',' << rep.clean_predictions[i];
      for (const AttackReport& a : rep.attacks) {
        const SampleResult& r = a.samples[i];
        out << ',' << int(r.attacked) << ',' << int(r.fooled) << ',' << r.prediction << ',' << norm_text(r.norm);
      }
      out << '\n';
    }
  } else {
    for (size_t i = 0; i < labels.size(); ++i) {
      nlohmann::ordered_json j;
      j["index"] = s.rows[i];
      j["label"] = labels[i];
      j["clean_prediction"] = rep.clean_predictions[i];
      nlohmann::ordered_json attacks = nlohmann::ordered_json::object();
      for (const AttackReport& a : rep.attacks) {
        const SampleResult& r = a.samples[i];
        attacks[a.name] = {{"attacked", r.attacked}, {"fooled", r.fooled}, {"prediction", r.prediction}, {"norm", r.norm}};
      }
      j["attacks"] = attacks;
      out << j.dump() << '\n';
    }
  }
  out.flush();
  if (!out) throw IOError(path + ": writing failed");
}

// ---- adversarial examples ----

void save_adversarial(const std::string& path, const Samples& s, const EvalReport& rep,
                      const std::map<std::string, std::string>& metadata) {
  if (!rep.adversarial.defined()) throw ValueError("save_adversarial: the evaluation kept no adversarial examples");
  StateDict tensors;
  tensors["x_adv"] = rep.adversarial.to(DType::F32);
  tensors["labels"] = s.y;
  tensors["indices"] = from_vector(s.rows, {int64_t(s.rows.size())});
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "advgrad adversarial examples";
  save_safetensors(path, tensors, meta);
}

namespace {

std::string dims_of(const Shape& shape) { return shape_str(shape); }

Shape without_unit_dims(const Shape& s) {
  Shape out;
  for (int64_t d : s)
    if (d != 1) out.push_back(d);
  return out;
}

}  // namespace

AdversarialSet load_adversarial(const std::string& path, LoadedModel& model, const std::string& option) {
  auto refuse = [&](const std::string& problem) -> CLI::ValidationError {
    return CLI::ValidationError(option, path + ": " + problem);
  };
  // The reader's own errors name the file already: passed on as they are, as usage errors.
  SafetensorsHeader header;
  try {
    header = read_safetensors_header(path);
  } catch (const Error& e) {
    const std::string what = e.what();
    throw CLI::ValidationError(option, what.find(path) == std::string::npos ? path + ": " + what : what);
  }
  const auto& t = header.tensors;
  for (const auto& kv : t)
    if (kv.first != "x_adv" && kv.first != "labels" && kv.first != "indices")
      throw refuse("unexpected tensor '" + kv.first + "' (a --save-adv file has x_adv, labels and indices)");
  for (const char* needed : {"x_adv", "labels"})
    if (!t.count(needed)) throw refuse(std::string("no tensor '") + needed + "' (not a file of eval --save-adv?)");
  const SafetensorsTensorInfo& xi = t.at("x_adv");
  const SafetensorsTensorInfo& li = t.at("labels");
  if (xi.dtype != DType::F32 && xi.dtype != DType::F64)
    throw refuse(std::string("x_adv is ") + dtype_name(xi.dtype) + ", not float32 or float64");
  if (xi.shape.size() < 2 || xi.shape[0] < 1)
    throw refuse("x_adv is " + dims_of(xi.shape) + ", not a batch [N, ...] of N >= 1 samples");
  const int64_t n = xi.shape[0];
  if (li.dtype != DType::I64 || li.shape != Shape{n})
    throw refuse("labels is " + std::string(dtype_name(li.dtype)) + " " + dims_of(li.shape) + ", not int64 [" +
                 std::to_string(n) + "] (one per example)");
  const bool has_indices = t.count("indices") > 0;
  if (has_indices && (t.at("indices").dtype != DType::I64 || t.at("indices").shape != Shape{n}))
    throw refuse("indices is " + std::string(dtype_name(t.at("indices").dtype)) + " " + dims_of(t.at("indices").shape) +
                 ", not int64 [" + std::to_string(n) + "] (one per example)");
  // The samples must be the model's: equal (a symbolic ONNX dim takes any size), or equal up to dims of 1.
  const Shape sample(xi.shape.begin() + 1, xi.shape.end());
  const Shape& want = model.sample_shape;
  bool fits = sample.size() == want.size();
  for (size_t i = 0; fits && i < sample.size(); ++i) fits = want[i] < 0 || want[i] == sample[i];
  const bool known = std::none_of(want.begin(), want.end(), [](int64_t d) { return d < 0; });
  const bool reshape_to_model = !fits && known && without_unit_dims(sample) == without_unit_dims(want);
  if (!fits && !reshape_to_model)
    throw refuse("its examples are " + dims_of(sample) + ", but model '" + model.name + "' takes " + model.input_text);

  // Only now is data read: exactly these tensors (their sizes are the file's bytes, checked by the header).
  StateDict wanted;
  wanted["x_adv"] = zeros(xi.shape, DType::F32);
  wanted["labels"] = zeros(li.shape, DType::I64);
  if (has_indices) wanted["indices"] = zeros(li.shape, DType::I64);
  AdversarialSet set;
  try {
    set.metadata = load_safetensors_into(path, wanted, /*strict=*/true, /*allow_non_finite=*/false);
  } catch (const Error& e) {
    std::string what = e.what();
    const std::string prefix = "load_safetensors_into: ";
    if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
    throw CLI::ValidationError(option, what.find(path) == std::string::npos ? path + ": " + what : what);
  }
  set.x = wanted["x_adv"];
  set.labels = wanted["labels"];
  if (has_indices) set.indices = wanted["indices"].to_vector<int64_t>();

  const std::vector<float> values = set.x.to_vector<float>();
  for (size_t k = 0; k < values.size(); ++k)
    if (!(values[k] >= 0.0f && values[k] <= 1.0f))
      throw refuse("x_adv holds " + number_text(double(values[k])) + " at element " + std::to_string(k) +
                   ", outside the [0,1] pixel range");
  if (reshape_to_model) {
    Shape batch = {n};
    batch.insert(batch.end(), want.begin(), want.end());
    set.x = reshape(set.x, batch);
  }
  learn_num_classes(model, set.x);
  const std::vector<int64_t> labels = set.labels.to_vector<int64_t>();
  for (size_t k = 0; k < labels.size(); ++k)
    if (labels[k] < 0 || labels[k] >= model.num_classes)
      throw refuse("label " + std::to_string(labels[k]) + " of example " + std::to_string(k) + " is outside [0, " +
                   std::to_string(model.num_classes) + "), the classes of model '" + model.name + "'");
  std::set<int64_t> seen;
  for (size_t k = 0; k < set.indices.size(); ++k) {
    if (set.indices[k] < 0)
      throw refuse("index " + std::to_string(set.indices[k]) + " of example " + std::to_string(k) + " is negative");
    if (!seen.insert(set.indices[k]).second)
      throw refuse("index " + std::to_string(set.indices[k]) + " appears twice (example " + std::to_string(k) + ")");
  }
  return set;
}

}  // namespace advgrad::cli
