// The threat model shared by every attack: inputs live in [0,1], perturbations in an eps-ball of the
// L-inf or L2 norm. Projection here is exact after float rounding: the returned x_adv satisfies
// |x_adv - x| <= eps (L-inf) or ||x_adv - x||_2 <= eps (L2) as real numbers, and 0 <= x_adv <= 1.
#pragma once
#include <string>

#include "advgrad/core/tensor.h"

namespace advgrad {

enum class Norm { Linf, L2 };
const char* norm_name(Norm n);

// Projects x_adv onto {z : ||z - x|| <= eps, 0 <= z <= 1} (per sample along the first axis for L2).
// x and x_adv: same shape, float32 or float64, one device (a backend kernel: Backend::project_linf / _l2).
Tensor project(const Tensor& x_adv, const Tensor& x, double eps, Norm norm);

// A uniformly random point of the L-inf ball, or for L2 a random direction with radius eps * u,
// u ~ U(0,1), then projected. Drawn from gen (counter-based: same seed, same start).
Tensor random_start(const Tensor& x, double eps, Norm norm, Generator& gen);

// The largest |x_adv - x| (L-inf) or per-sample L2 norm, computed exactly in double: for tests and
// for the result summary.
double max_perturbation(const Tensor& x_adv, const Tensor& x, Norm norm);

// ValueError naming `who` unless x is a float tensor [N, ...] with values in [0,1], labels int64 [N]
// with values in [0, num_classes) (num_classes <= 0 skips the range check), eps >= 0 and finite.
void check_attack_inputs(const Tensor& x, const Tensor& labels, double eps, int64_t num_classes, const std::string& who);

}  // namespace advgrad
