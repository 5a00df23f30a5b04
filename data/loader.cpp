#include "advgrad/data/loader.h"

#include <algorithm>
#include <mutex>
#include <numeric>

#include "advgrad/core/error.h"
#include "advgrad/core/generator.h"
#include "advgrad/core/parallel.h"

namespace advgrad {

namespace {
// Epochs pick Philox streams 2 * epoch and 2 * epoch + 1: beyond 2^62 they would wrap onto earlier epochs.
constexpr int64_t kMaxEpoch = int64_t(1) << 62;
void check_epoch(int64_t epoch) {
  if (epoch < 0 || epoch > kMaxEpoch)
    throw ValueError("DataLoader: epoch must be in [0, 2^62], got " + std::to_string(epoch));
}
}  // namespace

struct DataLoader::OrderCache {
  std::mutex mutex;
  int64_t epoch = -1;
  std::shared_ptr<const std::vector<int64_t>> order;
};

DataLoader::DataLoader(const Dataset& data, LoaderOptions options)
    : data_(&data), options_(std::move(options)), cache_(std::make_shared<OrderCache>()) {
  auto fail = [](const std::string& what) { throw ValueError("DataLoader: " + what); };
  data_->check();  // a hand-built Dataset with inconsistent sizes would otherwise be read out of bounds
  if (options_.batch_size < 1) fail("batch_size must be >= 1, got " + std::to_string(options_.batch_size));
  if (options_.limit < 0) fail("limit must be >= 0 (0: no limit), got " + std::to_string(options_.limit));
  const int64_t p = options_.augment.crop_padding;
  if (p < 0) fail("crop_padding must be >= 0, got " + std::to_string(p));
  if (p > 0 && data_->sample_shape.size() == 3 && (p > data_->sample_shape[1] || p > data_->sample_shape[2]))
    fail("crop_padding " + std::to_string(p) + " is larger than the " + shape_str(data_->sample_shape) + " images");

  if (options_.subset.empty()) {
    pool_.resize(size_t(data_->size()));
    std::iota(pool_.begin(), pool_.end(), int64_t(0));
  } else {
    for (int64_t i : options_.subset)
      if (i < 0 || i >= data_->size())
        fail("subset index " + std::to_string(i) + " outside [0, " + std::to_string(data_->size()) + ")");
    pool_ = options_.subset;
  }
  if (options_.limit > 0 && options_.limit < size()) pool_.resize(size_t(options_.limit));
}

int64_t DataLoader::num_batches() const {
  // No n + b - 1: it overflows for a batch size near INT64_MAX (and gave 0 batches).
  const int64_t n = size(), b = options_.batch_size;
  return n / b + (!options_.drop_last && n % b != 0 ? 1 : 0);
}

std::shared_ptr<const std::vector<int64_t>> DataLoader::order(int64_t epoch) const {
  check_epoch(epoch);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->order && cache_->epoch == epoch) return cache_->order;
  auto out = std::make_shared<std::vector<int64_t>>(pool_);
  if (options_.shuffle) {
    // Fisher-Yates whose i-th swap partner is Philox(seed, stream 2*epoch, counter i): the permutation
    // depends on nothing but the seed and the epoch.
    auto& v = *out;
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = size_t(Generator::below(options_.seed, 2 * uint64_t(epoch), uint64_t(i - 1), uint64_t(i)));
      std::swap(v[i - 1], v[j]);
    }
  }
  cache_->epoch = epoch;
  cache_->order = out;
  return out;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const { return *order(epoch); }

Batch DataLoader::batch(int64_t epoch, int64_t index) const {
  check_epoch(epoch);
  if (index < 0 || index >= num_batches())
    throw ValueError("DataLoader: batch index " + std::to_string(index) + " outside [0, " +
                     std::to_string(num_batches()) + ")");
  std::shared_ptr<const std::vector<int64_t>> ord = order(epoch);
  const int64_t begin = index * options_.batch_size;
  const int64_t end = std::min(size(), begin + options_.batch_size);

  Batch b;
  b.indices.assign(ord->begin() + begin, ord->begin() + end);
  if (!options_.augment.enabled()) {
    b.x = data_->images_float(b.indices);
  } else {
    const int64_t n = end - begin, numel = data_->sample_numel();
    Shape shape{n};
    shape.insert(shape.end(), data_->sample_shape.begin(), data_->sample_shape.end());
    std::vector<float> host(size_t(n * numel));  // augmented on the host, then copied into the batch tensor
    float* dst = host.data();
    // Each sample's choices come from its own Philox counter, so chunks are independent.
    parallel_for(n, samples_per_chunk(numel), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t idx = b.indices[size_t(r)];
        AugmentParams params = draw_augment(options_.augment, options_.seed, epoch, idx);
        augment_sample(data_->image(idx), data_->sample_shape, options_.augment.crop_padding, params, dst + r * numel);
      }
    });
    b.x = from_blob(host.data(), shape, DType::F32);
  }
  b.y = data_->labels_tensor(b.indices);
  return b;
}

}  // namespace advgrad
