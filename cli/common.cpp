#include "advgrad/cli/common.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "advgrad/attacks/attack.h"
#include "advgrad/attacks/registry.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/error.h"
#include "advgrad/core/parallel.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/normalize.h"
#include "advgrad/nn/serialize.h"
#ifdef ADVGRAD_HAVE_ONNX
#include "advgrad/onnx/load_onnx.h"
#endif

namespace advgrad::cli {

// ---- validators ----

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

CLI::Validator number_in(double lo, double hi, bool lo_open) {
  const bool unbounded = hi == std::numeric_limits<double>::max();
  const std::string range = unbounded ? std::string(lo_open ? ">" : ">=") + number_text(lo)
                                      : "in " + std::string(lo_open ? "(" : "[") + number_text(lo) + ", " +
                                            number_text(hi) + "]";
  return CLI::Validator(
      [range, lo, hi, lo_open](std::string& text) -> std::string {
        // Plain decimal only: strtod would also take hex floats ("0x1p3" = 8) and leading blanks, which
        // nobody means on a command line.
        const bool decimal = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
          return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
        });
        char* end = nullptr;
        errno = 0;
        const double v = decimal ? std::strtod(text.c_str(), &end) : 0.0;
        const bool ok = decimal && end == text.c_str() + text.size() && errno != ERANGE && std::isfinite(v) &&
                        (lo_open ? v > lo : v >= lo) && v <= hi;
        return ok ? "" : "must be a finite decimal number " + range + ", got '" + text + "'";
      },
      range);
}

CLI::Validator at_least(double lo, bool strictly) {
  return number_in(lo, std::numeric_limits<double>::max(), strictly);
}

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [range, lo, hi](std::string& text) -> std::string {
        const size_t first = !text.empty() && text[0] == '-' ? 1 : 0;
        bool ok = text.size() > first && text.size() <= 20 &&
                  std::all_of(text.begin() + long(first), text.end(), [](char c) { return c >= '0' && c <= '9'; });
        // CLI11 converts with strtoll(..., 0), which reads "010" as octal 8: refuse leading zeros.
        if (ok && text[first] == '0' && text.size() > first + 1)
          return "must be a whole number in " + range + " without leading zeros (it would be read as octal), got '" +
                 text + "'";
        if (ok) {
          errno = 0;
          const long long v = std::strtoll(text.c_str(), nullptr, 10);
          ok = errno != ERANGE && v >= lo && v <= hi;
        }
        return ok ? "" : "must be a whole number in " + range + ", got '" + text + "'";
      },
      "INT in " + range);
}

// ---- model and data ----

