#include "advgrad/core/tensor.h"

#include <cmath>
#include <cstring>
#include <type_traits>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "advgrad/core/backend.h"
#include "advgrad/core/device_memory.h"
#include "advgrad/core/grad_mode.h"

namespace advgrad {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  int64_t n = shape_numel(shape);
  impl->storage = std::make_shared<Storage>(size_t(n) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = dense_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

TensorImpl& Tensor::impl() const {
  if (!impl_) throw ValueError("use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t axis) const { return shape()[size_t(normalize_axis(axis, dim(), "size"))]; }

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  const auto& st = strides();
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == 1) continue;  // a size-1 dim's stride never matters
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* device_raw_data(const Tensor& t) {
  auto& im = t.impl();
  return static_cast<char*>(im.storage->block()) + im.offset * int64_t(dtype_size(im.dtype));
}

template <class T>
T* device_data(const Tensor& t) {
  if (t.dtype() != dtype_of<T>::value)
    throw TypeError(std::string("data<") + dtype_name(dtype_of<T>::value) + ">() on a " + t.describe());
  return static_cast<T*>(device_raw_data(t));
}
template float* device_data<float>(const Tensor&);
template double* device_data<double>(const Tensor&);
template int64_t* device_data<int64_t>(const Tensor&);

namespace {
void check_host_access(const Tensor& t, const char* what) {
  if (t.device() != Device::CPU)
    throw TypeError(std::string(what) + " on a " + t.describe() + ": the memory of device '" +
                    device_name(t.device()) + "' is not host memory; copy the tensor with .to(Device::CPU) first");
}
}  // namespace

void* Tensor::raw_data() const {
  check_host_access(*this, "raw_data()");
  return device_raw_data(*this);
}

template <class T>
T* Tensor::data() const {
  if (device() != Device::CPU) check_host_access(*this, (std::string("data<") + dtype_name(dtype_of<T>::value) + ">()").c_str());
  return device_data<T>(*this);
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;

namespace {
// Byte position of element 0 inside the storage's block.
size_t byte_offset_of(const Tensor& t) { return size_t(t.offset()) * dtype_size(t.dtype()); }

void check_host_copy(const Tensor& t, size_t nbytes, size_t byte_offset, const char* op) {
  if (!t.is_contiguous()) throw ValueError(std::string(op) + ": the tensor " + t.describe() + " is not dense");
  const size_t have = size_t(t.numel()) * dtype_size(t.dtype());
  if (byte_offset > have || nbytes > have - byte_offset)
    throw ValueError(std::string(op) + ": " + std::to_string(nbytes) + " bytes at byte offset " +
                     std::to_string(byte_offset) + " leave the " + std::to_string(have) + " bytes of " + t.describe());
}
}  // namespace

void Tensor::copy_to_host(void* host, size_t nbytes, size_t byte_offset) const {
  check_host_copy(*this, nbytes, byte_offset, "copy_to_host");
  impl().storage->allocator().copy_out(impl().storage->block(), byte_offset_of(*this) + byte_offset, host, nbytes);
}

Tensor& Tensor::copy_from_host_(const void* host, size_t nbytes, size_t byte_offset) {
  check_inplace("copy_from_host_");
  check_host_copy(*this, nbytes, byte_offset, "copy_from_host_");
  impl().storage->allocator().copy_in(impl().storage->block(), byte_offset_of(*this) + byte_offset, host, nbytes);
  bump_version();
  return *this;
}

namespace {
int64_t element_offset(const Tensor& t, const std::vector<int64_t>& index) {
  if (int64_t(index.size()) != t.dim())
    throw ShapeError("at: index of rank " + std::to_string(index.size()) + " for a tensor of shape " +
                     shape_str(t.shape()));
  int64_t off = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    int64_t k = index[i] < 0 ? index[i] + t.shape()[i] : index[i];
    if (k < 0 || k >= t.shape()[i])
      throw ValueError("at: index " + std::to_string(index[i]) + " out of range for dim " + std::to_string(i) +
                       " of shape " + shape_str(t.shape()));
    off += k * t.strides()[i];
  }
  return off;
}
}  // namespace

double Tensor::at(std::initializer_list<int64_t> index) const { return at(std::vector<int64_t>(index)); }

double Tensor::at(const std::vector<int64_t>& index) const {
  int64_t off = element_offset(*this, index);
  return dispatch_dtype(dtype(), [&](auto t) {
    using T = decltype(t);
    T value;
    Storage& st = *impl().storage;
    st.allocator().copy_out(st.block(), size_t(offset() + off) * sizeof(T), &value, sizeof(T));
    return double(value);
  });
}

void Tensor::set(const std::vector<int64_t>& index, double value) {
  check_inplace("set");
  int64_t off = element_offset(*this, index);
  dispatch_dtype(dtype(), [&](auto t) {
    using T = decltype(t);
    const T v = T(value);
    Storage& st = *impl().storage;
    st.allocator().copy_in(st.block(), size_t(offset() + off) * sizeof(T), &v, sizeof(T));
  });
  bump_version();
}

double Tensor::item() const {
  if (numel() != 1) throw ShapeError("item: tensor of shape " + shape_str(shape()) + " has " +
                                     std::to_string(numel()) + " elements, not 1");
  return at(std::vector<int64_t>(size_t(dim()), 0));
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor d = dense();
  std::vector<T> out(size_t(d.numel()));
  dispatch_dtype(d.dtype(), [&](auto t) {
    using S = decltype(t);
    if constexpr (std::is_same<S, T>::value) {
      d.copy_to_host(out.data(), out.size() * sizeof(T));
    } else {
      std::vector<S> host(out.size());
      d.copy_to_host(host.data(), host.size() * sizeof(S));
      for (size_t i = 0; i < out.size(); ++i) out[i] = T(host[i]);
    }
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor Tensor::dense() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  backend_for(device()).copy(*this, out);
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = dense();
  Tensor out = empty(shape(), dtype(), d);
  const size_t nbytes = size_t(numel()) * dtype_size(dtype());
  // One side is the host: copy straight between it and the other device. Otherwise stage through the host.
  if (nbytes == 0) return out;
  if (device() == Device::CPU) {
    out.copy_from_host_(src.raw_data(), nbytes);
  } else if (d == Device::CPU) {
    src.copy_to_host(out.raw_data(), nbytes);
  } else {
    std::vector<char> host(nbytes);
    src.copy_to_host(host.data(), nbytes);
    out.copy_from_host_(host.data(), nbytes);
  }
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), t, device());
  backend_for(device()).copy(*this, out);
  return out;
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  if (shape.size() != strides.size())
    throw ShapeError("as_strided: shape " + shape_str(shape) + " and strides " + shape_str(strides) + " differ in rank");
  // The view must stay inside the storage: check the lowest and highest element it can touch.
  int64_t lo = offset, hi = offset;
  if (shape_numel(shape) > 0)
    for (size_t i = 0; i < shape.size(); ++i) {
      if (strides[i] < 0) lo += strides[i] * (shape[i] - 1);
      else hi += strides[i] * (shape[i] - 1);
    }
  int64_t capacity = int64_t(impl().storage->nbytes() / dtype_size(dtype()));
  if (lo < 0 || (shape_numel(shape) > 0 && hi >= capacity))
    throw ValueError("as_strided: view " + shape_str(shape) + " with strides " + shape_str(strides) +
                     " at offset " + std::to_string(offset) + " leaves a storage of " + std::to_string(capacity) +
                     " elements");
  auto v = std::make_shared<TensorImpl>();
  v->storage = impl().storage;
  v->offset = offset;
  v->shape = shape;
  v->strides = strides;
  v->dtype = dtype();
  v->device = device();
  return Tensor(std::move(v));
}

void Tensor::check_inplace(const char* op) const {
  // In-place changes are not recorded in the graph, so they are refused on any tensor that is part of one.
  if (requires_grad() && GradMode::is_enabled())
    throw AutogradError(std::string(op) + ": in-place update of a tensor that requires grad; do it under "
                        "NoGradGuard or on a detach()ed tensor");
  for (size_t i = 0; i < shape().size(); ++i)
    if (strides()[i] == 0 && shape()[i] > 1)
      throw ValueError(std::string(op) + ": in-place update of an expanded (broadcast) view " + shape_str(shape()));
}

Tensor& Tensor::fill_(double value) {
  check_inplace("fill_");
  backend_for(device()).fill(*this, value);
  bump_version();
  return *this;
}

namespace {
// `src` as a view of `shape` (NumPy broadcasting; stride 0 on broadcast dims).
Tensor broadcast_view(const Tensor& src, const Shape& shape, const char* op) {
  if (broadcast_shapes(src.shape(), shape, op) != shape)
    throw ShapeError(std::string(op) + ": " + shape_str(src.shape()) + " does not broadcast to " + shape_str(shape));
  Shape st(shape.size(), 0);
  size_t lead = shape.size() - src.shape().size();
  for (size_t i = 0; i < src.shape().size(); ++i)
    st[lead + i] = src.shape()[i] == 1 ? 0 : src.strides()[i];
  return src.as_strided(shape, st, src.offset());
}
void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device())
    throw TypeError(std::string(op) + ": tensors on different devices (" + device_name(a.device()) + " and " +
                    device_name(b.device()) + ")");
}
}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace("copy_");
  check_same_device(*this, src, "copy_");
  Tensor s = broadcast_view(src, shape(), "copy_");
  if (shares_storage_with(src)) s = s.clone();  // an overlapping copy must read before it writes
  backend_for(device()).copy(s, *this);
  bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace("add_");
  check_same_device(*this, other, "add_");
  Tensor o = other.dtype() == dtype() ? other : other.to(dtype());
  o = broadcast_view(o, shape(), "add_");
  auto& be = backend_for(device());
  if (alpha != 1.0) {
    Tensor scaled = empty(o.shape(), dtype(), device());
    be.unary(UnaryOp::MulScalar, o, scaled, alpha);
    o = scaled;
  } else if (shares_storage_with(other)) {
    o = o.clone();
  }
  be.binary(BinaryOp::Add, *this, o, *this);
  bump_version();
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  check_inplace("mul_");
  backend_for(device()).unary(UnaryOp::MulScalar, *this, *this, factor);
  bump_version();
  return *this;
}

