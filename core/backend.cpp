#include "core/backend.h"

namespace advgrad {

Backend& backend_for(Device device) { return device == Device::CPU ? cpu_backend() : reference_backend(); }

// The default convolutions: the whole batch's columns at once, one batched GEMM per direction.

void Backend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dGeometry& g, Tensor& out) {
  const int64_t O = w.size(0), CKK = g.channels * g.kernel_h * g.kernel_w, L = g.out_h() * g.out_w();
  Tensor cols = Tensor::empty({g.batch, CKK, L}, x.dtype(), x.device());
  im2col(x, g, cols);
  if (bias.defined()) {  // start from the bias and let the GEMM accumulate onto it
    Tensor dst = out.as_strided({g.batch, O, L}, {O * L, L, 1}, 0);
    copy(bias.as_strided({g.batch, O, L}, {0, 1, 0}, bias.offset()), dst);
  }
  gemm(false, false, g.batch, O, L, CKK, 1.0, w, 0, cols, CKK * L, bias.defined() ? 1.0 : 0.0, out, O * L);
}

void Backend::conv2d_backward_input(const Tensor& grad_out, const Tensor& w, const Conv2dGeometry& g,
                                    Tensor& grad_x) {
  const int64_t O = w.size(0), CKK = g.channels * g.kernel_h * g.kernel_w, L = g.out_h() * g.out_w();
  Tensor dcols = Tensor::empty({g.batch, CKK, L}, grad_out.dtype(), grad_out.device());
  gemm(true, false, g.batch, CKK, L, O, 1.0, w, 0, grad_out, O * L, 0.0, dcols, CKK * L);  // W^T dout_n
  col2im(dcols, g, grad_x);
}

void Backend::conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g,
                                     Tensor& grad_w) {
  const int64_t O = grad_w.size(0), CKK = g.channels * g.kernel_h * g.kernel_w, L = g.out_h() * g.out_w();
  Tensor cols = Tensor::empty({g.batch, CKK, L}, x.dtype(), x.device());
  im2col(x, g, cols);
  // A GEMM batch with a shared C (batch stride 0) and beta 1 adds the products in sample order.
  fill(grad_w, 0.0);
  gemm(false, true, g.batch, O, CKK, L, 1.0, grad_out, O * L, cols, CKK * L, 1.0, grad_w, 0);
}

}  // namespace advgrad
