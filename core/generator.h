// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): a value is a pure function of
// (seed, stream, index). Kernels fill element i from index offset+i, so results never depend on the
// order of calls across threads or on the thread count.
#pragma once
#include <array>
#include <cstdint>

namespace advgrad {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  // Next unused index; reserve(n) hands out [offset, offset+n) and advances.
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }
  uint64_t reserve(uint64_t n) {
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }
  // An independent generator with the same seed on another stream (e.g. one per sample or per epoch).
  Generator fork(uint64_t stream) const { return Generator(seed_, stream); }

  // The raw block: 4 x 32 random bits for (seed, stream, counter).
  static std::array<uint32_t, 4> philox(uint64_t seed, uint64_t stream, uint64_t counter);
  // Uniform in [0,1) with 24 (float) or 53 (double) random bits, from block word 0 (and 1).
  static float uniform_float(uint64_t seed, uint64_t stream, uint64_t index);
  static double uniform_double(uint64_t seed, uint64_t stream, uint64_t index);
  // Standard normal by Box-Muller over the block's words, one value per index.
  static double normal(uint64_t seed, uint64_t stream, uint64_t index);
  // Uniform integer in [0, range), range >= 1.
  static uint64_t below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t range);

 private:
  uint64_t seed_, stream_, offset_ = 0;
};

}  // namespace advgrad
