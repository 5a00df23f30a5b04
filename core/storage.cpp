#include "advgrad/core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <map>
#include <mutex>
#include <new>
#include <vector>
#if defined(__unix__)
#include <sys/mman.h>
#endif

namespace advgrad {

namespace {

// Eigen's GEMM packs its operands into buffers it mallocs and frees on every product. glibc hands blocks
// above 128 KiB back to the OS when they are freed (mmap/munmap, or trimming the heap's top), so each
// product page-faulted its buffers in anew: ~190 faults per small_cnn training step at batch 128, 5% of
// its time and 25% of small_cnn inference (each fault is expensive in a virtual machine). Keeping Eigen's
// blocks (a few MiB at most) in the heap makes a steady loop fault-free. Our own large blocks do not go
// through malloc (see system_allocate), so this cannot pile up tensors' memory. Set once, before the
// first tensor.
void keep_freed_memory_mapped() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

// Blocks of at least this size (256 KiB) are mapped from the OS directly and unmapped when the cache lets them go,
// so what the cache evicts leaves the process (a heap would keep it resident).
constexpr size_t kMappedBlockBytes = size_t(256) << 10;

void* system_allocate(size_t size) {
#if defined(__unix__)
  if (size >= kMappedBlockBytes) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;  // page-aligned, so 64-byte aligned
  }
#endif
  return std::aligned_alloc(64, size);
}

void system_free(void* p, size_t size) {
#if defined(__unix__)
  if (size >= kMappedBlockBytes) {
    munmap(p, size);
    return;
  }
#endif
  std::free(p);
}

// Freed blocks by size class, each class's blocks in a stack (the most recently freed is reused first);
// when the cache is over its limit, the classes freed longest ago are given back first.
struct BlockCache {
  std::mutex mutex;
  struct SizeClass {
    std::vector<void*> blocks;
    uint64_t last_release = 0;  // tick of the latest release into this class
  };
  std::map<size_t, SizeClass> classes;
  uint64_t tick = 0;
  size_t limit = 0;     // set by cache()
  StorageMemory memory;  // the byte counts, cached_bytes included
};

size_t limit_from_environment() {
  size_t limit = kDefaultStorageCacheBytes;
  if (const char* env = std::getenv("ADVGRAD_CACHE_MB")) {
    char* end = nullptr;
    unsigned long long mb = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0' && mb <= (1ull << 20)) limit = size_t(mb) << 20;
    else std::fprintf(stderr, "warning: ADVGRAD_CACHE_MB=%s is not a number of MiB in [0, 1048576]; using %zu\n",
                      env, limit >> 20);
  }
  return limit;
}

BlockCache& cache() {
  // Never destroyed: storages may be freed during static destruction.
  static BlockCache* c = [] {
    keep_freed_memory_mapped();
    auto* made = new BlockCache();
    made->limit = limit_from_environment();
    return made;
  }();
  return *c;
}

// The most bytes the cache lets live + cached reach: the largest live set the process has needed so far
// plus the headroom c.limit. So a steady loop reuses every block (its working set is at most its peak;
// the headroom absorbs the order blocks come back in), and the cache never makes the process bigger than
// the program's own peak plus that headroom.
size_t budget(const BlockCache& c) { return c.memory.peak_live_bytes + c.limit; }

// Gives back the blocks of the classes released longest ago until `bytes` more fit in the budget.
// Called with the mutex held. Linear in the number of classes (tens), only when over the budget.
void evict_for(BlockCache& c, size_t bytes) {
  while (c.memory.cached_bytes > 0 && c.memory.live_bytes + c.memory.cached_bytes + bytes > budget(c)) {
    auto oldest = c.classes.end();
    for (auto it = c.classes.begin(); it != c.classes.end(); ++it)
      if (!it->second.blocks.empty() && (oldest == c.classes.end() || it->second.last_release < oldest->second.last_release))
        oldest = it;
    for (void* p : oldest->second.blocks) system_free(p, oldest->first);
    c.memory.cached_bytes -= oldest->first * oldest->second.blocks.size();
    c.classes.erase(oldest);
  }
}

// A block of `size` bytes goes to a tensor or scratch buffer. Called with the mutex held.
void add_live(BlockCache& c, size_t size) {
  c.memory.live_bytes += size;
  c.memory.peak_live_bytes = std::max(c.memory.peak_live_bytes, c.memory.live_bytes);
}

// Gives every cached block back to the system. Called with the mutex held.
void release_all(BlockCache& c) {
  for (auto& kv : c.classes)
    for (void* p : kv.second.blocks) system_free(p, kv.first);
  c.classes.clear();
  c.memory.cached_bytes = 0;
}

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

size_t storage_size_class(size_t nbytes) {
  size_t n = (nbytes + 63) / 64 * 64;
  if (n <= 4096) return n;
  size_t power = size_t(1) << (63 - __builtin_clzll(uint64_t(n)));  // largest power of two <= n
  size_t step = power / 4;
  return (n + step - 1) / step * step;
}

size_t storage_cache_limit() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.limit;
}

void set_storage_cache_limit(size_t bytes) {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.limit = bytes;
  if (bytes == 0) release_all(c);
}

StorageMemory storage_memory() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.memory;
}

void* storage_allocate(size_t nbytes) {
  size_t size = storage_size_class(nbytes);
  if (size == 0) return nullptr;
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.classes.find(size);
    if (it != c.classes.end() && !it->second.blocks.empty()) {
      void* p = it->second.blocks.back();
      it->second.blocks.pop_back();
      c.memory.cached_bytes -= size;
      add_live(c, size);
      return p;
    }
    evict_for(c, size);  // stale classes make room for live data first
  }
  void* p = system_allocate(size);
  if (!p) {
    storage_cache_clear();  // give cached blocks back and try once more
    p = system_allocate(size);
    if (!p) throw std::bad_alloc();
  }
  std::lock_guard<std::mutex> lock(c.mutex);
  ++c.memory.system_allocations;
  c.memory.system_allocated_bytes += size;
  add_live(c, size);
  return p;
}

void storage_release(void* data, size_t nbytes) {
  if (!data) return;
  size_t size = storage_size_class(nbytes);
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.memory.live_bytes -= size;
  if (c.limit == 0) {  // the cache is off
    system_free(data, size);
    return;
  }
  evict_for(c, size);
  if (c.memory.live_bytes + c.memory.cached_bytes + size > budget(c)) {  // cannot fit even with the cache empty
    system_free(data, size);
    return;
  }
  BlockCache::SizeClass& cls = c.classes[size];
  cls.blocks.push_back(data);
  cls.last_release = ++c.tick;
  c.memory.cached_bytes += size;
  c.memory.peak_cached_bytes = std::max(c.memory.peak_cached_bytes, c.memory.cached_bytes);
}

void storage_cache_clear() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  release_all(c);
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
    size_t size = (nbytes + 63) / 64 * 64;
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