void add_model_data_options(CLI::App& cmd, ModelDataArgs& args, const std::string& limit_help) {
  cmd.add_option("--model", args.model, "Model: " + model_option_text())->required();
  cmd.add_option("--weights", args.weights,
                 "The model's state_dict as .safetensors (from advgrad or PyTorch); for a FILE.onnx optional: "
                 "replaces the file's weights by name, every one of them");
  args.data_dir = default_fashion_mnist_dir();
  cmd.add_option("--data", args.data_dir, "Dataset directory (MNIST-family IDX, CIFAR binary or image folder)")
      ->capture_default_str();
  cmd.add_option("--split", args.split, "Dataset split")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  cmd.add_option("--limit", args.limit, limit_help)->check(integer_in(0, AttackLimits::max_samples))->capture_default_str();
  cmd.add_flag("--allow-non-finite", args.allow_non_finite,
               "Load weights holding NaN or Inf (refused by default: such a model's accuracy means nothing)");
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_onnx_path(const std::string& model) { return model.size() > 5 && ends_with(model, ".onnx"); }

std::string model_option_text() { return model_names_text() + ", or a FILE.onnx (its weights inside)"; }

namespace {

// Loads `weights_file` into `model` strictly (names and shapes checked before any data is read); errors
// say which model the file does not fit.
void load_weights_strictly(Module& model, const std::string& name, const std::string& weights_file,
                           bool allow_non_finite) {
  const std::string not_ours = weights_file + ": not weights of model '" + name + "': ";
  try {
    load_safetensors_into(model, weights_file, /*strict=*/true, allow_non_finite);
  } catch (const IOError&) {
    throw;  // already names the file
  } catch (const Error& e) {
    // Its message starts "load_safetensors_into: <file>: "; not_ours names the file already.
    std::string what = e.what();
    const std::string prefix = "load_safetensors_into: " + weights_file + ": ";
    if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
    throw ValueError(not_ours + what);
  }
}

// torch.save's files: a zip archive (PyTorch >= 1.6) or a bare pickle (protocol 2). Read as safetensors,
// their first 8 bytes make an absurd header length; say what they are and how to convert them instead.
void refuse_pytorch_pickle(const std::string& weights_file) {
  // Only a regular file is peeked at: opening a FIFO would wait for a writer (read_safetensors_header
  // refuses anything else with its own message).
  std::error_code ec;
  if (!std::filesystem::is_regular_file(weights_file, ec)) return;
  std::FILE* f = std::fopen(weights_file.c_str(), "rb");
  if (!f) return;  // read_safetensors_header names the file and the reason
  unsigned char magic[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  const size_t got = std::fread(magic, 1, sizeof magic, f);
  std::fclose(f);
  // A safetensors file whose 8-byte header length happens to start 0x80 0x02 (a 640-byte header) is
  // still safetensors: its length fits the file and its header opens with '{'.
  uint64_t header_length = 0;
  for (int k = 7; k >= 0; --k) header_length = (header_length << 8) | magic[k];
  const uint64_t size = uint64_t(std::filesystem::file_size(weights_file, ec));
  const bool safetensors = got == sizeof magic && !ec && magic[8] == '{' && header_length <= size - 8;
  const bool zip = got >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
  const bool pickle = !safetensors && got >= 2 && magic[0] == 0x80 && magic[1] == 0x02;
  if (zip || pickle)
    throw ValueError(weights_file + ": this is a PyTorch pickle (" + (zip ? "zip archive" : "legacy pickle") +
                     "), not safetensors: convert it with scripts/pt_to_safetensors.py");
}

std::shared_ptr<Module> load_zoo_model(const std::string& name, const std::string& weights_file, bool allow_non_finite) {
  Generator gen(0);
  std::shared_ptr<Module> model = make_model(name, gen);  // ValueError listing the zoo for a wrong name
  if (weights_file.empty())
    throw CLI::ValidationError("--weights", "zoo model '" + name + "' needs its weights (only a FILE.onnx carries its own)");
  refuse_pytorch_pickle(weights_file);
  // The header first (IOError naming the file): a file's claims cost nothing until they are known to fit.
  const SafetensorsHeader header = read_safetensors_header(weights_file);
  const std::string not_ours = weights_file + ": not weights of model '" + name + "': ";
  // advgrad's trainer records the model name; PyTorch files have no such entry.
  auto recorded = header.metadata.find("model");
  if (recorded != header.metadata.end() && recorded->second != name)
    throw ValueError(not_ours + "its metadata names model '" + recorded->second + "'");
  // Another architecture altogether: say so briefly instead of listing every key.
  const StateDict own = model->state_dict();
  if (std::none_of(own.begin(), own.end(), [&](const auto& kv) { return header.tensors.count(kv.first) > 0; })) {
    std::string keys;
    size_t shown = 0;
    for (const auto& kv : header.tensors) {
      if (shown++ == 4) {
        keys += ", ...";
        break;
      }
      keys += (keys.empty() ? "" : ", ") + kv.first;
    }
    throw ValueError(not_ours + "none of its " + std::to_string(own.size()) + " tensors is in the file (which has " +
                     (keys.empty() ? "none" : std::to_string(header.tensors.size()) + ": " + keys) + ")");
  }
  // Names and shapes are checked against the model before any tensor is read; only its tensors are read.
  load_weights_strictly(*model, name, weights_file, allow_non_finite);
  return model;
}

std::string dims_text(const std::vector<int64_t>& dims, const std::string& batch_name) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? "," : "") + (dims[i] < 0 ? (i == 0 ? batch_name : std::string("?")) : std::to_string(dims[i]));
  return s + "]";
}

}  // namespace

std::shared_ptr<Module> load_model(const std::string& name, const std::string& weights_file, bool allow_non_finite) {
  std::shared_ptr<Module> model;
  if (!is_onnx_path(name)) {
    model = load_zoo_model(name, weights_file, allow_non_finite);
  } else {
#ifdef ADVGRAD_HAVE_ONNX
    model = load_onnx(name);  // IOError/ValueError naming the file (and the node, for an unsupported op)
    if (!weights_file.empty()) refuse_pytorch_pickle(weights_file);
    if (!weights_file.empty()) load_weights_strictly(*model, name, weights_file, allow_non_finite);
#else
    throw ValueError("--model " + name + ": this advgrad was built without ONNX support (cmake -DADVGRAD_ONNX=ON)");
#endif
  }
  model->eval();
  return model;
}

