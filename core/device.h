// Where a tensor's bytes live and which Backend runs its kernels.
#pragma once

namespace advgrad {

// CPU: the fast backend (Eigen + OpenMP). Reference: plain loops, one thread, the executable specification.
// Both keep data in host memory; a future GPU device would add an entry here and a backend.
enum class Device { CPU, Reference };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "reference"; }

}  // namespace advgrad
