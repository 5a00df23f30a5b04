// For backends only: a tensor's element 0 in its own device's memory. Tensor::data<T>() is the public,
// host-only form and refuses tensors that are not on Device::CPU; a backend reaches the memory of the
// device it runs (and only that one) through these. Nothing outside core/ includes this header.
#pragma once
#include "advgrad/core/tensor.h"

namespace advgrad {

// Pointer to element 0 (after the offset) in the memory of t.device(). TypeError if T is not t.dtype().
template <class T> T* device_data(const Tensor& t);
void* device_raw_data(const Tensor& t);

}  // namespace advgrad