LoadedModel load_model(const ModelDataArgs& args) {
  LoadedModel m;
  m.name = args.model;
  m.module = load_model(args.model, args.weights, args.allow_non_finite);
  if (!is_onnx_path(args.model)) {
    const ModelInfo& info = model_info(args.model);
    m.sample_shape = info.input_shape;
    m.num_classes = info.num_classes;
    m.input_text = shape_str(info.input_shape);
    return m;
  }
#ifdef ADVGRAD_HAVE_ONNX
  const auto& onnx_model = dynamic_cast<const OnnxModel&>(*m.module);
  const std::vector<int64_t>& dims = onnx_model.input_dims();
  m.input_text = "input '" + onnx_model.input_name() + "' " + dims_text(dims, "N");
  if (dims.size() < 2)
    throw ValueError(args.model + ": its " + m.input_text + " is not a batch of samples (rank 2 or more)");
  m.sample_shape.assign(dims.begin() + 1, dims.end());
#endif
  return m;
}

namespace {

Shape without_unit_dims(const Shape& s) {
  Shape out;
  for (int64_t d : s)
    if (d != 1) out.push_back(d);
  return out;
}

// "dim 0 is 3 here, 1 in the model" for each dim that differs (or the ranks).
std::string shape_differences(const Shape& data, const Shape& model) {
  if (data.size() != model.size())
    return std::to_string(data.size()) + " dims here, " + std::to_string(model.size()) + " in the model";
  std::string s;
  for (size_t i = 0; i < data.size(); ++i)
    if (model[i] >= 0 && data[i] != model[i])
      s += (s.empty() ? "" : ", ") + std::string("dim ") + std::to_string(i) + " is " + std::to_string(data[i]) +
           " here, " + std::to_string(model[i]) + " in the model";
  return s;
}

bool fits(const Shape& data, const Shape& model) { return shape_differences(data, model).empty(); }

}  // namespace

bool check_sample_shape(const LoadedModel& model, const Dataset& data, bool allow_unit_reshape) {
  const Shape& sample = data.sample_shape;
  if (fits(sample, model.sample_shape)) return false;
  // The dataset's [1, 28, 28] images also feed a model of [28, 28] sequences: the same values.
  const bool known = std::none_of(model.sample_shape.begin(), model.sample_shape.end(), [](int64_t d) { return d < 0; });
  if (allow_unit_reshape && known && without_unit_dims(sample) == without_unit_dims(model.sample_shape)) return true;
  throw CLI::ValidationError("--data", data.source + " (" + data.kind + ") has " + shape_str(sample) +
                                           " samples, but model '" + model.name + "' takes " + model.input_text + ": " +
                                           shape_differences(sample, model.sample_shape));
}

Samples load_samples(const ModelDataArgs& args, LoadedModel& model) {
  return load_samples(args, model, [&](const Dataset& split) {
    const int64_t n = args.limit > 0 ? std::min(args.limit, split.size()) : split.size();
    std::vector<int64_t> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = i;
    return rows;
  });
}

Samples load_samples(const ModelDataArgs& args, LoadedModel& model, const RowPicker& pick) {
  Samples s;
  s.data = load_dataset(args.data_dir, args.split);
  const bool reshaped = check_sample_shape(model, s.data, /*allow_unit_reshape=*/true);
  s.rows = pick(s.data);
  const std::vector<int64_t>& rows = s.rows;
  const int64_t n = int64_t(rows.size());
  s.x = s.data.images_float(rows);
  s.y = s.data.labels_tensor(rows);
  if (reshaped) {
    Shape batch = {n};
    batch.insert(batch.end(), model.sample_shape.begin(), model.sample_shape.end());
    s.x = reshape(s.x, batch);
  }
  if (n > 0) learn_num_classes(model, s.x);
  if (model.num_classes != s.data.num_classes)
    throw CLI::ValidationError("--data", "model '" + model.name + "' has " + std::to_string(model.num_classes) +
                                             " classes, but " + s.data.source + " (" + s.data.kind + ") has " +
                                             std::to_string(s.data.num_classes));
  return s;
}