Tensor& Tensor::clamp_(double lo, double hi) {
  check_inplace("clamp_");
  backend_for(device()).unary(UnaryOp::Clamp, *this, *this, lo, hi);
  bump_version();
  return *this;
}

Tensor& Tensor::requires_grad_(bool on) {
  if (!is_leaf()) throw AutogradError("requires_grad_: only leaf tensors can change requires_grad (this one is the "
                                      "output of an op; detach() it first)");
  if (on && !is_floating(dtype())) throw TypeError("requires_grad_: int64 tensors cannot require grad");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  Tensor d = as_strided(shape(), strides(), offset());
  return d;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device_name(device());
}

std::string Tensor::to_string(int64_t max_elements) const {
  std::ostringstream os;
  os << "tensor(" << describe();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  if (numel() > max_elements) return os.str() + " {" + std::to_string(numel()) + " elements}";
  auto v = to_vector<double>();
  os << std::setprecision(6);
  // Nested brackets per dim: an element closes every dim whose index wraps after it.
  const Shape& s = shape();
  size_t n = v.size();
  os << "\n";
  for (size_t i = 0; i < s.size(); ++i) os << "[";
  for (size_t k = 0; k < n; ++k) {
    os << v[k];
    size_t closes = 0;
    int64_t stride = 1;
    for (size_t d = s.size(); d-- > 0;) {
      stride *= s[d];
      if ((int64_t(k) + 1) % stride == 0) ++closes;
      else break;
    }
    for (size_t c = 0; c < closes; ++c) os << "]";
    if (k + 1 < n) {
      os << (closes ? ",\n" : ", ");
      for (size_t c = 0; c < closes; ++c) os << "[";
    }
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

// ---- creation ----
Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_for(device).fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    throw ValueError("arange: step must be non-zero and bounds finite");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = Tensor::empty({n}, dtype, device);
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    std::vector<T> host(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) host[size_t(i)] = T(start + double(i) * step);
    t.copy_from_host_(host.data(), host.size() * sizeof(T));
  });
  return t;
}
Tensor arange(int64_t n, DType dtype, Device device) { return arange(0.0, double(n), 1.0, dtype, device); }

