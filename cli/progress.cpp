#include "advgrad/cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace advgrad::cli {

namespace {
// "< 1 s", "12 s", "3 min 5 s"; "-" before the first unit of work (no rate to extrapolate from yet).
std::string eta_text(int64_t done, double eta) {
  if (done <= 0) return "-";
  char buf[48];
  if (eta < 1) return "< 1 s";  // a loop nearly done, or too fast to tell
  if (eta < 60)
    std::snprintf(buf, sizeof buf, "%.0f s", eta);
  else
    std::snprintf(buf, sizeof buf, "%d min %d s", int(eta / 60), int(eta) % 60);
  return buf;
}

// The width of the terminal on stderr; 80 when it does not say.
int terminal_columns() {
  struct winsize ws {};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return int(ws.ws_col);
  return 80;
}
}  // namespace

Progress::Progress(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1) {}

void Progress::update(int64_t done, int64_t total, double samples_per_s, const std::string& label,
                      const std::string& unit, const std::string& extra) {
  ProgressLine line;
  line.done = done, line.total = total, line.samples_per_s = samples_per_s;
  line.label = label, line.unit = unit, line.extra = extra;
  update(line);
}

void Progress::update(const ProgressLine& p) {
  const int64_t done = p.done, total = p.total;
  if (quiet_ || total <= 0) return;
  auto now = std::chrono::steady_clock::now();
  if (!started_) start_ = now, started_ = true;
  const double frac = double(done) / double(total);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = p.eta_seconds >= 0 ? p.eta_seconds : done > 0 ? elapsed / double(done) * double(total - done) : 0;
  const char* sep = p.label.empty() ? "" : " ";
  const char* extra_sep = p.extra.empty() ? "" : "  ";
  if (tty_) {
    // Redraw at most 10 times a second, and always at the end.
    if (open_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    // The ETA right after the counts, then the rest: a line wider than the terminal is cut at its end
    // (a wrapped line would start a new one at each redraw), and the bar takes only the room left (up to
    // 30 columns); "\033[K" clears what a longer previous line left.
    char tail[512];
    std::snprintf(tail, sizeof tail, " %3d%%  %lld/%lld  %s %s  %s%s%.0f samples/s", int(frac * 100), (long long)done,
                  (long long)total, p.eta_label.c_str(), eta_text(done, eta).c_str(), p.extra.c_str(), extra_sep,
                  p.samples_per_s);
    const int columns = terminal_columns();
    std::string line = "  " + p.label + sep;
    const int width = std::min(columns - 1 - int(line.size() + std::strlen(tail)) - 2, 30);
    if (width >= 5) {
      const int filled = std::clamp(int(frac * width), 0, width);
      line += "[" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.') + "]";
    }
    line += tail;
    if (int(line.size()) > columns - 1) line.resize(size_t(std::max(columns - 1, 0)));
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    open_ = true;
  } else {
    // One line per 10% reached; none at 0%, where there is no rate or ETA to tell yet.
    const int64_t decile = int64_t(frac * 10);
    if (done == 0 || decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "  %s%s%3d%%  %lld/%lld %s  %s%s%.0f samples/s  %s %s\n", p.label.c_str(), sep,
                 int(frac * 100), (long long)done, (long long)total, p.unit.c_str(), p.extra.c_str(), extra_sep,
                 p.samples_per_s, p.eta_label.c_str(), eta_text(done, eta).c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (open_) std::fprintf(stderr, "\n");
  open_ = false;
  started_ = false;
  last_decile_ = -1;
}

std::function<void(const EvalProgress&)> attack_progress(Progress& progress, const std::string& prefix) {
  auto current = std::make_shared<std::string>();  // the label of the bar drawn last
  return [&progress, prefix, current](const EvalProgress& p) {
    const std::string label = prefix + p.attack + " (" + std::to_string(p.stage) + "/" + std::to_string(p.stages) + ")";
    if (label != *current) progress.finish(), *current = label;
    const double rate = p.seconds > 0 ? double(p.done) / p.seconds : 0;
    progress.update(p.done, p.total, rate, label, "samples",
                    "robust " + std::to_string(p.robust) + " of " + std::to_string(p.done));
  };
}

}  // namespace advgrad::cli