// ---- input normalisation ----

namespace {

// "0.4914,0.4822,0.4465" -> its values (value_list_check has checked the text).
std::vector<double> value_list(const std::string& text) {
  std::vector<double> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(std::strtod(item.c_str(), nullptr));
  return values;
}

CLI::Validator value_list_check(const CLI::Validator& item_check) {
  return CLI::Validator(
      [item_check](std::string& text) -> std::string {
        if (text.empty() || text.back() == ',') return "must be a comma-separated list of numbers, got '" + text + "'";
        std::stringstream in(text);
        for (std::string item; std::getline(in, item, ',');) {
          const std::string problem = item_check(item);
          if (!problem.empty()) return "each value " + problem + " (in '" + text + "')";
        }
        return "";
      },
      "LIST");
}

}  // namespace

void add_normalization_options(CLI::App& cmd, NormalizationArgs& args) {
  constexpr double kMaxValue = 1e6;  // far beyond any pixel statistic
  CLI::Option* mean = cmd.add_option("--mean", args.mean,
                                     "The model normalises its input: per-channel means in [0,1] pixel units, "
                                     "comma-separated (one value: every channel), e.g. 0.4914,0.4822,0.4465")
                          ->check(value_list_check(number_in(-kMaxValue, kMaxValue)));
  CLI::Option* stdev = cmd.add_option("--std", args.std,
                                    "... and the per-channel standard deviations (> 0): the model sees "
                                    "(x - mean) / std while attacks and eps stay in [0,1] pixels; weights load unchanged")
                         ->check(value_list_check(number_in(0, kMaxValue, /*lo_open=*/true)));
  mean->needs(stdev);
  stdev->needs(mean);
}

void apply_normalization(const NormalizationArgs& args, LoadedModel& model) {
  if (args.mean.empty() && args.std.empty()) return;
  const std::vector<double> mean = value_list(args.mean), stdev = value_list(args.std);
  const int64_t channels = model.sample_shape.empty() ? -1 : model.sample_shape[0];  // -1: a symbolic ONNX dim
  for (const auto& [option, values] : {std::pair{"--mean", &mean}, std::pair{"--std", &stdev}}) {
    const int64_t given = int64_t(values->size());
    if (given != 1 && given != channels)
      throw CLI::ValidationError(option, std::to_string(given) + " values for model '" + model.name + "', which takes " +
                                             model.input_text + ": give " +
                                             (channels > 1   ? std::to_string(channels) + " (one per channel) or 1 (for all)"
                                              : channels == 1 ? std::string("1 (it has one channel)")
                                                              : std::string("1 (its channel count is not fixed)")));
  }
  if (mean.size() != stdev.size())
    throw CLI::ValidationError("--std", std::to_string(stdev.size()) + " values, but --mean has " +
                                            std::to_string(mean.size()));
  model.module = std::make_shared<InputNormalized>(model.module, mean, stdev);
  model.module->eval();
}

// ---- attacks ----

namespace {

// Options that tune single attacks; the ensemble preset fixes them itself.
const char* const kTuningOptions[] = {"--steps", "--step-size", "--restarts", "--no-random-start", "--queries"};

std::string known_attacks(bool with_ensemble = true) {
  std::string s;
  for (const auto& n : attack_names()) s += (s.empty() ? "" : ", ") + n;
  return with_ensemble ? s + ", autoattack (alias ensemble), autoattack-fast" : s;
}

// Attack names are case-insensitive (--attack PGD, AutoAttack): compared in lower case.
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The preset --attack names, in lower case: AutoAttack's standard set ("ensemble" is its old name) and
// the cheaper one.
bool is_standard_preset(const std::string& name) { return name == "autoattack" || name == "ensemble"; }
bool is_fast_preset(const std::string& name) { return name == "autoattack-fast"; }

// The one place the preset names become attacks (attacks/evaluate.h's autoattack_preset).
std::vector<AttackSpec> preset_specs(const std::string& name, double eps, uint64_t seed, double effort) {
  return autoattack_preset(eps, seed, is_fast_preset(name), effort);
}

// An L-inf radius above this in [0,1] pixel units changes the image beyond recognition: almost always a
// radius given in 0..255 units.
constexpr double kLargeLinfEps = 0.5;

std::string eps_hint(double eps) {
  char buf[64];
  if (eps >= 1 && eps <= 255 && eps == std::floor(eps))
    std::snprintf(buf, sizeof buf, "did you mean %g/255?", eps);
  else
    std::snprintf(buf, sizeof buf, "did you mean 8/255?");
  return buf;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  if (!text.empty() && text.back() == ',') out.push_back("");
  return out;
}

}  // namespace

