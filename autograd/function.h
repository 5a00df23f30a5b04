// Defining a differentiable op: compute the output with any tensor code, then record() it with a backward
// function. This is how every built-in op is written, and the public way for users to add their own
// (see examples/custom_op.cpp).
//
//   Tensor cube(const Tensor& x) {
//     Tensor y = /* forward, e.g. */ mul(mul(x, x), x);   // (any ops; graph-free inside record's caller is fine)
//     if (!should_record({x})) return y;
//     SavedTensor sx(x, "cube");
//     return record("cube", {x}, y, [sx](const Tensor& g, const std::vector<bool>&) {
//       Tensor xv = sx.unpack();
//       return std::vector<Tensor>{mul(g, mul(mul(xv, xv), 3.0))};
//     });
//   }
//
// Rules: the backward returns one gradient per input, with that input's shape and dtype (or undefined
// when needed[i] is false or the gradient is zero); it runs with grad mode off; tensors it needs must be
// captured as SavedTensor (never as Tensor: that would keep the graph alive and miss in-place changes).
#pragma once
#include <functional>
#include <vector>

#include "advgrad/autograd/node.h"
#include "advgrad/core/grad_mode.h"

namespace advgrad {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<bool>& needed)>;

// True when grad mode is on and some input requires grad: only then is a graph node worth building.
bool should_record(const std::vector<Tensor>& inputs);

// Makes `output` the result of op `name` applied to `inputs`: returns a new handle to the same data whose
// grad_fn is a node calling `backward`. When should_record(inputs) is false, returns output unchanged.
// Forward code must run before record() so that it does not itself leave a graph (call it under
// NoGradGuard, or use graph-free kernels, as the built-in ops do).
Tensor record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output, BackwardFn backward);

}  // namespace advgrad
