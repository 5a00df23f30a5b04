// DataLoader: batches of a Dataset with random access. batch(epoch, i) is a pure function of the options,
// the epoch and i (shuffle and augmentation come from counter-based Philox numbers, never from a sequential
// RNG), so training can resume mid-epoch by asking for the next index, and batches are bit-identical at
// any thread count.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "advgrad/core/tensor.h"
#include "advgrad/data/augment.h"
#include "advgrad/data/dataset.h"

namespace advgrad {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = false;    // a new permutation each epoch, depending only on (seed, epoch)
  uint64_t seed = 0;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  int64_t limit = 0;       // > 0: keep only the first `limit` samples (of `subset` when given)
  AugmentOptions augment;  // off by default (evaluation); crop_padding <= min(H, W)
  std::vector<int64_t> subset;  // non-empty: the dataset indices to use, in this order (before limit)
};

struct Batch {
  Tensor x;                      // float32 [B, C, H, W] in [0, 1]
  Tensor y;                      // int64 [B]
  std::vector<int64_t> indices;  // the dataset index of each row
};

class DataLoader {
 public:
  // The loader keeps a reference: `data` must outlive it (a temporary Dataset is refused at compile time).
  // ValueError for an inconsistent dataset (Dataset::check), batch_size < 1, negative limit or padding, padding larger than the image, or a subset
  // index outside the dataset.
  DataLoader(const Dataset& data, LoaderOptions options);
  DataLoader(Dataset&&, LoaderOptions) = delete;

  int64_t size() const { return int64_t(pool_.size()); }  // samples per epoch (before drop_last)
  int64_t num_batches() const;
  // Dataset indices of epoch `epoch` in visiting order (the pool itself when not shuffling).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Exact for any positive batch size (ceil(size / batch_size), or floor with drop_last).
  // Batch `index` of `epoch`; ValueError for an epoch outside [0, 2^62] or index outside [0, num_batches()).
  Batch batch(int64_t epoch, int64_t index) const;

  const Dataset& dataset() const { return *data_; }
  const LoaderOptions& options() const { return options_; }

 private:
  const Dataset* data_;  // a pointer, not a reference, so loaders can be assigned
  LoaderOptions options_;
  std::vector<int64_t> pool_;  // dataset indices after subset and limit
  // The last epoch's shuffled order: batch() is called once per batch, and the permutation costs O(n).
  struct OrderCache;
  std::shared_ptr<OrderCache> cache_;
  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) const;
};

}  // namespace advgrad
