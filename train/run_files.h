// The files of a run directory that people open without this program: metrics.jsonl, curves.svg and
// summary.json; and the checkpoint that lets a run resume. Writes are atomic (temporary file + rename).
#pragma once
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "train/config.h"
#include "train/trainer.h"

namespace advgrad {

void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path, size_t max_bytes = 64u << 20);  // IOError naming the path

std::string metrics_json(const EpochMetrics& m);  // one line
EpochMetrics metrics_from_json(const std::string& line, const std::string& source);
std::string summary_json(const TrainSummary& s, const TrainConfig& c);
// Loss (left axis) and clean/robust validation accuracy (right axis) per epoch, as a standalone SVG.
std::string curves_svg(const std::vector<EpochMetrics>& history, const std::string& title);

// A checkpoint: model and optimizer tensors plus the trainer's counters, history and config. The
// trainer.json written last names the tensor files of its epoch, so a crash mid-write leaves the previous
// checkpoint intact.
struct Checkpoint {
  TrainConfig config;
  int epochs_done = 0;
  std::string method;  // may differ from config.method after a catastrophic-overfitting fallback
  double best_val_pgd = -1, co_best_pgd = -1;
  std::vector<EpochMetrics> history;
};
void save_checkpoint(const std::string& dir, const Checkpoint& ck, const Module& model, const Optimizer& opt);
// Loads counters and config; fills model and optimizer when given.
Checkpoint load_checkpoint(const std::string& dir, Module* model, Optimizer* opt);

}  // namespace advgrad