CLI::Validator fraction_to_decimal() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const size_t slash = text.find('/');
        if (slash == std::string::npos) return "";
        // Both sides plain decimals (number_in checks the quotient afterwards).
        auto part = [](const std::string& p, double& v) {
          const bool decimal = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
            return (c >= '0' && c <= '9') || c == '.';
          });
          char* end = nullptr;
          v = decimal ? std::strtod(p.c_str(), &end) : 0.0;
          return decimal && end == p.c_str() + p.size() && std::isfinite(v);
        };
        double num = 0, den = 0;
        if (!part(text.substr(0, slash), num) || !part(text.substr(slash + 1), den) || den == 0)
          return "must be a decimal number or a fraction A/B of two decimals with B > 0, got '" + text + "'";
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", num / den);
        text = buf;
        return "";
      },
      "NUMBER or A/B");
}

void add_attack_options(CLI::App& cmd, AttackArgs& args, const std::string& attack_help, bool with_ensemble) {
  cmd.add_option("--attack", args.attack, attack_help + ": " + known_attacks(with_ensemble))->required();
  cmd.add_option("--eps", args.eps,
                 "Perturbation budget: L-inf radius in [0,1] pixel units, a decimal or a fraction such as 8/255 "
                 "(pgd-l2: L2 radius)")
      ->required()
      ->transform(fraction_to_decimal())
      ->check(number_in(0, AttackLimits::max_eps));
  cmd.add_flag("--allow-large-eps", args.allow_large_eps,
               "Accept an L-inf eps above 0.5 (refused by default: it is almost always a radius in 0..255 units)");
  cmd.add_option("--steps", args.steps, "Iterations of iterative attacks")->check(integer_in(1, AttackLimits::max_steps))->capture_default_str();
  cmd.add_option("--step-size", args.step_size, "Step size; 0: the attack's own default (listed under Attacks below)")
      ->check(number_in(0, AttackLimits::max_eps))
      ->capture_default_str();
  cmd.add_option("--restarts", args.restarts, "Random restarts (the per-sample worst case is kept)")
      ->check(integer_in(1, AttackLimits::max_restarts))
      ->capture_default_str();
  cmd.add_flag("--no-random-start", args.no_random_start, "Start PGD/APGD from the clean input");
  cmd.add_flag("--targeted", args.targeted,
               "Targeted attack toward the next class, (label + 1) mod classes (apgd-t picks its own targets)");
  cmd.add_option("--queries", args.queries, "Square attack: query budget per sample")
      ->check(integer_in(1, AttackLimits::max_queries))
      ->capture_default_str();
  if (with_ensemble)
    cmd.add_option("--effort", args.effort, "ensemble: scales APGD steps (100) and Square queries (5000)")
        ->check(number_in(0, AttackLimits::max_effort, /*lo_open=*/true))
        ->capture_default_str();
  cmd.add_option("--seed", args.seed, "Seed of random starts and Square's sampling")
      ->check(integer_in(0, AttackLimits::max_seed))
      ->capture_default_str();
  cmd.add_option("--threads", args.threads, "Worker threads; 0: OMP_NUM_THREADS or all cores")
      ->check(integer_in(0, kMaxThreads))
      ->capture_default_str();
}

bool is_ensemble(const AttackArgs& args) {
  const std::string name = lower(args.attack);
  return is_standard_preset(name) || is_fast_preset(name);
}

namespace {
// Every attack-option mistake is a bad command line: exit status 2 (main.cpp maps CLI11's errors so).
[[noreturn]] void bad_option(const std::string& option, const std::string& message) {
  throw CLI::ValidationError(option, message);
}

void check_eps(const AttackArgs& args, const std::vector<AttackSpec>& specs) {
  for (const AttackSpec& spec : specs) {
    const Norm norm = spec.options.norm == Norm::Linf ? attack_entry(spec.name).norm : spec.options.norm;
    if (norm == Norm::Linf) refuse_large_linf_eps("--eps", args.eps, args.allow_large_eps, "L-inf attack '" + spec.name + "'");
  }
}
}  // namespace

