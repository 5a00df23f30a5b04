#include "advgrad/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace advgrad::cli {

namespace {
// "12 s", "3 min 5 s"; "-" before the first unit of work (no rate to extrapolate from yet).
std::string eta_text(int64_t done, double eta) {
  if (done <= 0) return "-";
  char buf[48];
  if (eta < 60)
    std::snprintf(buf, sizeof buf, "%.0f s", eta);
  else
    std::snprintf(buf, sizeof buf, "%d min %d s", int(eta / 60), int(eta) % 60);
  return buf;
}
}  // namespace

Progress::Progress(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1) {}

void Progress::update(int64_t done, int64_t total, double samples_per_s, const std::string& label,
                      const std::string& unit, const std::string& extra) {
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
    std::fprintf(stderr, "\r  %s%s[%s%s] %3d%%  %lld/%lld  %s%s%.0f samples/s  ETA %s ", label.c_str(),
                 label.empty() ? "" : " ", std::string(size_t(filled), '#').c_str(),
                 std::string(size_t(width - filled), '.').c_str(), int(frac * 100), (long long)done, (long long)total,
                 extra.c_str(), extra.empty() ? "" : "  ", samples_per_s, eta_text(done, eta).c_str());
    open_ = true;
  } else {
    // One line per 10% reached; none at 0%, where there is no rate or ETA to tell yet.
    const int64_t decile = int64_t(frac * 10);
    if (done == 0 || decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "  %s%s%3d%%  %lld/%lld %s  %s%s%.0f samples/s  ETA %s\n", label.c_str(), label.empty() ? "" : " ",
                 int(frac * 100), (long long)done, (long long)total, unit.c_str(), extra.c_str(),
                 extra.empty() ? "" : "  ", samples_per_s, eta_text(done, eta).c_str());
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
