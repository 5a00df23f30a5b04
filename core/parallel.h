// parallel_for: the one way kernels use threads. Work [0, n) is cut into chunks whose size depends only on
// the problem (the caller's `grain`), never on the thread count; each chunk writes disjoint outputs, so
// results are bit-identical with 1, 2 or 64 threads. Nested calls run serially inside the outer chunk.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "advgrad/core/team_size.h"

#ifdef ADVGRAD_HAVE_OPENMP
#include <omp.h>
#endif

namespace advgrad {

// The most threads we ever ask OpenMP for. libgomp aborts the process (or crashes) when it cannot create
// the team, e.g. at 32768+ threads or a few thousand under `ulimit -v`; results do not depend on the count,
// so a bound far above any core count costs nothing.
constexpr int kMaxThreads = 256;

// Threads used by parallel kernels (OMP_NUM_THREADS by default, at most kMaxThreads; 1 in a build
// without OpenMP).
int num_threads();
// ValueError unless 1 <= n <= kMaxThreads.
void set_num_threads(int n);

// Checks the environment variable OMP_NUM_THREADS as OpenMP will read it: unset or empty is fine,
// otherwise a comma-separated list of whole numbers in [1, kMaxThreads]. Returns "" when fine, else
// the problem, naming the variable. Call before the first parallel region (the CLI does at start).
std::string check_omp_num_threads_env();

namespace detail {
// The team size parallel_for asks for: OpenMP's setting, bounded (protects library users whose
// OMP_NUM_THREADS is absurd).
inline int team_size() {
#ifdef ADVGRAD_HAVE_OPENMP
  return std::min(omp_get_max_threads(), kMaxThreads);
#else
  return 1;
#endif
}
}  // namespace detail

template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
#ifdef ADVGRAD_HAVE_OPENMP
  if (chunks > 1 && !omp_in_parallel()) {
    // Fewer threads while other programs hold the cores (core/team_size.h); results do not change.
    const int team = adaptive_team_size(detail::team_size());
    if (team > 1) {
#pragma omp parallel for schedule(static) num_threads(team)
      for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
      return;
    }
  }
#endif
  for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
}

}  // namespace advgrad
