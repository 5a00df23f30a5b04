#include "core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
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

BlockCache& cache() {
  static BlockCache* c = new BlockCache();  // never destroyed: storages may be freed during static destruction
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
