#include "advgrad/core/parallel.h"

#include <cstdlib>

#include "advgrad/core/error.h"

namespace advgrad {

int num_threads() { return detail::team_size(); }

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw ValueError("set_num_threads: " + std::to_string(n) + " threads is out of range [1, " +
                     std::to_string(kMaxThreads) + "]");
#ifdef ADVGRAD_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
}

std::string check_omp_num_threads_env() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  if (env == nullptr || *env == '\0') return "";
  const std::string text = env;
  const std::string bad = "OMP_NUM_THREADS='" + text + "': must be a whole number of threads in [1, " +
                          std::to_string(kMaxThreads) + "] (or a comma-separated list of them)";
  // OpenMP allows a list (one count per nesting level) and blanks around the numbers.
  size_t i = 0;
  for (;;) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 9) return bad;  // > 9 digits is out of range anyway, and cannot overflow
    const long v = std::strtol(text.substr(start, i - start).c_str(), nullptr, 10);
    if (v < 1 || v > kMaxThreads) return bad;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i == text.size()) return "";
    if (text[i] != ',') return bad;
    ++i;
  }
}

}  // namespace advgrad
