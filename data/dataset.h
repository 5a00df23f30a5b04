// Dataset: a labelled set of images held as uint8 CHW (a quarter of the memory of float32), converted to
// float32 in [0,1] only for the samples a batch asks for.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/core/shape.h"
#include "advgrad/core/tensor.h"

namespace advgrad {

struct Dataset {
  std::string kind;                      // "mnist", "fashion-mnist", "cifar10", "cifar100" or "image-folder"
  std::string source;                    // the directory it was loaded from (for messages)
  Shape sample_shape;                    // [C, H, W]
  std::vector<uint8_t> images;           // size() samples of C*H*W bytes, each channel-major (CHW)
  std::vector<int64_t> labels;           // size() labels in [0, num_classes)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes names, label order

  int64_t size() const { return int64_t(labels.size()); }
  int64_t sample_numel() const;  // C*H*W
  const uint8_t* image(int64_t i) const { return images.data() + i * sample_numel(); }

  // float32 [N, C, H, W] with values pixel/255 for the given sample indices, in that order. ValueError for
  // an index outside [0, size()).
  Tensor images_float(const std::vector<int64_t>& indices) const;
  // int64 [N] labels for the given indices.
  Tensor labels_tensor(const std::vector<int64_t>& indices) const;

  // Checks the invariants above (sizes agree, labels in range, one name per class); ValueError naming
  // `source` otherwise. Every loader calls it before returning; call it after building a Dataset by hand.
  void check() const;
};

// Converts one uint8 CHW sample to float32 in [0,1]; shared by Dataset and DataLoader.
void bytes_to_unit_float(const uint8_t* src, int64_t n, float* dst);
// Batches are filled with parallel_for in chunks of this many samples (problem shape only, see parallel.h).
int64_t samples_per_chunk(int64_t sample_numel);

}  // namespace advgrad
