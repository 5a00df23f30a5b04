// sgemm-bench: the machine's single-precision GEMM rate with Eigen, the yardstick for docs/PERFORMANCE.md.
// With T threads, T independent square products run at once (one per OpenMP thread; Eigen itself is
// single-threaded, as in advgrad), so the figure is the aggregate rate advgrad's kernels can reach.
//   sgemm-bench [--threads T] [--n N] [--iters I]
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593 in its AVX-512 headers
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef ADVGRAD_HAVE_OPENMP
#include <omp.h>
#endif

int main(int argc, char** argv) {
  int threads = 1, n = 512, iters = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--n")) n = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
  }
  if (threads < 1 || n < 1 || iters < 1) return 2;
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  std::vector<Mat> a(size_t(threads), Mat::Random(n, n)), b(size_t(threads), Mat::Random(n, n)),
      c(size_t(threads), Mat::Zero(n, n));
  auto run = [&](int reps) {
#ifdef ADVGRAD_HAVE_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int t = 0; t < threads; ++t)
      for (int r = 0; r < reps; ++r) c[size_t(t)].noalias() = a[size_t(t)] * b[size_t(t)];
  };
  run(1);
  const auto t0 = std::chrono::steady_clock::now();
  run(iters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gflops = 2.0 * n * n * double(n) * iters * threads / s / 1e9;
  std::printf("{\"kernel\": \"eigen_sgemm\", \"threads\": %d, \"n\": %d, \"gflops\": %.1f}\n", threads, n, gflops);
  return 0;
}
