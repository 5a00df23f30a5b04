#include "core/parallel.h"

namespace advgrad {

int num_threads() {
#ifdef ADVGRAD_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
#ifdef ADVGRAD_HAVE_OPENMP
  omp_set_num_threads(std::max(1, n));
#else
  (void)n;
#endif
}

}  // namespace advgrad