Tensor from_blob(const void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  t.copy_from_host_(data, size_t(t.numel()) * dtype_size(dtype));
  return t;
}

namespace {
template <class T>
Tensor from_vector_impl(const std::vector<T>& v, const Shape& shape, Device device) {
  Shape s = shape.empty() ? Shape{int64_t(v.size())} : shape;
  if (shape_numel(s) != int64_t(v.size()))
    throw ShapeError("from_vector: " + std::to_string(v.size()) + " values do not fill shape " + shape_str(s));
  return from_blob(v.data(), s, dtype_of<T>::value, device);
}
}  // namespace
Tensor from_vector(const std::vector<float>& v, const Shape& s, Device d) { return from_vector_impl(v, s, d); }
Tensor from_vector(const std::vector<double>& v, const Shape& s, Device d) { return from_vector_impl(v, s, d); }
Tensor from_vector(const std::vector<int64_t>& v, const Shape& s, Device d) { return from_vector_impl(v, s, d); }

namespace {
Tensor random_tensor(RandomKind kind, const Shape& shape, double a, double b, Generator& gen, DType dtype,
                     Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  uint64_t offset = gen.reserve(uint64_t(t.numel()));
  backend_for(device).random(kind, t, gen.seed(), gen.stream(), offset, a, b);
  return t;
}
}  // namespace
Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
  return uniform(shape, 0.0, 1.0, gen, dtype, device);
}
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype, Device device) {
  if (!is_floating(dtype)) throw TypeError("uniform: needs a floating dtype");
  if (!(lo <= hi)) throw ValueError("uniform: low " + std::to_string(lo) + " > high " + std::to_string(hi));
  return random_tensor(RandomKind::Uniform, shape, lo, hi, gen, dtype, device);
}
Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  if (!is_floating(dtype)) throw TypeError("randn: needs a floating dtype");
  return random_tensor(RandomKind::Normal, shape, 0.0, 1.0, gen, dtype, device);
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, Device device) {
  if (low >= high) throw ValueError("randint: low " + std::to_string(low) + " >= high " + std::to_string(high));
  return random_tensor(RandomKind::Randint, shape, double(low), double(high), gen, DType::I64, device);
}

