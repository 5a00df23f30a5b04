// The cpu backend's one instance per compiled copy (its entry points are defined by op family in this
// directory); dispatch.cpp chooses which copy cpu_backend() returns.
#include "advgrad/core/backends/cpu/cpu_backend.h"

namespace advgrad::ADVGRAD_CPU_NS {

Backend& backend_instance() {
  static CpuBackend backend;
  return backend;
}

}  // namespace advgrad::ADVGRAD_CPU_NS
