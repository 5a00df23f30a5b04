// The model zoo: models built by name, with the exact definitions (and state_dict keys) of
// bench/REFERENCE.md, so PyTorch weights load here and the other way round. One table
// (model_zoo(), in nn/models.cpp) holds every model with its input shape, classes, description and
// factory; make_model, model_info and the command line's help read it. Adding a model is its class (or
// a builder function) plus one line in that table.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/nn/layers.h"

namespace advgrad {

struct ModelInfo {
  std::string name;
  Shape input_shape;  // one sample, e.g. {1, 28, 28}
  int64_t num_classes;
  std::string description;
  std::function<std::shared_ptr<Module>(Generator&)> make;  // a freshly initialised model, weights from gen
};

// Every model of the table, in its order.
const std::vector<ModelInfo>& model_zoo();
// The entry of `name`; ValueError "unknown model 'NAME' (known: ...)" listing every name.
const ModelInfo& model_info(const std::string& name);
// model_info(name).make(gen): a freshly initialised model (weights drawn from gen).
std::shared_ptr<Module> make_model(const std::string& name, Generator& gen);

// small_cnn / madry_cnn: nn.Sequential(Conv(1->c1,5,pad 2), ReLU, MaxPool 2, Conv(c1->c2,5,pad 2), ReLU,
// MaxPool 2, Flatten, Linear(c2*49 -> hidden), ReLU, Linear(hidden -> 10)): keys 0.*, 3.*, 7.*, 9.*.
std::shared_ptr<Sequential> make_mnist_cnn(int64_t c1, int64_t c2, int64_t hidden, Generator& gen);

// lstm: the 28 rows of a 28x28 image as a sequence -> LSTM(28, 128) -> Linear(128, 10) on the last step.
class LSTMClassifier : public Module {
 public:
  LSTMClassifier(int64_t rows, int64_t row_size, int64_t hidden, int64_t classes, Generator& gen);
  Tensor forward(const Tensor& x) override;  // x [N, 1, rows, row_size] or [N, rows, row_size]
  std::string describe() const override { return "LSTMClassifier"; }
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> fc;

 private:
  int64_t rows_, row_size_;
};

// cifar_resnet: a small ResNet for 3x32x32 inputs (He et al. 2016, CIFAR variant, one block per stage):
//   conv1 3x3 (3->16, no bias) -> bn1 -> ReLU
//   layer1 BasicBlock(16->16, stride 1) -> layer2 BasicBlock(16->32, stride 2) -> layer3 BasicBlock(32->64, stride 2)
//   global average pool -> fc Linear(64 -> 10)
// BasicBlock: conv1 3x3 (stride s) -> bn1 -> ReLU -> conv2 3x3 -> bn2, plus the shortcut (identity, or
// `shortcut` = Sequential(Conv 1x1 stride s, BatchNorm2d) when the shape changes), then ReLU.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "BasicBlock"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Sequential> shortcut_;  // null for identity
};
class CifarResNet : public Module {
 public:
  CifarResNet(int64_t classes, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "CifarResNet"; }

 private:
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<BasicBlock> layer1_, layer2_, layer3_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace advgrad
