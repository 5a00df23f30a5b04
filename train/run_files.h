// The files of a run directory that people open without this program: metrics.jsonl, curves.svg and
// summary.json; and the checkpoint that lets a run resume. Writes are atomic (temporary file + rename).
#pragma once
#include <ctime>
#include <string>
#include <vector>

#include "advgrad/nn/module.h"
#include "advgrad/nn/optim.h"
#include "advgrad/train/config.h"
#include "advgrad/train/trainer.h"

namespace advgrad {

void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path, size_t max_bytes = 64u << 20);  // IOError naming the path

std::string metrics_json(const EpochMetrics& m);  // one line
// IOError naming `source` and the field for a missing, mistyped or out-of-range value.
EpochMetrics metrics_from_json(const std::string& line, const std::string& source);
std::string summary_json(const TrainSummary& s, const TrainConfig& c);
// config.json: the recipe (every TrainConfig field, as to_json) and how the run was made: advgrad_version,
// build {compiler, build_type, cpu_build "native" or "portable", openmp} (train/build_info.h) and cpu_path.
std::string config_json(const TrainConfig& c);
// model.onnx (onnx/save_onnx.h) beside model.safetensors (nothing in a -DADVGRAD_ONNX=OFF build). A model whose forward has an op with no ONNX form
// still has its safetensors, so that is a warning on stderr naming the reason, not a failed run.
void write_model_onnx(Module& model, const Shape& sample_shape, const std::string& path);

// Loss (left axis, "loss") and clean/robust validation accuracy (right axis, "accuracy") per epoch, as a
// standalone SVG; a run of at most kStepLossEpochs epochs also plots every step's loss (step_losses).
constexpr size_t kStepLossEpochs = 3;
std::string curves_svg(const std::vector<EpochMetrics>& history, const std::string& title);
// eps as people write it: "0.1", "0.0314", "8/255" (a multiple of 1/255 with no short decimal form).
std::string eps_text(double eps);

// Run directories of `advgrad train` without --out: "<model>-<method>-<YYYYmmdd-HHMMSS>" at local time
// `when` (an ONNX model by its file's stem, characters other than [A-Za-z0-9._-] as '_'), and
// parent/name created, or parent/name-2, -3, ... when it exists (a directory that existed is never
// returned). IOError naming the directory when it cannot be created.
std::string default_run_name(const std::string& model, const std::string& method, std::time_t when);
std::string create_new_run_directory(const std::string& parent, const std::string& name);

// A checkpoint: model and optimizer tensors, the best weights so far, plus the trainer's counters, history
// and config. The trainer.json written last names the tensor files of its epoch, so a crash mid-write
// leaves the previous checkpoint intact.
struct Checkpoint {
  TrainConfig config;
  int epochs_done = 0;
  std::string method;  // may differ from config.method after a catastrophic-overfitting fallback
  double best_val_pgd = -1, co_best_pgd = -1;
  int best_epoch = 0;  // the epoch of the best weights (best-e<N>.safetensors); 0: none saved
  std::vector<EpochMetrics> history;
  // The model's random generators (Module::named_generators) by name: their offsets. Empty in checkpoints
  // written before they were kept (a model with Dropout then resumed with fresh counters).
  std::vector<std::pair<std::string, uint64_t>> random_state;
};
// Writes the tensor files and then trainer.json. `best`, when given, is written as
// best-e<ck.best_epoch>.safetensors (pass it when the best changed; the file of an unchanged best stays).
// `ema` (the weight average) and `method_state` (TrainingMethod::state()), when given and not empty, are
// written as ema-e<N>.safetensors and method-e<N>.safetensors.
void save_checkpoint(const std::string& dir, const Checkpoint& ck, const Module& model, const Optimizer& opt,
                     const StateDict* best = nullptr, const StateDict* ema = nullptr,
                     const StateDict* method_state = nullptr);
// Loads counters and config; fills model, optimizer, the best weights, the weight average and the
// method's state when given (each stays empty when the checkpoint has none: best weights are missing
// in checkpoints written before they were kept). Best and EMA weights are read shaped like `model`
// when it is given, else like the config's zoo model. Errors name the file at fault.
Checkpoint load_checkpoint(const std::string& dir, Module* model, Optimizer* opt, StateDict* best = nullptr,
                           StateDict* ema = nullptr, StateDict* method_state = nullptr);

// Weights of zoo model `model` from a safetensors file, checked as load_safetensors_into checks them
// (header first, only the model's tensors read, NaN/inf refused); IOError naming the file.
StateDict load_weights_file(const std::string& file, const std::string& model);

// What trainer.json holds, parsed and checked without touching any other file (also the fuzz entry).
struct CheckpointIndex {
  Checkpoint ck;
  std::string model_file, optimizer_file, best_file;  // plain file names in the checkpoint directory
  std::string ema_file, method_file;                  // "" when the checkpoint has none
};
CheckpointIndex parse_trainer_json(const std::string& text, const std::string& source);

// Removes the temporaries `NAME.tmp.<pid>.<n>` that an atomic write killed midway leaves in `dir` (not
// recursive), when they are stale: their pid is no live process, or it is this process (which writes
// synchronously and has no write in flight when it calls this). A live process's temporary is left alone,
// since it may be mid-write. Returns the names removed.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

}  // namespace advgrad
