// The default CPU backend (internal header): Eigen for GEMM, parallel_for (OpenMP) over disjoint outputs for
// the rest. The class is declared here; its entry points are defined by op family, one file each in this
// directory (elementwise, reduce, gather_scatter, softmax, gemm, conv, pool, lstm_cell, random), and
// cpu_backend.cpp holds the one instance. Included only by those files.
//
// On x86-64 (unless ADVGRAD_NATIVE) these files are compiled once per instruction set (isa.cmake), each
// copy in its own namespace, advgrad::ADVGRAD_CPU_NS (cpu_avx512, cpu_avx2, cpu_baseline), with Eigen
// renamed to match, so that no function compiled for AVX-512 can stand in for a baseline one at link
// time; dispatch.cpp picks the copy this CPU can run (core/cpu_features.h). A single build is plain `cpu`.
//
// Every kernel gives the results of the reference backend (core/backends/reference.cpp), up to float
// rounding where the order of a sum differs. Determinism rules followed throughout:
// - work is cut into chunks whose size is a function of the problem shape (the grains below), never of
//   the thread count, and each chunk writes its own outputs;
// - a sum is accumulated sequentially inside one chunk; when a long sum is split, the partial sums are
//   combined in index order on one thread. No float atomics, no OpenMP reductions.
#pragma once
#include <algorithm>
#include <cstdint>

#include "advgrad/core/backend.h"
#include "advgrad/core/parallel.h"

#ifndef ADVGRAD_CPU_NS
#define ADVGRAD_CPU_NS cpu
#endif

namespace advgrad::ADVGRAD_CPU_NS {
// The helpers have internal linkage in each file that includes this header, as when the backend was one
// file (the class itself is shared).
namespace {

// ---- work sizes (all constants: chunking depends on the problem shape only) ----
constexpr int64_t kElemGrain = 1 << 15;   // elements per chunk of an element-wise map
constexpr int64_t kReduceGrain = 1 << 14; // input elements per chunk of a reduction / softmax
constexpr int64_t kReduceTile = 256;      // output columns per chunk when reducing with inner > 1
constexpr int64_t kSplitChunk = 4096;     // length of a partial sum when one long sum is split
constexpr int64_t kSplitMaxOutputs = 16;  // split the reduced axis only when there are this few outputs
constexpr int64_t kPlaneWork = 1 << 14;   // multiply-adds per chunk of conv/pool planes
constexpr int64_t kGemmSplitWork = 1 << 20;  // M*N*K above which one matrix is cut into output tiles
constexpr int64_t kGemmTile = 64;            // rows or columns of C per tile
constexpr int64_t kGemmBatchWork = 1 << 16;  // M*N*K per chunk of a batched GEMM
constexpr int64_t kRandGrain = 4096;         // elements per chunk of a random fill
constexpr int64_t kConvSampleWork = 1 << 20; // multiply-adds per chunk of samples of a convolution
constexpr int64_t kConvWeightGroup = 16;     // samples per partial sum of a convolution's weight gradient
constexpr int64_t kConvWideRatio = 10;       // widened input-gradient GEMM: extra MACs per saved col2im add

// Items per chunk so that a chunk holds about `target` units of work.
inline int64_t grain_for(int64_t work_per_item, int64_t target) {
  return std::max<int64_t>(1, target / std::max<int64_t>(1, work_per_item));
}

template <class T> bool is_nan(T v) { return v != v; }  // false for int64

// Conv2dGeometry::out_h/out_w, here with internal linkage: the copies of this backend must not call an
// inline function of another header that the compiler may emit out of line (a weak symbol that one copy's
// instruction set could supply to all: see isa.cmake); std:: containers are avoided for the same reason.
// The same rule as Conv2dGeometry::out_size (every kernel is checked against the reference backend, which
// uses that one).
inline int64_t out_extent(const Conv2dGeometry& g, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (g.ceil_mode ? span + s - 1 : span) / s + 1;
  if (g.ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}
inline int64_t out_h(const Conv2dGeometry& g) {
  return out_extent(g, g.height, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
}
inline int64_t out_w(const Conv2dGeometry& g) {
  return out_extent(g, g.width, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
}

// Calls f(p0, p1) over chunks of the batch*channels planes; `work` is the cost of one plane.
template <class F>
void for_planes(const Conv2dGeometry& g, int64_t work, F&& f) {
  parallel_for(g.batch * g.channels, grain_for(work, kPlaneWork), f);
}

}  // namespace

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  // elementwise.cpp
  void fill(Tensor& out, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void unary(UnaryOp op, const Tensor& src, Tensor& dst, double a, double b) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& dst) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& dst) override;
  // reduce.cpp
  void reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& dst) override;
  void arg_reduce(ReduceOp op, const Tensor& src, int64_t outer, int64_t n, int64_t inner, Tensor& idx) override;
  // gather_scatter.cpp
  void gather(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner, Tensor& dst) override;
  void scatter_add(const Tensor& src, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                   Tensor& dst) override;
  // softmax.cpp
  void softmax(const Tensor& src, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& dst) override;
  // gemm.cpp
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
            const Tensor& A, int64_t batch_stride_a, const Tensor& B, int64_t batch_stride_b, double beta, Tensor& C,
            int64_t batch_stride_c) override;
  // conv.cpp
  void im2col(const Tensor& x, const Conv2dGeometry& g, Tensor& cols) override;
  void col2im(const Tensor& cols, const Conv2dGeometry& g, Tensor& x) override;
  void conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& g, Tensor& out) override;
  void conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Conv2dGeometry& g,
                             Tensor& grad_x) override;
  void conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g,
                              Tensor& grad_w) override;
  // pool.cpp
  void max_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out, Tensor& idx) override;
  void max_pool2d_backward(const Tensor& grad_out, const Tensor& idx, const Conv2dGeometry& g,
                           Tensor& grad_x) override;
  void avg_pool2d(const Tensor& x, const Conv2dGeometry& g, Tensor& out) override;
  void avg_pool2d_backward(const Tensor& grad_out, const Conv2dGeometry& g, Tensor& grad_x) override;
  // lstm_cell.cpp
  void lstm_cell(Tensor& gates, const Tensor& c_prev, Tensor& c, Tensor& h) override;
  void lstm_cell_backward(const Tensor& act, const Tensor& c_prev, const Tensor& c, const Tensor& dh,
                          const Tensor& dc, Tensor& dgates, Tensor& dc_prev) override;
  // random.cpp
  void random(RandomKind kind, Tensor& out, uint64_t seed, uint64_t stream, uint64_t offset, double a,
              double b) override;
};

// This copy's one instance (cpu_backend.cpp); core/backends/cpu/dispatch.cpp hands out the chosen copy's.
Backend& backend_instance();

}  // namespace advgrad::ADVGRAD_CPU_NS
