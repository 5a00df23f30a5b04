// Progress of a long loop: a bar with throughput and ETA on a terminal, a plain line every 10% otherwise,
// nothing when quiet. Writes to stderr so that stdout stays clean for results.
#pragma once
#include <chrono>
#include <cstdint>

namespace advgrad::cli {

class Progress {
 public:
  explicit Progress(bool quiet);
  void update(int64_t done, int64_t total, double samples_per_s);
  void finish();  // ends a bar line

 private:
  bool quiet_, tty_, open_ = false, started_ = false;
  int64_t last_decile_ = -1;
  std::chrono::steady_clock::time_point last_draw_, start_;
};

}  // namespace advgrad::cli
