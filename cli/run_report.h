// A training run directory as `advgrad report` reads it: config.json, metrics.jsonl, summary.json and,
// when there is one, adversarial.png (the files train/run_files.cpp and train/trainer.cpp write). Every
// file is hostile input: its size is capped, its JSON parsed with the parser's position in any error,
// its fields type- and range-checked, the PNG decoded once before it is embedded.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "advgrad/train/trainer.h"

namespace advgrad::cli {

struct RunRecord {
  std::string dir;    // as given on the command line
  std::string label;  // what headings and legends call it (the directory; made unique by the caller)
  nlohmann::ordered_json config;   // config.json as written: every field, in the file's order
  std::vector<EpochMetrics> history;  // metrics.jsonl, one entry per epoch
  nlohmann::ordered_json summary;  // summary.json as written (empty for an unfinished run)
  bool finished = false;           // summary.json exists: the run made its final evaluation
  // The summary fields the evaluation tables show, checked.
  std::string model, method;
  double eps = 0;
  double clean_acc = 0, fgsm_acc = 0, pgd_acc = 0;  // summary's clean_acc, fgsm_acc, pgd20_acc
  int64_t pgd_steps = 0, test_samples = 0;
  // adversarial.png's bytes (empty when the run has none) and its size in pixels.
  std::vector<uint8_t> png;
  int64_t png_width = 0, png_height = 0;
};

// The names of the files read, as they appear in messages and in the report.
constexpr const char* kConfigFile = "config.json";
constexpr const char* kMetricsFile = "metrics.jsonl";
constexpr const char* kSummaryFile = "summary.json";
constexpr const char* kAdversarialFile = "adversarial.png";

// Reads and checks one run directory. A missing directory, a missing, oversized or malformed config.json,
// metrics.jsonl or summary.json (not JSON, not an object, a field missing, mistyped or out of range), or
// an adversarial.png that is not a decodable PNG: a usage error (CLI::ValidationError, exit status 2)
// whose one-line message names the file. A missing adversarial.png is not an error (png stays empty),
// nor is a missing summary.json: a run stopped early (--stop-after) or still training is reported as
// unfinished (finished false; model, method and eps then come from config.json).
RunRecord read_run_dir(const std::string& dir);

}  // namespace advgrad::cli
