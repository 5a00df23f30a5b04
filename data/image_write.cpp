#include "advgrad/data/image_write.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "advgrad/core/error.h"
#include "advgrad/data/file_io.h"

namespace advgrad {
namespace {

uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= 1.0f) return 255;
  return uint8_t(std::lround(v * 255.0f));
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

}  // namespace

GridImage make_grid(const Tensor& images, const GridOptions& options) {
  if (!images.defined()) throw ValueError("make_grid: undefined tensor");
  if (!is_floating(images.dtype())) throw TypeError("make_grid: expected a floating tensor, got " + images.describe());
  if (images.dim() != 4 && images.dim() != 3)
    throw ShapeError("make_grid: expected [N,C,H,W] or [C,H,W], got " + shape_str(images.shape()));
  Tensor x = images.to(DType::F32);
  // Row-major, so one [C,H,W] image is laid out as a batch of one.
  const int64_t N = x.dim() == 4 ? x.size(0) : 1, C = x.size(-3), H = x.size(-2), W = x.size(-1);
  if (C != 1 && C != 3) throw ShapeError("make_grid: expected 1 or 3 channels, got " + shape_str(images.shape()));
  if (N == 0 || H == 0 || W == 0) throw ShapeError("make_grid: no pixels in " + shape_str(images.shape()));
  if (options.cols < 0) throw ValueError("make_grid: cols must be >= 0, got " + std::to_string(options.cols));
  if (options.separator < 0 || options.separator > 16)
    throw ValueError("make_grid: separator must be in 0..16, got " + std::to_string(options.separator));
  if (options.scale < 1 || options.scale > 64)
    throw ValueError("make_grid: scale must be in 1..64, got " + std::to_string(options.scale));

  int64_t cols = options.cols;
  if (cols == 0) cols = int64_t(std::ceil(std::sqrt(double(N))));
  cols = std::min(cols, N);
  const int64_t rows = (N + cols - 1) / cols;
  const int64_t s = options.scale, sep = options.separator;
  const int64_t cell_h = H * s, cell_w = W * s;
  // Checked in doubles first so that the int64 products below cannot overflow.
  const double bytes =
      (double(rows) * cell_h + double(rows - 1) * sep) * (double(cols) * cell_w + double(cols - 1) * sep) * double(C);
  if (bytes > double(int64_t(1) << 28))
    throw ValueError("make_grid: a " + std::to_string(rows) + "x" + std::to_string(cols) + " grid of " +
                     shape_str({C, H, W}) + " images at scale " + std::to_string(s) + " exceeds 2^28 bytes");

  GridImage g;
  g.channels = C;
  g.height = rows * cell_h + (rows - 1) * sep;
  g.width = cols * cell_w + (cols - 1) * sep;
  g.pixels.assign(size_t(g.height * g.width * C), options.separator_value);
  const std::vector<float> src = x.to_vector<float>();  // row-major pixels, copied out of any device
  for (int64_t n = 0; n < N; ++n) {
    const int64_t top = (n / cols) * (cell_h + sep), left = (n % cols) * (cell_w + sep);
    for (int64_t y = 0; y < cell_h; ++y)
      for (int64_t xx = 0; xx < cell_w; ++xx)
        for (int64_t c = 0; c < C; ++c) {
          const float v = src[((n * C + c) * H + y / s) * W + xx / s];
          g.pixels[size_t(((top + y) * g.width + left + xx) * C + c)] = to_byte(v);
        }
  }
  return g;
}

void write_png_image(const std::string& path, const GridImage& g) {
  std::vector<uint8_t> png;
  if (!stbi_write_png_to_func(append_bytes, &png, int(g.width), int(g.height), int(g.channels), g.pixels.data(),
                              int(g.width * g.channels)))
    throw IOError(path + ": cannot encode PNG");
  write_file_atomic(path, png.data(), png.size());
}

void write_png_grid(const std::string& path, const Tensor& images, const GridOptions& options) {
  write_png_image(path, make_grid(images, options));
}

}  // namespace advgrad
