// The cpu backend's one instance (its entry points are defined by op family in this directory).
#include "advgrad/core/backends/cpu/cpu_backend.h"

namespace advgrad {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

}  // namespace advgrad
