// Progress of a long loop: a bar with throughput and ETA on a terminal, a plain line every 10% otherwise,
// nothing when quiet. Writes to stderr so that stdout stays clean for results.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "advgrad/attacks/evaluate.h"

namespace advgrad::cli {

// One report of a loop's progress.
struct ProgressLine {
  int64_t done = 0, total = 0;
  double samples_per_s = 0;
  std::string label;            // leads the line ("pgd (1/3)", "epoch 2/10")
  std::string unit = "steps";   // what is counted ("steps", "samples")
  std::string extra;            // shown after the counts ("robust 45 of 100", "loss 0.4121  adv acc 0.812")
  // The time left as the caller knows it (the trainer's: the whole run's), named `eta_label`; < 0: the
  // time left of this loop, extrapolated from its own rate.
  double eta_seconds = -1;
  std::string eta_label = "ETA";
};

class Progress {
 public:
  explicit Progress(bool quiet);
  void update(const ProgressLine& line);
  // The same with the loop's own ETA.
  void update(int64_t done, int64_t total, double samples_per_s, const std::string& label = "",
              const std::string& unit = "steps", const std::string& extra = "");
  void finish();  // ends a bar line

 private:
  bool quiet_, tty_, open_ = false, started_ = false;
  int64_t last_decile_ = -1;
  std::chrono::steady_clock::time_point last_draw_, start_;
};

// EvalOptions::progress reporting to `progress`: one bar per attack, labelled "<prefix><attack> (k/N)",
// counting samples, with the number still robust so far. `progress` must outlive the evaluation.
std::function<void(const EvalProgress&)> attack_progress(Progress& progress, const std::string& prefix = "");

}  // namespace advgrad::cli
