// A flat, 64-byte aligned block of one device's memory shared by a tensor and all its views, with the
// version counter that autograd uses to detect in-place changes of saved tensors (views share it, as they
// share bytes). The block comes from the device's Allocator (core/allocator.h) and goes back to it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "advgrad/core/allocator.h"
#include "advgrad/core/device.h"

namespace advgrad {

// The CPU allocator's blocks (also the cpu backend's scratch buffers) come from a cache of freed blocks of the same size: a training or attack loop allocates the
// same shapes every step, and reusing them avoids fresh pages (page faults cost more than the math on
// small models). The cache holds at most storage_cache_limit() bytes; larger frees go back to the system.
void* storage_allocate(size_t nbytes);
void storage_release(void* data, size_t nbytes);
size_t storage_cache_limit();
void storage_cache_clear();
// Live Storage objects now, and the most alive at once since the last reset (a leak/growth detector for
// tests: an attack of 200 steps must not hold more than one of 2 steps).
struct StorageStats {
  int64_t live, peak;
};
StorageStats storage_stats();
void storage_reset_peak();

class Storage {
 public:
  explicit Storage(size_t nbytes, Device device = Device::CPU);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // The block in the device's memory: host-addressable only on Device::CPU. Tensor::data<T>() and the
  // backends (core/device_memory.h) are the only readers.
  void* block() const { return block_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  Allocator& allocator() const { return *allocator_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  size_t nbytes_;
  Device device_;
  Allocator* allocator_;
  void* block_;
  uint64_t version_ = 0;
};

}  // namespace advgrad
