// Layers with PyTorch's parameter names, shapes, default initialisation and numerics.
// Constructors that create weights take the Generator that initialises them (seeded, reproducible).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "advgrad/nn/module.h"

namespace advgrad {

// y = x W^T + b; weight [out, in], bias [out]; init U(-1/sqrt(in), 1/sqrt(in)) for both.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight, bias;  // bias undefined when bias=false
};

// One chainable option of a layer's options class, in PyTorch's C++ style:
// `Conv2dOptions(1, 8, 3).stride(2).padding(1).groups(4).bias(false)`; `opts.stride()` reads it back.
#define ADVGRAD_LAYER_OPTION(Options, T, name, initial) \
 public:                                              \
  Options& name(T value) {                            \
    name##_ = value;                                  \
    return *this;                                     \
  }                                                   \
  T name() const { return name##_; }                  \
                                                      \
 private:                                             \
  T name##_ = initial;

class Conv2dOptions {
 public:
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Size2 kernel)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_(kernel) {}
  ADVGRAD_LAYER_OPTION(Conv2dOptions, int64_t, in_channels, 1)
  ADVGRAD_LAYER_OPTION(Conv2dOptions, int64_t, out_channels, 1)
  ADVGRAD_LAYER_OPTION(Conv2dOptions, Size2, kernel, 1)
  ADVGRAD_LAYER_OPTION(Conv2dOptions, Size2, stride, 1)
  ADVGRAD_LAYER_OPTION(Conv2dOptions, Size2, padding, 0)
  ADVGRAD_LAYER_OPTION(Conv2dOptions, Size2, dilation, 1)
  ADVGRAD_LAYER_OPTION(Conv2dOptions, int64_t, groups, 1)  // must divide both channel counts
  ADVGRAD_LAYER_OPTION(Conv2dOptions, bool, bias, true)
};

// NCHW convolution; weight [out, in/groups, kh, kw], bias [out]; init U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// with fan_in = in/groups*kh*kw, as PyTorch.
class Conv2d : public Module {
 public:
  Conv2d(const Conv2dOptions& options, Generator& gen);
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel, Generator& gen, Size2 stride = 1,
         Size2 padding = 0, Size2 dilation = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  const Conv2dOptions& options() const { return options_; }
  Tensor weight, bias;

 private:
  Conv2dOptions options_;
};

class MaxPool2dOptions {
 public:
  explicit MaxPool2dOptions(Size2 kernel) : kernel_(kernel) {}
  ADVGRAD_LAYER_OPTION(MaxPool2dOptions, Size2, kernel, 1)
  ADVGRAD_LAYER_OPTION(MaxPool2dOptions, Size2, stride, 0)  // 0: the kernel size
  ADVGRAD_LAYER_OPTION(MaxPool2dOptions, Size2, padding, 0)
  ADVGRAD_LAYER_OPTION(MaxPool2dOptions, Size2, dilation, 1)
  ADVGRAD_LAYER_OPTION(MaxPool2dOptions, bool, ceil_mode, false)
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options) : options_(options) {}
  explicit MaxPool2d(Size2 kernel, Size2 stride = 0, Size2 padding = 0)
      : options_(MaxPool2dOptions(kernel).stride(stride).padding(padding)) {}
  Tensor forward(const Tensor& x) override {
    return max_pool2d(x, options_.kernel(), options_.stride(), options_.padding(), options_.dilation(),
                      options_.ceil_mode());
  }
  std::string describe() const override;
  const MaxPool2dOptions& options() const { return options_; }

 private:
  MaxPool2dOptions options_;
};

class AvgPool2dOptions {
 public:
  explicit AvgPool2dOptions(Size2 kernel) : kernel_(kernel) {}
  ADVGRAD_LAYER_OPTION(AvgPool2dOptions, Size2, kernel, 1)
  ADVGRAD_LAYER_OPTION(AvgPool2dOptions, Size2, stride, 0)  // 0: the kernel size
  ADVGRAD_LAYER_OPTION(AvgPool2dOptions, Size2, padding, 0)
  ADVGRAD_LAYER_OPTION(AvgPool2dOptions, bool, ceil_mode, false)
  ADVGRAD_LAYER_OPTION(AvgPool2dOptions, bool, count_include_pad, true)
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options) : options_(options) {}
  explicit AvgPool2d(Size2 kernel, Size2 stride = 0, Size2 padding = 0)
      : options_(AvgPool2dOptions(kernel).stride(stride).padding(padding)) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool2d(x, options_.kernel(), options_.stride(), options_.padding(), options_.ceil_mode(),
                      options_.count_include_pad());
  }
  std::string describe() const override;
  const AvgPool2dOptions& options() const { return options_; }

 private:
  AvgPool2dOptions options_;
};
#undef ADVGRAD_LAYER_OPTION