// ---- row selection ----
namespace {
size_t row_bytes(const Tensor& t) { return size_t(t.numel() / std::max<int64_t>(t.size(0), 1)) * dtype_size(t.dtype()); }
void check_rows(const Tensor& t, const std::vector<int64_t>& rows, const char* op) {
  if (t.dim() < 1) throw ShapeError(std::string(op) + ": a 0-d tensor has no rows");
  for (int64_t r : rows)
    if (r < 0 || r >= t.size(0))
      throw ValueError(std::string(op) + ": row " + std::to_string(r) + " out of range for " + shape_str(t.shape()));
}
}  // namespace

Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  check_rows(t, rows, "take_rows");
  Tensor src = t.dense();
  Shape shape = t.shape();
  shape[0] = int64_t(rows.size());
  Tensor out = Tensor::empty(shape, t.dtype(), t.device());
  size_t rb = row_bytes(src);
  Storage &from = *src.impl().storage, &to = *out.impl().storage;
  for (size_t i = 0; i < rows.size(); ++i)
    from.allocator().copy(from.block(), byte_offset_of(src) + size_t(rows[i]) * rb, to.block(), i * rb, rb);
  return out;
}

void put_rows(Tensor& dst, const std::vector<int64_t>& rows, const Tensor& src) {
  check_rows(dst, rows, "put_rows");
  if (!dst.is_contiguous()) throw ValueError("put_rows: destination must be dense");
  Shape expect = dst.shape();
  expect[0] = int64_t(rows.size());
  if (src.shape() != expect || src.dtype() != dst.dtype())
    throw ShapeError("put_rows: source " + src.describe() + " for rows of " + dst.describe());
  if (src.device() != dst.device())
    throw TypeError("put_rows: source " + src.describe() + " and destination " + dst.describe() + " differ in device");
  Tensor s = src.shares_storage_with(dst) ? src.clone() : src.dense();
  size_t rb = row_bytes(dst);
  Storage &from = *s.impl().storage, &to = *dst.impl().storage;
  for (size_t i = 0; i < rows.size(); ++i)
    from.allocator().copy(from.block(), byte_offset_of(s) + i * rb, to.block(), byte_offset_of(dst) + size_t(rows[i]) * rb, rb);
  dst.bump_version();
}

std::vector<int64_t> nonzero_indices(const Tensor& mask) {
  if (mask.dim() != 1) throw ShapeError("nonzero_indices: the mask must be 1-D, got " + shape_str(mask.shape()));
  const std::vector<double> values = mask.to_vector<double>();
  std::vector<int64_t> rows;
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] != 0) rows.push_back(int64_t(i));
  return rows;
}

// ---- comparisons ----
namespace {
void check_comparable(const Tensor& a, const Tensor& b, const char* op) {
  if (a.shape() != b.shape())
    throw ShapeError(std::string(op) + ": shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
}
}  // namespace

double max_abs_diff(const Tensor& a, const Tensor& b) {
  check_comparable(a, b, "max_abs_diff");
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    double d = std::fabs(va[i] - vb[i]);
    if (std::isnan(d)) return d;
    m = std::max(m, d);
  }
  return m;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  check_comparable(a, b, "allclose");
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) {
    if (va[i] == vb[i]) continue;  // equal infinities
    if (!(std::fabs(va[i] - vb[i]) <= atol + rtol * std::fabs(vb[i]))) return false;
  }
  return true;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  if (a.numel() == 0) return true;  // nothing to compare (and empty storage has no data pointer)
  const size_t nbytes = size_t(a.numel()) * dtype_size(a.dtype());
  std::vector<char> ha(nbytes), hb(nbytes);
  a.dense().copy_to_host(ha.data(), nbytes);
  b.dense().copy_to_host(hb.data(), nbytes);
  return ha == hb;
}

}  // namespace advgrad
