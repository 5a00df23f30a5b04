#include "advgrad/data/dataset.h"

#include <algorithm>

#include "advgrad/core/error.h"
#include "advgrad/core/parallel.h"

namespace advgrad {

int64_t Dataset::sample_numel() const { return sample_shape.size() == 3 ? shape_numel(sample_shape) : 0; }

void bytes_to_unit_float(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]) / 255.0f;
}

int64_t samples_per_chunk(int64_t sample_numel) {
  // About 64k pixels per chunk: enough work to amortise a thread hand-off, small enough to spread a batch.
  return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, sample_numel));
}

namespace {
void check_indices(const Dataset& d, const std::vector<int64_t>& indices, const char* op) {
  for (int64_t i : indices)
    if (i < 0 || i >= d.size())
      throw ValueError(std::string("Dataset::") + op + ": index " + std::to_string(i) + " outside [0, " +
                       std::to_string(d.size()) + ") of " + d.source);
}
}  // namespace

Tensor Dataset::images_float(const std::vector<int64_t>& indices) const {
  check_indices(*this, indices, "images_float");
  const int64_t n = int64_t(indices.size()), numel = sample_numel();
  Shape shape{n};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  // Decoded into host memory, then copied into the tensor (which could live on any device).
  std::vector<float> host(size_t(n * numel));
  float* dst = host.data();
  parallel_for(n, samples_per_chunk(numel), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) bytes_to_unit_float(image(indices[size_t(b)]), numel, dst + b * numel);
  });
  return from_blob(host.data(), shape, DType::F32);
}

Tensor Dataset::labels_tensor(const std::vector<int64_t>& indices) const {
  check_indices(*this, indices, "labels_tensor");
  std::vector<int64_t> y(indices.size());
  for (size_t b = 0; b < indices.size(); ++b) y[b] = labels[size_t(indices[b])];
  return from_vector(y, {int64_t(y.size())});
}

void Dataset::check() const {
  auto fail = [&](const std::string& what) { throw ValueError("dataset " + source + ": " + what); };
  if (sample_shape.size() != 3) fail("sample shape " + shape_str(sample_shape) + " is not [C,H,W]");
  for (int64_t d : sample_shape)
    if (d <= 0) fail("sample shape " + shape_str(sample_shape) + " has a non-positive dim");
  const int64_t numel = shape_numel(sample_shape);
  if (int64_t(images.size()) / numel != size() || int64_t(images.size()) % numel != 0)
    fail(std::to_string(images.size()) + " image bytes do not hold " + std::to_string(size()) + " samples of " +
         shape_str(sample_shape));
  if (num_classes <= 0) fail("num_classes is " + std::to_string(num_classes));
  if (int64_t(class_names.size()) != num_classes)
    fail(std::to_string(class_names.size()) + " class names for " + std::to_string(num_classes) + " classes");
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      fail("label " + std::to_string(labels[i]) + " at index " + std::to_string(i) + " outside [0, " +
           std::to_string(num_classes) + ")");
}

}  // namespace advgrad