void refuse_large_linf_eps(const std::string& option, double eps, bool allow_large, const std::string& what) {
  if (allow_large || eps <= kLargeLinfEps) return;
  bad_option(option, number_text(eps) + " is above " + number_text(kLargeLinfEps) + " for " + what +
                         ": eps is in [0,1] pixel units: " + eps_hint(eps) + " (--allow-large-eps to run it anyway)");
}

std::vector<AttackSpec> attack_specs(const AttackArgs& args, const CLI::App& cmd) {
  if (is_ensemble(args)) {
    const std::string preset = lower(args.attack);
    for (const char* opt : kTuningOptions)
      if (cmd.count(opt) > 0)
        bad_option(opt, "does not apply to --attack " + preset + " (the preset fixes it; use --effort)");
    if (args.targeted) bad_option("--targeted", "does not apply to --attack " + preset + " (apgd-t in it picks its own targets)");
    std::vector<AttackSpec> specs = preset_specs(preset, args.eps, args.seed, args.effort);
    check_eps(args, specs);
    return specs;
  }
  AttackOptions o;
  o.eps = args.eps;
  o.steps = args.steps;
  o.step_size = args.step_size;
  o.restarts = args.restarts;
  o.random_start = !args.no_random_start;
  o.targeted = args.targeted;
  o.queries = args.queries;
  o.seed = args.seed;
  std::vector<AttackSpec> specs;
  std::set<std::string> seen;
  for (const std::string& given : split_list(args.attack)) {
    const std::string name = lower(given);
    if (is_standard_preset(name) || is_fast_preset(name))
      bad_option("--attack", "'" + given + "' cannot be combined with other attacks");
    const auto& names = attack_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
      bad_option("--attack", "unknown attack '" + given + "' (known: " + known_attacks() + ")");
    if (!seen.insert(name).second) bad_option("--attack", "'" + name + "' is listed twice");
    specs.push_back({name, o});  // make_attack sets the norm from the attack's table entry
  }
  if (specs.empty()) bad_option("--attack", "no attack given");
  check_eps(args, specs);
  return specs;
}

void apply_threads(const AttackArgs& args) {
  if (args.threads > 0) set_num_threads(args.threads);
}

// ---- help texts ----

namespace {
std::string padded(const std::string& text, size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}
}  // namespace

std::string model_names_text() {
  std::string s;
  for (const ModelInfo& m : model_zoo()) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

std::string models_help() {
  std::string s = "Models:\n";
  for (const ModelInfo& m : model_zoo())
    s += "  " + padded(m.name, 14) + padded(shape_str(m.input_shape) + " -> " + std::to_string(m.num_classes), 20) +
         m.description + "\n";
  s += "  " + padded("FILE.onnx", 34) +
       "any ONNX classifier (e.g. from torch.onnx.export) of the ops in docs/ONNX.md, weights inside; "
       "`advgrad inspect FILE.onnx` lists its input and ops\n";
  return s;
}

std::string attacks_help(bool with_ensemble) {
  std::string s = "Attacks:\n";
  for (const AttackEntry& a : attack_registry())
    s += "  " + padded(a.name, 10) + padded(norm_name(a.norm), 6) + a.description + "; " + a.defaults + "\n";
  if (with_ensemble)
    s += "  " + padded("autoattack", 10) + padded(norm_name(Norm::Linf), 6) +
         "AutoAttack's standard set: APGD-CE, APGD-T, FAB-T and Square in turn, each on the samples still "
         "standing (alias ensemble); --effort scales steps and queries\n" +
         "  " + padded("autoattack-fast", 16) + "APGD-CE and APGD-T with 3 target classes (no FAB-T, no Square)\n";
  return s;
}

// ---- output ----

std::string one_line(const std::string& message) {
  std::string s = message;
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string printable_text(const std::string& s) {
  std::string out;
  for (char c : s) out += (c >= 0x20 && c < 0x7F) ? c : '?';
  return out;
}

void learn_num_classes(LoadedModel& model, const Tensor& x) {
  if (model.num_classes != 0) return;
  const Tensor logits = predict(*model.module, slice(x, 0, 0, 1));
  if (logits.dim() != 2)
    throw ValueError("model '" + model.name + "' gives " + shape_str(logits.shape()) +
                     " outputs for one sample, not [1, classes] logits");
  model.num_classes = logits.size(1);
}

}  // namespace advgrad::cli
