#include "advgrad/data/augment.h"

#include "advgrad/core/generator.h"

namespace advgrad {

AugmentParams draw_augment(const AugmentOptions& options, uint64_t seed, int64_t epoch, int64_t index) {
  const auto bits = Generator::philox(seed, 2 * uint64_t(epoch) + 1, uint64_t(index));
  AugmentParams p;
  // Multiply-shift maps 32 random bits onto [0, range) without a modulo.
  const uint64_t range = 2 * uint64_t(options.crop_padding) + 1;
  p.dy = options.crop_padding > 0 ? int64_t((uint64_t(bits[0]) * range) >> 32) : 0;
  p.dx = options.crop_padding > 0 ? int64_t((uint64_t(bits[1]) * range) >> 32) : 0;
  p.flip = options.hflip && (bits[2] & 1u);
  return p;
}

void augment_sample(const uint8_t* src, const Shape& chw, int64_t crop_padding, const AugmentParams& params,
                    float* dst) {
  const int64_t C = chw[0], H = chw[1], W = chw[2];
  const int64_t oy = params.dy - crop_padding, ox = params.dx - crop_padding;  // source = output + offset
  for (int64_t c = 0; c < C; ++c) {
    const uint8_t* plane = src + c * H * W;
    for (int64_t y = 0; y < H; ++y) {
      float* row = dst + (c * H + y) * W;
      const int64_t sy = y + oy;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = (params.flip ? W - 1 - x : x) + ox;
        row[x] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? float(plane[sy * W + sx]) / 255.0f : 0.0f;
      }
    }
  }
}

}  // namespace advgrad