// Global average pooling: [N,C,H,W] -> [N,C,1,1] (AdaptiveAvgPool2d with output size 1).
class AdaptiveAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "AdaptiveAvgPool2d(output_size=1)"; }
};

// Batch normalisation over [N,C] (1d, also [N,C,L]) or [N,C,H,W] (2d). Training: normalise with the
// batch's mean and biased variance, update running_mean/var with the unbiased variance:
// running = (1 - momentum) * running + momentum * batch. Eval: use the running statistics.
// State: weight, bias (parameters), running_mean, running_var, num_batches_tracked (buffers), as PyTorch.
class BatchNorm : public Module {
 public:
  BatchNorm(int64_t num_features, int spatial_dims, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  Tensor normalize(const Tensor& x);  // forward() without the shape check and the trace record
  int64_t features_;
  int spatial_dims_;  // 0 for BatchNorm1d on [N,C] or 1 on [N,C,L]; 2 for BatchNorm2d
  double eps_, momentum_;
};
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNorm(num_features, 1, eps, momentum) {}
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNorm(num_features, 2, eps, momentum) {}
};

// Zeroes each element with probability p in training and scales the rest by 1/(1-p); identity in eval.
// The mask of call k is drawn from (seed, stream, counter) so runs repeat exactly; the generator is
// registered as "generator" (Module::named_generators), so trainers save its counter in checkpoints.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, uint64_t seed = 0);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  uint64_t rng_offset() const { return gen_.offset(); }
  void set_rng_offset(uint64_t offset) { gen_.set_offset(offset); }

 private:
  double p_;
  Generator gen_;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string describe() const override { return "ReLU"; }
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope_(slope) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }
  std::string describe() const override;

 private:
  double slope_;
};
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
  std::string describe() const override { return "Tanh"; }
};
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
  std::string describe() const override { return "Sigmoid"; }
};
// [N, d1, d2, ...] -> [N, d1*d2*...] (torch.nn.Flatten with start_dim 1).
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return flatten(x, 1); }
  std::string describe() const override { return "Flatten"; }
};

// (x - mean[c]) / std[c] per channel of [N,C,...]. Put it first in a model so that attacks and data
// stay in [0,1] pixel space. Constants, not parameters (not in the state dict).
class Normalize : public Module {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  std::vector<double> mean_, std_;
};

// Rows of a [num_embeddings, dim] table by int64 index: [...] -> [..., dim]; init N(0, 1) as PyTorch.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Generator& gen);
  Tensor forward(const Tensor& indices) override;
  std::string describe() const override;
  Tensor weight;
};

// Recurrent layers, batch_first: input [N, T, input_size] -> output [N, T, hidden] (the last layer's h
// at every step) plus the final state of every layer [num_layers, N, hidden]. Parameters per layer k:
// weight_ih_lk [G*H, in], weight_hh_lk [G*H, H], bias_ih_lk, bias_hh_lk [G*H], G = 1 (RNN), 4 (LSTM, gate
// order i, f, g, o) or 3 (GRU, r, z, n), all U(-1/sqrt(H), 1/sqrt(H)) as PyTorch.
struct RecurrentState {
  Tensor h;  // [num_layers, N, H]
  Tensor c;  // LSTM only
};
struct RecurrentOutput {
  Tensor output;  // [N, T, H]
  RecurrentState state;
};
class RecurrentBase : public Module {
 public:
  enum class Kind { RNN_TANH, LSTM, GRU };
  RecurrentBase(Kind kind, int64_t input_size, int64_t hidden_size, int64_t num_layers, Generator& gen,
                bool bias = true);
  // initial: zeros when undefined.
  RecurrentOutput forward_sequence(const Tensor& x, const RecurrentState& initial = {});
  Tensor forward(const Tensor& x) override { return forward_sequence(x).output; }
  std::string describe() const override;
  int64_t hidden_size() const { return hidden_; }

 private:
  Kind kind_;
  int64_t input_, hidden_, layers_;
  bool bias_;
  std::vector<Tensor> w_ih_, w_hh_, b_ih_, b_hh_;
};
class RNN : public RecurrentBase {
 public:
  RNN(int64_t input_size, int64_t hidden_size, Generator& gen, int64_t num_layers = 1, bool bias = true)
      : RecurrentBase(Kind::RNN_TANH, input_size, hidden_size, num_layers, gen, bias) {}
};
class LSTM : public RecurrentBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, Generator& gen, int64_t num_layers = 1, bool bias = true)
      : RecurrentBase(Kind::LSTM, input_size, hidden_size, num_layers, gen, bias) {}
};
class GRU : public RecurrentBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, Generator& gen, int64_t num_layers = 1, bool bias = true)
      : RecurrentBase(Kind::GRU, input_size, hidden_size, num_layers, gen, bias) {}
};

}  // namespace advgrad
