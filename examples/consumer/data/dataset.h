// This project's own "data/dataset.h" (advgrad has one too): a synthetic two-class data set, so the
// example needs no files. Class 0 images are brighter on the left half, class 1 on the right half, under
// strong noise clipped to [0, 1] (so that attacks meet the box constraint, and eps 0.1 matters).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include <advgrad/core/generator.h>
#include <advgrad/core/tensor.h>

namespace consumer {

struct Batch {
  advgrad::Tensor images;  // [n, 1, 8, 8] in [0, 1]
  advgrad::Tensor labels;  // [n] int64, 0 or 1
};

inline Batch synthetic_batch(int64_t n, uint64_t seed) {
  advgrad::Generator gen(seed);
  const std::vector<float> noise = advgrad::rand({n, 1, 8, 8}, gen).to_vector<float>();
  std::vector<float> pixels(noise.size());
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    for (int64_t p = 0; p < 64; ++p) {
      const bool left = p % 8 < 4;
      const float base = (left == (labels[i] == 0)) ? 0.6f : 0.4f;
      pixels[i * 64 + p] = std::clamp(base + 0.8f * (noise[i * 64 + p] - 0.5f), 0.0f, 1.0f);
    }
  }
  return {advgrad::from_vector(pixels, {n, 1, 8, 8}), advgrad::from_vector(labels, {n})};
}

}  // namespace consumer
