// Saving images: a batch as one PNG grid (for looking at samples and adversarial examples).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/core/tensor.h"

namespace advgrad {

struct GridOptions {
  int64_t cols = 0;                // images per row; 0: ceil(sqrt(N)), rows follow
  int64_t separator = 2;           // pixels between neighbouring images (0..16), none around the border
  int64_t scale = 1;               // integer nearest-neighbour upscaling of each image (1..64)
  uint8_t separator_value = 255;   // gray level of separators and of unused cells
};

// The grid as interleaved 8-bit pixels (HWC), ready for a PNG.
struct GridImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// images: [N, C, H, W] (or one [C, H, W]) floating tensor with C = 1 (gray) or 3 (RGB), any device or
// strides; values are clamped to [0,1] (NaN -> 0) and rounded to 0..255. ShapeError/TypeError/ValueError
// for a bad tensor or options, including a grid above 2^28 bytes.
GridImage make_grid(const Tensor& images, const GridOptions& options = {});

// make_grid, then an atomic PNG write (temporary file + rename, see write_file_atomic). IOError naming
// `path` when encoding or writing fails.
void write_png_grid(const std::string& path, const Tensor& images, const GridOptions& options = {});

// An already composed image (a grid, possibly labelled) as PNG, written atomically; IOError naming `path`.
void write_png_image(const std::string& path, const GridImage& image);

}  // namespace advgrad
