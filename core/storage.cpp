#include "advgrad/core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace advgrad {

namespace {

struct BlockCache {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> free_blocks;  // by rounded size
  size_t cached_bytes = 0;
};

// Eigen's GEMM packs its operands into buffers it mallocs and frees on every product. glibc hands blocks
// above 128 KiB back to the OS when they are freed (mmap/munmap, or trimming the heap's top), so each
// product page-faulted its buffers in anew: ~190 faults per small_cnn training step at batch 128, 5% of
// its time and 25% of small_cnn inference (each fault is expensive in a virtual machine). Keeping blocks up
// to 32 MiB in the heap and never trimming below 1 GiB makes a steady loop fault-free; like the block cache
// below, it trades memory that stays mapped after a peak for speed. Set once, before the first tensor.
void keep_freed_memory_mapped() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

BlockCache& cache() {
  // Never destroyed: storages may be freed during static destruction.
  static BlockCache* c = (keep_freed_memory_mapped(), new BlockCache());
  return *c;
}

size_t rounded(size_t nbytes) { return (nbytes + 63) / 64 * 64; }

}  // namespace

static std::atomic<int64_t> live_storages{0}, peak_storages{0};  // counts for storage_stats()

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(&allocator_for(device)), block_(allocator_->allocate(nbytes)) {
  int64_t now = ++live_storages, peak = peak_storages.load();
  while (now > peak && !peak_storages.compare_exchange_weak(peak, now)) {
  }
}

Storage::~Storage() {
  allocator_->free(block_, nbytes_);
  --live_storages;
}

StorageStats storage_stats() { return {live_storages.load(), peak_storages.load()}; }
void storage_reset_peak() { peak_storages = live_storages.load(); }

size_t storage_cache_limit() { return size_t(1) << 30; }

void* storage_allocate(size_t nbytes) {
  size_t size = rounded(nbytes);
  if (size == 0) return nullptr;
  {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached_bytes -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (!p) {
    storage_cache_clear();  // give cached blocks back and try once more
    p = std::aligned_alloc(64, size);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

void storage_release(void* data, size_t nbytes) {
  if (!data) return;
  size_t size = rounded(nbytes);
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cached_bytes + size <= storage_cache_limit()) {
      c.free_blocks[size].push_back(data);
      c.cached_bytes += size;
      return;
    }
  }
  std::free(data);
}

void storage_cache_clear() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& kv : c.free_blocks)
    for (void* p : kv.second) std::free(p);
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

// ---- allocators ----
namespace {

// Blocks that are plain host memory, moved with memcpy (empty copies skip it: a 0-byte block is null).
class HostMemoryAllocator : public Allocator {
 public:
  void copy_in(void* block, size_t offset, const void* host, size_t nbytes) override {
    if (nbytes) std::memcpy(static_cast<char*>(block) + offset, host, nbytes);
  }
  void copy_out(const void* block, size_t offset, void* host, size_t nbytes) override {
    if (nbytes) std::memcpy(host, static_cast<const char*>(block) + offset, nbytes);
  }
  void copy(const void* src, size_t src_offset, void* dst, size_t dst_offset, size_t nbytes) override {
    if (nbytes) std::memcpy(static_cast<char*>(dst) + dst_offset, static_cast<const char*>(src) + src_offset, nbytes);
  }
};

// Device::CPU: the block cache above.
class CpuAllocator final : public HostMemoryAllocator {
 public:
  const char* name() const override { return "cpu"; }
  void* allocate(size_t nbytes) override { return storage_allocate(nbytes); }
  void free(void* block, size_t nbytes) override { storage_release(block, nbytes); }
};

// Device::Reference: host memory underneath, but a device of its own to everything above core/ (raw host
// access refuses it), so the whole framework is exercised against a device that is not the host. No cache:
// the reference backend is the specification, not fast.
class ReferenceAllocator final : public HostMemoryAllocator {
 public:
  const char* name() const override { return "reference"; }
  void* allocate(size_t nbytes) override {
    size_t size = rounded(nbytes);
    if (size == 0) return nullptr;
    void* p = std::aligned_alloc(64, size);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void free(void* block, size_t) override { std::free(block); }
};

}  // namespace

Allocator& allocator_for(Device device) {
  // Never destroyed: storages may be freed during static destruction.
  static CpuAllocator* cpu = new CpuAllocator();
  static ReferenceAllocator* reference = new ReferenceAllocator();
  if (device == Device::CPU) return *cpu;
  return *reference;
}

}  // namespace advgrad
