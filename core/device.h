// Where a tensor's bytes live and which Backend runs its kernels.
#pragma once

namespace advgrad {

// CPU: the fast backend (Eigen + OpenMP). Reference: plain loops, one thread, the executable specification.
// Each device has its own Allocator (core/allocator.h) and Backend (core/backend.h). Only CPU memory is host
// memory to the rest of the program: Reference keeps its bytes in host memory too, but outside the
// backends they cross only through copy_in/copy_out, as a GPU's would. A new device adds an entry here,
// an Allocator and a Backend.
enum class Device { CPU, Reference };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "reference"; }

}  // namespace advgrad
