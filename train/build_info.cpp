#include "advgrad/train/build_info.h"

#if !defined(ADVGRAD_VERSION) || !defined(ADVGRAD_BUILD_COMPILER) || !defined(ADVGRAD_BUILD_TYPE) || \
    !defined(ADVGRAD_BUILD_NATIVE)
#error "the top-level CMakeLists.txt defines ADVGRAD_VERSION, ADVGRAD_BUILD_COMPILER, _TYPE and _NATIVE for this file"
#endif

namespace advgrad {

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    b.version = ADVGRAD_VERSION;
    b.compiler = ADVGRAD_BUILD_COMPILER;
    b.build_type = ADVGRAD_BUILD_TYPE;
    b.native = ADVGRAD_BUILD_NATIVE != 0;
#ifdef ADVGRAD_HAVE_OPENMP  // advgrad_core's public definition when built with OpenMP
    b.openmp = true;
#endif
    return b;
  }();
  return info;
}

}  // namespace advgrad
