// Training-time augmentation: random crop with zero padding and horizontal flip. The random choices of a
// sample are a pure function of (seed, epoch, sample index), drawn from one Philox block, so a batch is
// the same whichever thread builds it, in whatever order, and resuming mid-epoch replays it exactly.
#pragma once
#include <cstdint>

#include "advgrad/core/shape.h"

namespace advgrad {

struct AugmentOptions {
  int64_t crop_padding = 0;  // pad each side with p zeros, then crop back to HxW at a random offset
  bool hflip = false;        // mirror left-right with probability 1/2
  bool enabled() const { return crop_padding > 0 || hflip; }
};

struct AugmentParams {
  int64_t dy = 0, dx = 0;  // crop offset into the padded image, in [0, 2p]; p, p means no shift
  bool flip = false;
};

// The choices for dataset sample `index` in `epoch` (Philox stream 2*epoch+1, counter `index`; the shuffle
// uses the even streams, so the two never share random numbers).
AugmentParams draw_augment(const AugmentOptions& options, uint64_t seed, int64_t epoch, int64_t index);

// Writes the augmented sample as float32 in [0,1]: out(c,y,x) = in(c, y+dy-p, x'+dx-p) with
// x' = W-1-x when flipping, and 0 where that falls outside the image. src and dst are CHW of `chw`.
void augment_sample(const uint8_t* src, const Shape& chw, int64_t crop_padding, const AugmentParams& params,
                    float* dst);

}  // namespace advgrad
