// InputNormalized: a model that takes [0,1] pixels and normalises them per channel before the model it
// wraps, as a model trained with torchvision's transforms.Normalize(mean, std) expects its input:
//
//     forward(x) = inner((x - mean[c]) / std[c])      c: dim 1 of x (the channel)
//
// Attacks, eps and data then stay in [0,1] pixel space while the wrapped weights are used unchanged.
// Its parameters, buffers and random generators are the inner model's, under the inner model's own names
// (no "inner." prefix) and as the same tensors, so the inner model's state_dict (a PyTorch file's, say)
// loads into the wrapper unchanged and saving the wrapper writes the inner model's file.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "advgrad/nn/layers.h"

namespace advgrad {

class InputNormalized : public Module {
 public:
  // mean and std: one value per channel (std > 0), or a single value for every channel. ValueError for
  // an empty or unequal pair, a std <= 0, or a null inner model.
  InputNormalized(std::shared_ptr<Module> inner, std::vector<double> mean, std::vector<double> std);
  // x [N, C, ...] with C the channel count (any C when one value was given).
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Module& inner() const { return *inner_; }

 private:
  std::shared_ptr<Module> inner_;
  std::vector<double> mean_, std_;
};

}  // namespace advgrad
