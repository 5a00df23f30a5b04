// Progress of a long loop: a bar with throughput and ETA on a terminal, a plain line every 10% otherwise,
// nothing when quiet. Writes to stderr so that stdout stays clean for results.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace advgrad::cli {

class Progress {
 public:
  explicit Progress(bool quiet);
  // `label` leads the line ("pgd (1/3)"), `unit` names what is counted ("steps", "samples"), `extra` is
  // shown after the counts ("robust 0.4500").
  void update(int64_t done, int64_t total, double samples_per_s, const std::string& label = "",
              const std::string& unit = "steps", const std::string& extra = "");
  void finish();  // ends a bar line

 private:
  bool quiet_, tty_, open_ = false, started_ = false;
  int64_t last_decile_ = -1;
  std::chrono::steady_clock::time_point last_draw_, start_;
};

}  // namespace advgrad::cli
