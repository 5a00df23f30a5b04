// A flat, 64-byte aligned block of one device's memory shared by a tensor and all its views, with the
// version counter that autograd uses to detect in-place changes of saved tensors (views share it, as they
// share bytes). The block comes from the device's Allocator (core/allocator.h) and goes back to it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "advgrad/core/allocator.h"
#include "advgrad/core/device.h"

namespace advgrad {

// The CPU allocator's blocks (also the cpu backend's scratch buffers) come from a cache of freed blocks:
// a training or attack loop allocates the same shapes every step, and reusing them avoids fresh pages
// (page faults cost more than the math on small models). Requests are rounded up to a size class (64-byte
// steps up to 4 KiB, then four classes per power of two: at most 25% more than asked), so batches of
// slightly different sizes share blocks. The cache keeps live + cached bytes within a budget: the largest
// live set so far plus a headroom, storage_cache_limit() (default kDefaultStorageCacheBytes, or
// ADVGRAD_CACHE_MB from the environment; 0 turns the cache off). A steady loop then reuses its blocks,
// and the cache never grows the process beyond the program's own peak plus the headroom: when live data
// needs room, or a release would go over, the size classes released longest ago go back to the system
// first. Blocks of 256 KiB and more are mapped from the OS and unmapped when evicted, so the resident
// memory follows.
constexpr size_t kDefaultStorageCacheBytes = size_t(64) << 20;
void* storage_allocate(size_t nbytes);
void storage_release(void* data, size_t nbytes);
size_t storage_size_class(size_t nbytes);  // the bytes a request of nbytes really takes
size_t storage_cache_limit();
void set_storage_cache_limit(size_t bytes);  // the headroom above; 0 empties and disables the cache
void storage_cache_clear();
// Bytes of the CPU allocator (size classes, not requests): in tensors and scratch now (live), the most at
// once (peak_live), held by the cache now and at most; and how many blocks (and bytes) came from the
// system (a steady loop stops adding to them).
struct StorageMemory {
  size_t live_bytes = 0, peak_live_bytes = 0, cached_bytes = 0, peak_cached_bytes = 0;
  uint64_t system_allocations = 0, system_allocated_bytes = 0;
};
StorageMemory storage_memory();
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
