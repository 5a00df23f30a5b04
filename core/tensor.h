// Tensor: a cheap, shared handle to (storage, offset, shape, strides, dtype, device) plus autograd
// metadata. Copies of a Tensor share everything; views (reshape, slice, permute, expand) share storage.
//
// This header holds what needs no graph: creation, element access, printing, layout, in-place updates.
// Differentiable operations (add, matmul, conv2d, ...) are free functions in autograd/ops.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/core/device.h"
#include "advgrad/core/dtype.h"
#include "advgrad/core/error.h"
#include "advgrad/core/generator.h"
#include "advgrad/core/shape.h"
#include "advgrad/core/storage.h"

namespace advgrad {

class Node;  // autograd/node.h: a recorded operation. Core only holds pointers to it.

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape, strides;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  // autograd
  bool requires_grad = false;                // set on leaves by the user; non-leaves have grad_fn
  std::shared_ptr<TensorImpl> grad;          // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;             // the op that produced this tensor (null for leaves)
  std::weak_ptr<Node> grad_accumulator;      // the leaf's AccumulateGrad node while a graph uses it
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A fresh dense tensor; contents uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  // Elements are laid out densely in row-major order from offset() (views made by reshape/first-axis
  // slicing are; permuted, expanded or inner-sliced views are not).
  bool is_contiguous() const;

  // Host pointer to element 0 (after the offset), for Device::CPU tensors only: TypeError on another
  // device (copy with .to(Device::CPU)) or if T does not match dtype(). Code outside core/ uses tensor ops,
  // item(), to_vector() or copy_to_host() instead.
  template <class T> T* data() const;
  void* raw_data() const;

  // Bytes between host memory and a dense tensor on any device (through its device's Allocator):
  // nbytes starting byte_offset bytes after element 0. ValueError if not dense or out of range. For files
  // and datasets (serialization reads and writes in pieces, the file's bytes never pass through data<T>()).
  void copy_to_host(void* host, size_t nbytes, size_t byte_offset = 0) const;
  Tensor& copy_from_host_(const void* host, size_t nbytes, size_t byte_offset = 0);  // in place (bumps the version)

  // Element access for tests and small tools (index has one entry per dim; negative counts from end).
  double at(std::initializer_list<int64_t> index) const;
  double at(const std::vector<int64_t>& index) const;
  void set(const std::vector<int64_t>& index, double value);  // an in-place update (bumps the version)
  double item() const;  // the single element of a one-element tensor
  template <class T> std::vector<T> to_vector() const;  // all elements in row-major order, converted to T

  // Layout and copies. None of these record a graph (see autograd/ops.h for differentiable versions).
  Tensor dense() const;                      // *this if contiguous, else a dense copy
  Tensor clone() const;                      // always a new dense copy (no graph, no grad)
  Tensor to(Device device) const;            // copy onto another device (or *this if already there)
  Tensor to(DType dtype) const;              // converted copy (or *this if same dtype)
  // A view sharing storage. Strides may be 0 (broadcast). Checked to stay inside the storage.
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // In-place updates. They bump the storage version (so autograd can catch a modified saved tensor) and
  // refuse a tensor that requires grad unless grad mode is off (as in optimizer steps and attack updates).
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);                       // src broadcasts to this shape; dtype converts
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other (other broadcasts)
  Tensor& mul_(double factor);
  Tensor& clamp_(double lo, double hi);

  // Autograd metadata.
  bool requires_grad() const { return impl().requires_grad || impl().grad_fn != nullptr; }
  Tensor& requires_grad_(bool on = true);  // leaves only; floating dtypes only
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor detach() const;  // shares storage, no graph, requires_grad false
  uint64_t version() const { return impl().storage->version(); }
  void bump_version() const { impl().storage->bump_version(); }
  // True when both handles share storage (one is a view of the other, or they are the same tensor).
  bool shares_storage_with(const Tensor& other) const { return impl().storage == other.impl().storage; }

  std::string to_string(int64_t max_elements = 64) const;
  std::string describe() const;  // "float32[2,3] cpu"

  TensorImpl& impl() const;  // throws on an undefined tensor
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
  void check_inplace(const char* op) const;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- creation (results are leaves that do not require grad) ----
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
Tensor scalar_tensor(double value, DType dtype = DType::F32, Device device = Device::CPU);  // 0-d
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// [start, start+step, ...) below end (like numpy.arange).
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::F32, Device device = Device::CPU);
Tensor arange(int64_t n, DType dtype = DType::F32, Device device = Device::CPU);
// Copies values; shape defaults to [values.size()]. ShapeError if numel(shape) != values.size().
Tensor from_vector(const std::vector<float>& values, const Shape& shape = {}, Device device = Device::CPU);
Tensor from_vector(const std::vector<double>& values, const Shape& shape = {}, Device device = Device::CPU);
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape = {}, Device device = Device::CPU);
// Copies numel(shape) elements of `dtype` from a raw buffer.
Tensor from_blob(const void* data, const Shape& shape, DType dtype, Device device = Device::CPU);
// Random tensors from a counter-based generator; each call reserves numel indices of gen.
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::F32, Device device = Device::CPU);   // U[0,1)
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::F32, Device device = Device::CPU);  // N(0,1)
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = DType::F32,
               Device device = Device::CPU);
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, Device device = Device::CPU);  // int64

// ---- row selection along the first axis (no graph; used to attack only the samples still standing) ----
// [len(rows), ...] copy of t's rows (each index in [0, t.size(0))).
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows);
// dst[rows[i]] = src[i] in place (dst dense; bumps its version; no grad check: for buffers only).
void put_rows(Tensor& dst, const std::vector<int64_t>& rows, const Tensor& src);

// Positions of the non-zero elements of a 1-D mask, in increasing order: the rows a per-sample mask picks,
// for take_rows/put_rows (their count is a shape, so it has to reach the host; the mask itself stays a tensor).
std::vector<int64_t> nonzero_indices(const Tensor& mask);

// ---- comparisons for tests ----
// |a - b| <= atol + rtol * |b| elementwise, shapes equal (no broadcasting), NaNs never close.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
double max_abs_diff(const Tensor& a, const Tensor& b);
// True when shape, dtype and every byte of the values are equal (for determinism tests).
bool bitwise_equal(const Tensor& a, const Tensor& b);

}  // namespace advgrad
