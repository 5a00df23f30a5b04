#include "advgrad/train/ema.h"

namespace advgrad {

WeightAverage::WeightAverage(const Module& model, double decay) : decay_(decay) {
  if (!(decay > 0 && decay < 1)) throw ValueError("WeightAverage: decay must be in (0, 1), got " + std::to_string(decay));
  for (const auto& [k, t] : model.state_dict()) weights_[k] = t.clone();
  for (const auto& [k, p] : model.named_parameters()) parameter_keys_.insert(k);
}

void WeightAverage::update(const Module& model) {
  NoGradGuard no_grad;
  const StateDict now = model.state_dict();
  for (auto& [k, average] : weights_) {
    const Tensor& w = now.at(k);
    if (parameter_keys_.count(k)) average.copy_(average * decay_ + w * (1 - decay_));
    else average.copy_(w);  // buffers: the latest statistics
  }
}

void WeightAverage::load(const StateDict& weights) {
  for (auto& [k, mine] : weights_) {
    auto it = weights.find(k);
    if (it == weights.end()) throw ValueError("WeightAverage::load: missing key '" + k + "'");
    if (it->second.shape() != mine.shape())
      throw ValueError("WeightAverage::load: '" + k + "' has shape " + shape_str(it->second.shape()) + ", the model " +
                       shape_str(mine.shape()));
    NoGradGuard no_grad;
    mine.copy_(it->second);
  }
}

}  // namespace advgrad
