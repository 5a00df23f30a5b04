// cpu backend, the recurrent family: the fused LSTM cell and its backward (Eigen arrays per row).
#include "advgrad/core/backends/cpu/cpu_backend.h"
#include "advgrad/core/backends/cpu/eigen.h"
#include "advgrad/core/parallel.h"

namespace advgrad::ADVGRAD_CPU_NS {
namespace {

constexpr int64_t kCellGrain = 1 << 14;  // gate elements per chunk of an LSTM cell (transcendental-heavy)

// One pass per row over the four gate blocks with Eigen's vectorised logistic/tanh (float: rational
// approximations within a few ulp; double: libm), instead of ~15 separate element-wise graph ops.
template <class T>
void lstm_cell_typed(T* gates, const T* c_prev, T* c, T* h, int64_t rows, int64_t H) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  parallel_for(rows, grain_for(4 * H, kCellGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* row = gates + r * 4 * H;
      Eigen::Map<Arr> i(row, H), f(row + H, H), g(row + 2 * H, H), o(row + 3 * H, H);
      Eigen::Map<const Arr> cp(c_prev + r * H, H);
      Eigen::Map<Arr> cn(c + r * H, H), hn(h + r * H, H);
      i = i.logistic();
      f = f.logistic();
      g = g.tanh();
      o = o.logistic();
      cn = f * cp + i * g;
      hn = o * cn.tanh();
    }
  });
}

template <class T>
void lstm_cell_backward_typed(const T* act, const T* c_prev, const T* c, const T* dh, const T* dc, T* dgates,
                              T* dc_prev, int64_t rows, int64_t H) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  parallel_for(rows, grain_for(4 * H, kCellGrain), [&](int64_t r0, int64_t r1) {
    Arr tc(H), dct(H);
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = act + r * 4 * H;
      T* drow = dgates + r * 4 * H;
      Eigen::Map<const Arr> i(row, H), f(row + H, H), g(row + 2 * H, H), o(row + 3 * H, H);
      Eigen::Map<const Arr> cp(c_prev + r * H, H), cv(c + r * H, H), gh(dh + r * H, H), gc(dc + r * H, H);
      tc = cv.tanh();
      dct = gc + gh * o * (T(1) - tc * tc);
      Eigen::Map<Arr>(drow, H) = dct * g * i * (T(1) - i);
      Eigen::Map<Arr>(drow + H, H) = dct * cp * f * (T(1) - f);
      Eigen::Map<Arr>(drow + 2 * H, H) = dct * i * (T(1) - g * g);
      Eigen::Map<Arr>(drow + 3 * H, H) = gh * tc * o * (T(1) - o);
      Eigen::Map<Arr>(dc_prev + r * H, H) = dct * f;
    }
  });
}

}  // namespace

void CpuBackend::lstm_cell(Tensor& gates, const Tensor& c_prev, Tensor& c, Tensor& h) {
  dispatch_floating(gates.dtype(), "lstm_cell", [&](auto z) {
    using T = decltype(z);
    lstm_cell_typed<T>(gates.data<T>(), c_prev.data<T>(), c.data<T>(), h.data<T>(), c_prev.size(0),
                       c_prev.size(1));
  });
}

void CpuBackend::lstm_cell_backward(const Tensor& act, const Tensor& c_prev, const Tensor& c, const Tensor& dh,
                                    const Tensor& dc, Tensor& dgates, Tensor& dc_prev) {
  dispatch_floating(act.dtype(), "lstm_cell_backward", [&](auto z) {
    using T = decltype(z);
    lstm_cell_backward_typed<T>(act.data<T>(), c_prev.data<T>(), c.data<T>(), dh.data<T>(), dc.data<T>(),
                                dgates.data<T>(), dc_prev.data<T>(), c_prev.size(0), c_prev.size(1));
  });
}

}  // namespace advgrad::ADVGRAD_CPU_NS
