#include "core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
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

Storage::Storage(size_t nbytes) : nbytes_(nbytes), data_(storage_allocate(nbytes)) {
  int64_t now = ++live_storages, peak = peak_storages.load();
  while (now > peak && !peak_storages.compare_exchange_weak(peak, now)) {
  }
}

Storage::~Storage() {
  storage_release(data_, nbytes_);
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

}  // namespace advgrad
