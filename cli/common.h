// What several subcommands share: the model/weights/data options and their loading, the attack options,
// and small output helpers.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/data/dataset.h"
#include "advgrad/nn/models.h"

namespace advgrad::cli {

// CLI11 checks on the option's text (CLI11 prefixes the option's name to the message, and a failed
// check is a usage error, exit status 2):
// a finite number in [lo, hi] (lo excluded when `lo_open`): "--eps: must be a finite number in [0, 100], got 'nan'";
CLI::Validator number_in(double lo, double hi, bool lo_open = false);
// rewrites "A/B" (two plain decimals, B > 0) as the decimal A/B, for transform() before number_in:
// "--eps 8/255"; any other text is left for the next check;
CLI::Validator fraction_to_decimal();
// "%g" of v: 0.5, 8, 0.0313725
std::string number_text(double v);
// a finite number >= lo (> lo when strictly), with no upper bound;
CLI::Validator at_least(double lo, bool strictly = false);
// a whole number in [lo, hi], written in decimal digits with an optional '-' (so "-1" is never a
// huge unsigned value, nor "1e3" or "0x10" a surprise).
CLI::Validator integer_in(int64_t lo, int64_t hi);

// Bounds of the attack options of eval and attack: far above any real use, low enough that nothing
// downstream overflows or allocates absurdly.
struct AttackLimits {
  static constexpr double max_eps = 100;          // L2 radii can exceed 1 (sqrt of the pixel count at most)
  static constexpr int max_steps = 100000;
  static constexpr int max_restarts = 1000;
  static constexpr int64_t max_queries = 10000000;
  static constexpr double max_effort = 100;
  static constexpr int64_t max_batch = int64_t(1) << 20;
  static constexpr int64_t max_samples = int64_t(1) << 40;
  static constexpr int64_t max_seed = INT64_MAX;
};

// ---- model and data ----

struct ModelDataArgs {
  std::string model;      // a model_zoo() name, or a path ending in ".onnx"
  std::string weights;    // a .safetensors file with the model's state_dict (optional for an .onnx model)
  std::string data_dir;   // any directory load_dataset understands
  std::string split = "test";
  int64_t limit = 0;      // > 0: only the first `limit` samples of the split
  bool allow_non_finite = false;  // --allow-non-finite: load weights holding NaN/Inf anyway
};

// Adds --model, --weights, --data, --split, --limit (whose help names `limit_help`) and --allow-non-finite.
void add_model_data_options(CLI::App& cmd, ModelDataArgs& args, const std::string& limit_help);

bool ends_with(const std::string& s, const std::string& tail);
// --model NAME|FILE.onnx: a path ending in ".onnx" is an ONNX file, anything else a zoo name.
bool is_onnx_path(const std::string& model);
// "small_cnn, madry_cnn, lstm, cifar_resnet or a FILE.onnx": what --model takes, for help texts.
std::string model_option_text();

// The zoo model `name` with the weights of `weights_file` loaded strictly (every key present, no extra
// keys, equal shapes); or, for a path ending in .onnx, the model load_onnx reads from it (its own weights),
// overridden by `weights_file` when one is given (strictly, by name). Errors name the file and the model.
// NaN/Inf values are refused naming the tensor unless allow_non_finite.
std::shared_ptr<Module> load_model(const std::string& name, const std::string& weights_file,
                                   bool allow_non_finite = false);

// The model a command runs and what the command needs to know about it.
struct LoadedModel {
  std::shared_ptr<Module> module;
  std::string name;       // the zoo name or the .onnx path, as given
  Shape sample_shape;     // one sample as the model takes it; -1 = any size (a symbolic ONNX dim)
  std::string input_text; // the model's input in messages: "[1,28,28]" or "input 'input' [N,28,28]"
  int64_t num_classes = 0;  // 0 until known (an ONNX model's: from its output on the first sample)
};
LoadedModel load_model(const ModelDataArgs& args);
// An ONNX model's class count, from its output on the first sample of x [N, ...] (N >= 1), when not yet
// known; ValueError when that output is not [1, classes] logits.
void learn_num_classes(LoadedModel& model, const Tensor& x);

// Nothing when `data`'s samples have the model's sample shape. Otherwise one usage error
// (CLI::ValidationError, exit status 2) naming both shapes and the dims that differ, except that with
// allow_unit_reshape shapes that differ only by dims of size 1 return true (the samples need a reshape).
bool check_sample_shape(const LoadedModel& model, const Dataset& data, bool allow_unit_reshape = false);

// The first `limit` samples (all when limit is 0) of a split as float [N, ...sample] in [0,1] and int64
// labels [N]. The samples must have the model's shape, or differ from it only by dims of size 1 (the
// dataset's [1, 28, 28] for a sequence model's [28, 28]: x is then reshaped to the model's shape);
// otherwise one usage error (CLI::ValidationError, exit status 2) that names both shapes and the dims
// that differ. The class count must match too. Learns an ONNX model's class count (one forward).
struct Samples {
  Dataset data;  // the whole split (class names, kind, source)
  Tensor x, y;   // x in the model's sample shape
  std::vector<int64_t> rows;  // the split's row of each sample (its index in the test set, say)
  int64_t n() const { return y.size(0); }
};
Samples load_samples(const ModelDataArgs& args, LoadedModel& model);
// The same for the rows `pick` chooses once the split is loaded (it sees the split, so it can check
// indices against its size and throw a usage error naming its option); --limit is not applied.
using RowPicker = std::function<std::vector<int64_t>(const Dataset& split)>;
Samples load_samples(const ModelDataArgs& args, LoadedModel& model, const RowPicker& pick);

// --mean/--std: a model trained on normalised inputs, wrapped in InputNormalized (nn/normalize.h) so
// that attacks work in [0,1] pixels and its weights load unchanged.
struct NormalizationArgs {
  std::string mean, std;  // comma-separated, one value per channel or one for all; empty: not given
};
// Adds --mean and --std (each needs the other; values checked as they are parsed).
void add_normalization_options(CLI::App& cmd, NormalizationArgs& args);
// Wraps model.module when --mean/--std were given. A count that is neither 1 nor the model's channel
// count (dim 0 of its sample shape) is a usage error (CLI::ValidationError, exit status 2).
void apply_normalization(const NormalizationArgs& args, LoadedModel& model);

// ---- attacks ----

struct AttackArgs {
  std::string attack;  // a make_attack name, "ensemble", or (eval only) a comma-separated list
  double eps = 0;
  int steps = 10;
  double step_size = 0;  // 0: the attack's own default
  int restarts = 1;
  bool no_random_start = false;
  bool targeted = false;
  int64_t queries = 5000;  // Square's budget per sample
  double effort = 1.0;     // ensemble preset scale
  uint64_t seed = 0;
  bool allow_large_eps = false;  // --allow-large-eps: an L-inf eps above 0.5 is run instead of refused
  int threads = 0;         // 0: leave the thread count alone (OMP_NUM_THREADS)
};

// Adds --attack, --eps and the options that tune attacks (steps, step size, restarts, random start,
// targeted, queries, seed, threads). `attack_help` describes --attack for this command. --effort only
// when `with_ensemble`.
void add_attack_options(CLI::App& cmd, AttackArgs& args, const std::string& attack_help, bool with_ensemble);

// The attacks to run, names case-insensitive: "autoattack" (alias "ensemble") and "autoattack-fast" give
// the presets (through one function of common.cpp); otherwise each comma-separated name becomes one
// AttackSpec carrying the options. An unknown or repeated name, an empty list, a preset mixed with other
// names, options the preset fixes itself, or an L-inf eps above 0.5 without --allow-large-eps: all usage errors
// (CLI::ValidationError, exit status 2).
std::vector<AttackSpec> attack_specs(const AttackArgs& args, const CLI::App& cmd);
bool is_ensemble(const AttackArgs& args);
// The large-eps refusal attack_specs applies, for any L-inf radius: above 0.5 in [0,1] pixel units it is a
// usage error naming `option`, with a hint ("did you mean 8/255?"), unless `allow_large`. `what` says
// what the radius is for ("L-inf attack 'pgd'", "adversarial training").
void refuse_large_linf_eps(const std::string& option, double eps, bool allow_large, const std::string& what);

// Applies --threads (set_num_threads) when it was given.
void apply_threads(const AttackArgs& args);


// ---- help texts, read from the registries ----

// "small_cnn, madry_cnn, lstm, cifar_resnet": the model table's names, in its order.
std::string model_names_text();
// "Models:" then one line per model of the table: name, input shape, classes, description; then how a
// FILE.onnx is taken instead.
std::string models_help();
// "Attacks:" then one line per attack of the table: name, norm, description, defaults; plus the
// ensemble preset when `with_ensemble`.
std::string attacks_help(bool with_ensemble);

// ---- output ----

// A message on one line: newlines and tabs become spaces, trailing blanks are dropped.
std::string one_line(const std::string& message);
// "%.4f"-style fixed formatting.
std::string fixed(double value, int decimals);

// Text from a hostile file, fit for a terminal or a message: printable ASCII kept, every other byte '?'.
std::string printable_text(const std::string& s);

}  // namespace advgrad::cli
