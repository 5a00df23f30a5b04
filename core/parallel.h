// parallel_for: the one way kernels use threads. Work [0, n) is cut into chunks whose size depends only on
// the problem (the caller's `grain`), never on the thread count; each chunk writes disjoint outputs, so
// results are bit-identical with 1, 2 or 64 threads. Nested calls run serially inside the outer chunk.
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef ADVGRAD_HAVE_OPENMP
#include <omp.h>
#endif

namespace advgrad {

// Threads used by parallel kernels (OMP_NUM_THREADS by default; 1 in a build without OpenMP).
int num_threads();
void set_num_threads(int n);

template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
#ifdef ADVGRAD_HAVE_OPENMP
  if (chunks > 1 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
#endif
  for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
}

}  // namespace advgrad
