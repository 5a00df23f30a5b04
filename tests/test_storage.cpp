// The CPU block cache (core/storage.h): size classes, reuse, the live + cached budget, eviction of the
// classes released longest ago, and the switch-off. A test binary of its own: the cache is process-wide.
#include <doctest/doctest.h>

#include <vector>

#include "advgrad/core/storage.h"

using namespace advgrad;

namespace {
// live + cached never exceeds the largest live set so far plus the headroom.
void check_budget() {
  StorageMemory m = storage_memory();
  CHECK(m.live_bytes + m.cached_bytes <= m.peak_live_bytes + storage_cache_limit());
}
}  // namespace

TEST_CASE("size classes: 64-byte steps to 4 KiB, then four per power of two") {
  CHECK(storage_size_class(0) == 0);
  CHECK(storage_size_class(1) == 64);
  CHECK(storage_size_class(64) == 64);
  CHECK(storage_size_class(65) == 128);
  CHECK(storage_size_class(4096) == 4096);
  CHECK(storage_size_class(4097) == 5120);      // 4096 + 1024
  CHECK(storage_size_class(6000) == 6144);      // 1.5 x 4096
  CHECK(storage_size_class(8192) == 8192);
  CHECK(storage_size_class(8193) == 10240);
  CHECK(storage_size_class(100000) == 114688);  // 1.75 x 65536
  CHECK(storage_size_class((1u << 20) + 1) == (1u << 20) + (1u << 18));
  for (size_t n = 1; n < (size_t(1) << 22); n = n * 3 / 2 + 7) {
    size_t c = storage_size_class(n);
    CHECK(c >= n);
    CHECK(c % 64 == 0);
    CHECK(c <= n + n / 4 + 64);
  }
}

TEST_CASE("a freed block is reused for any request of its class, without asking the system") {
  set_storage_cache_limit(size_t(64) << 20);
  void* a = storage_allocate(100000);
  storage_release(a, 100000);
  uint64_t before = storage_memory().system_allocations;
  void* b = storage_allocate(110000);  // same class (114688 bytes)
  CHECK(b == a);
  CHECK(storage_memory().system_allocations == before);
  storage_release(b, 110000);
  check_budget();
}

TEST_CASE("a steady loop stops asking the system for memory") {
  set_storage_cache_limit(size_t(64) << 20);
  const std::vector<size_t> step = {3000, 70000, 500000, 70000, 1 << 21, 9000, 500000};
  uint64_t after_first = 0;
  for (int iter = 0; iter < 6; ++iter) {
    std::vector<void*> blocks;
    for (size_t n : step) blocks.push_back(storage_allocate(n));
    check_budget();
    for (size_t i = 0; i < step.size(); ++i) storage_release(blocks[i], step[i]);
    check_budget();
    if (iter == 0) after_first = storage_memory().system_allocations;
  }
  CHECK(storage_memory().system_allocations == after_first);
}

TEST_CASE("the budget holds and the classes released longest ago are evicted first") {
  storage_cache_clear();
  const size_t mib = size_t(1) << 20;
  set_storage_cache_limit(4 * mib);
  // 40 blocks of distinct classes (1 to 10.75 MiB, 235 MiB in all), each live alone: the live peak stays
  // near the largest one, so the cache must let the older ones go instead of keeping all 235 MiB.
  std::vector<size_t> sizes;
  for (int i = 0; i < 40; ++i) sizes.push_back(mib + size_t(i) * (mib / 4));
  std::vector<void*> blocks;
  for (size_t n : sizes) {
    blocks.push_back(storage_allocate(n));
    storage_release(blocks.back(), n);
    check_budget();
  }
  StorageMemory m = storage_memory();
  CHECK(m.peak_live_bytes < 64 * mib);  // the earlier cases' blocks and one of these at a time
  CHECK(m.cached_bytes <= m.peak_live_bytes + 4 * mib);
  // The last class released is still cached (reused without the system); the first one was given back.
  uint64_t before = storage_memory().system_allocations;
  void* last = storage_allocate(sizes.back());
  CHECK(last == blocks.back());
  CHECK(storage_memory().system_allocations == before);
  storage_release(last, sizes.back());
  void* first = storage_allocate(sizes.front());
  CHECK(storage_memory().system_allocations == before + 1);
  storage_release(first, sizes.front());
  check_budget();
}

TEST_CASE("limit 0 turns the cache off: every block goes back, every request asks the system") {
  set_storage_cache_limit(0);
  CHECK(storage_memory().cached_bytes == 0);
  uint64_t before = storage_memory().system_allocations;
  for (int i = 0; i < 3; ++i) {
    void* p = storage_allocate(300000);
    storage_release(p, 300000);
    CHECK(storage_memory().cached_bytes == 0);
  }
  CHECK(storage_memory().system_allocations == before + 3);
  set_storage_cache_limit(kDefaultStorageCacheBytes);
}
