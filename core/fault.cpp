#include "advgrad/core/fault.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>

namespace advgrad {

void fault_point_before_rename() {
  // Read once: the variable is set by the test that starts the process, never changed while it runs.
  static const long kill_at = [] {
    const char* text = std::getenv("ADVGRAD_TEST_KILL_AT_WRITE");
    if (text == nullptr || *text == '\0') return 0L;
    char* end = nullptr;
    const long n = std::strtol(text, &end, 10);
    return (end != nullptr && *end == '\0' && n > 0) ? n : 0L;
  }();
  if (kill_at == 0) return;
  static std::atomic<long> writes{0};
  if (++writes == kill_at) ::raise(SIGKILL);
}

}  // namespace advgrad
