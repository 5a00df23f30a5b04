// cpu_backend(): the instance of the cpu backend copy for the CPU path in use (core/cpu_features.h).
// Compiled once, for the baseline: it only picks a copy. ADVGRAD_CPU_MULTI_ISA comes from isa.cmake.
#include "advgrad/core/backend.h"
#include "advgrad/core/cpu_features.h"

// Three copies only where isa.cmake built them, and only on x86-64 (any other target has one copy).
#if defined(ADVGRAD_CPU_MULTI_ISA) && defined(__x86_64__)
#define ADVGRAD_CPU_DISPATCH 1
#endif

namespace advgrad {
#if defined(ADVGRAD_CPU_DISPATCH)
namespace cpu_avx512 { Backend& backend_instance(); }
namespace cpu_avx2 { Backend& backend_instance(); }
namespace cpu_baseline { Backend& backend_instance(); }
#else
namespace cpu { Backend& backend_instance(); }
#endif

Backend& cpu_backend() {
#if defined(ADVGRAD_CPU_DISPATCH)
  switch (cpu_path()) {
    case CpuPath::Avx512: return cpu_avx512::backend_instance();
    case CpuPath::Avx2: return cpu_avx2::backend_instance();
    default: return cpu_baseline::backend_instance();
  }
#else
  (void)cpu_path();  // still checks ADVGRAD_CPU_PATH, once
  return cpu::backend_instance();
#endif
}

}  // namespace advgrad
