// Parameter initialisation, driven by a seeded Generator. The distributions are PyTorch's defaults
// (torch.nn.init), so a model initialised here is statistically like one initialised there.
#pragma once
#include "advgrad/core/tensor.h"

namespace advgrad::init {

// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (receptive field = product of
// dims after the first two), as torch.nn.init._calculate_fan_in_and_fan_out. Needs rank >= 2.
int64_t fan_in(const Tensor& t);
int64_t fan_out(const Tensor& t);

// In-place fills (under NoGradGuard internally); return t.
Tensor& uniform_(Tensor& t, double lo, double hi, Generator& gen);
Tensor& normal_(Tensor& t, double mean, double std, Generator& gen);
Tensor& constant_(Tensor& t, double value);
// Kaiming/He: gain = sqrt(2 / (1 + a^2)) (leaky ReLU slope a), std = gain / sqrt(fan_in).
// uniform bound = sqrt(3) * std. PyTorch's Linear/Conv default is kaiming_uniform_ with a = sqrt(5),
// which gives bound = 1 / sqrt(fan_in).
Tensor& kaiming_uniform_(Tensor& t, double a, Generator& gen);
Tensor& kaiming_normal_(Tensor& t, double a, Generator& gen);
// Xavier/Glorot: std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);
Tensor& xavier_normal_(Tensor& t, Generator& gen, double gain = 1.0);

}  // namespace advgrad::init
