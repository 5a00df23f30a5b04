// An exponential moving average of a model's weights (weight averaging, as in Izmailov et al. 2018 and
// the "EMA" of Gowal et al. 2020 for adversarial training): after every optimizer step
//   ema = decay * ema + (1 - decay) * w
// for each parameter, while buffers (BatchNorm statistics) are copied. It starts at the weights it is
// made from. The trainer evaluates it each epoch, saves it as ema.safetensors and keeps it in checkpoints.
#pragma once
#include <set>
#include <string>

#include "advgrad/nn/module.h"

namespace advgrad {

class WeightAverage {
 public:
  WeightAverage(const Module& model, double decay);  // ValueError unless 0 < decay < 1
  void update(const Module& model);                  // after an optimizer step
  double decay() const { return decay_; }
  // The averaged weights by state_dict key (parameters averaged, buffers as last copied).
  const StateDict& weights() const { return weights_; }
  // From a checkpoint: every key of the model, shapes as the model's (ValueError naming the key).
  void load(const StateDict& weights);

 private:
  double decay_;
  StateDict weights_;
  std::set<std::string> parameter_keys_;
};

// Runs `f` with `weights` loaded into `model`, then puts the model's own weights back (bit for bit).
template <class F>
auto with_weights(Module& model, const StateDict& weights, F&& f) {
  StateDict own;
  for (const auto& [k, t] : model.state_dict()) own[k] = t.clone();
  model.load_state_dict(weights);
  struct Restore {
    Module& m;
    const StateDict& own;
    ~Restore() { m.load_state_dict(own); }
  } restore{model, own};
  return f();
}

}  // namespace advgrad
