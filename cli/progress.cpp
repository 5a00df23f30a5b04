#include "advgrad/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace advgrad::cli {

Progress::Progress(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1) {}

void Progress::update(int64_t done, int64_t total, double samples_per_s) {
  if (quiet_ || total <= 0) return;
  auto now = std::chrono::steady_clock::now();
  if (!started_) start_ = now, started_ = true;
  const double frac = double(done) / double(total);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = done > 0 ? elapsed / double(done) * double(total - done) : 0;
  if (tty_) {
    // Redraw at most 10 times a second, and always at the end.
    if (open_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30, filled = std::clamp(int(frac * width), 0, width);
    std::fprintf(stderr, "\r  [%s%s] %3d%%  %lld/%lld  %.0f samples/s  ETA %.0f s ",
                 std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), '.').c_str(),
                 int(frac * 100), (long long)done, (long long)total, samples_per_s, eta);
    open_ = true;
  } else {
    const int64_t decile = int64_t(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "  %3d%%  %lld/%lld steps  %.0f samples/s  ETA %.0f s\n", int(frac * 100), (long long)done,
                 (long long)total, samples_per_s, eta);
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (open_) std::fprintf(stderr, "\n");
  open_ = false;
  started_ = false;
  last_decile_ = -1;
}

}  // namespace advgrad::cli
