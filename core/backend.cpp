#include "advgrad/core/backend.h"

namespace advgrad {

Backend& backend_for(Device device) { return device == Device::CPU ? cpu_backend() : reference_backend(); }

// The default convolutions: the whole batch's columns at once, one batched GEMM per direction and group.
// A group's operands are views at that group's offset (weight rows, cols rows, output channels).

namespace {
struct GroupSizes {
  int64_t O, Og, CKK, CgKK, L;  // output channels (all, per group), cols rows (all, per group), positions
};
GroupSizes group_sizes(const Conv2dGeometry& g, int64_t O) {
  const int64_t KK = g.kernel_h * g.kernel_w;
  return {O, O / g.groups, g.channels * KK, g.channels_per_group() * KK, g.out_h() * g.out_w()};
}
// A dense view of t from element `offset` on (the GEMM reads it with its own strides).
Tensor at_offset(const Tensor& t, int64_t offset) { return t.as_strided({t.numel() - offset}, {1}, t.offset() + offset); }
}  // namespace

void Backend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& g, Tensor& out) {
  const GroupSizes z = group_sizes(g, w.size(0));
  Tensor cols = Tensor::empty({g.batch, z.CKK, z.L}, x.dtype(), x.device());
  im2col(x, g, cols);
  if (bias.defined()) {  // start from the bias and let the GEMM accumulate onto it
    Tensor dst = out.as_strided({g.batch, z.O, z.L}, {z.O * z.L, z.L, 1}, out.offset());
    copy(bias.as_strided({g.batch, z.O, z.L}, {0, 1, 0}, bias.offset()), dst);
  }
  for (int64_t j = 0; j < g.groups; ++j) {
    Tensor out_j = at_offset(out, j * z.Og * z.L);
    gemm(false, false, g.batch, z.Og, z.L, z.CgKK, 1.0, at_offset(w, j * z.Og * z.CgKK), 0,
         at_offset(cols, j * z.CgKK * z.L), z.CKK * z.L, bias.defined() ? 1.0 : 0.0, out_j, z.O * z.L);
  }
}

void Backend::conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Conv2dGeometry& g,
                                    Tensor& grad_x) {
  const GroupSizes z = group_sizes(g, w.size(0));
  Tensor dcols = Tensor::empty({g.batch, z.CKK, z.L}, grad_out.dtype(), grad_out.device());
  for (int64_t j = 0; j < g.groups; ++j) {  // W_j^T dout_n,j
    Tensor dcols_j = at_offset(dcols, j * z.CgKK * z.L);
    gemm(true, false, g.batch, z.CgKK, z.L, z.Og, 1.0, at_offset(w, j * z.Og * z.CgKK), 0,
         at_offset(grad_out, j * z.Og * z.L), z.O * z.L, 0.0, dcols_j, z.CKK * z.L);
  }
  col2im(dcols, g, grad_x);
}

void Backend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g,
                                     Tensor& grad_w) {
  const GroupSizes z = group_sizes(g, grad_w.size(0));
  Tensor cols = Tensor::empty({g.batch, z.CKK, z.L}, x.dtype(), x.device());
  im2col(x, g, cols);
  // A GEMM batch with a shared C (batch stride 0) and beta 1 adds the products in sample order.
  fill(grad_w, 0.0);
  for (int64_t j = 0; j < g.groups; ++j) {
    Tensor grad_w_j = at_offset(grad_w, j * z.Og * z.CgKK);
    gemm(false, true, g.batch, z.Og, z.CgKK, z.L, 1.0, at_offset(grad_out, j * z.Og * z.L), z.O * z.L,
         at_offset(cols, j * z.CgKK * z.L), z.CKK * z.L, 1.0, grad_w_j, 0);
  }
}

}  // namespace advgrad
