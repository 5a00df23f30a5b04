#include "advgrad/nn/models.h"

namespace advgrad {

std::shared_ptr<Sequential> make_mnist_cnn(int64_t c1, int64_t c2, int64_t hidden, Generator& gen) {
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(1, c1, 5, gen, 1, 2));   // 0
  m->push_back(std::make_shared<ReLU>());                         // 1
  m->push_back(std::make_shared<MaxPool2d>(2));                   // 2
  m->push_back(std::make_shared<Conv2d>(c1, c2, 5, gen, 1, 2));  // 3
  m->push_back(std::make_shared<ReLU>());                         // 4
  m->push_back(std::make_shared<MaxPool2d>(2));                   // 5
  m->push_back(std::make_shared<Flatten>());                      // 6
  m->push_back(std::make_shared<Linear>(c2 * 7 * 7, hidden, gen));  // 7
  m->push_back(std::make_shared<ReLU>());                         // 8
  m->push_back(std::make_shared<Linear>(hidden, 10, gen));        // 9
  return m;
}

LSTMClassifier::LSTMClassifier(int64_t rows, int64_t row_size, int64_t hidden, int64_t classes, Generator& gen)
    : rows_(rows), row_size_(row_size) {
  lstm = register_module("lstm", std::make_shared<LSTM>(row_size, hidden, gen));
  fc = register_module("fc", std::make_shared<Linear>(hidden, classes, gen));
}

Tensor LSTMClassifier::forward(const Tensor& x) {
  if (x.numel() % (rows_ * row_size_) != 0)
    throw ShapeError("LSTMClassifier: input " + shape_str(x.shape()) + " is not a batch of " + std::to_string(rows_) +
                     "x" + std::to_string(row_size_) + " images");
  Tensor seq = reshape(x, {-1, rows_, row_size_});
  Tensor out = lstm->forward(seq);
  Tensor last = reshape(slice(out, 1, rows_ - 1, rows_), {seq.size(0), lstm->hidden_size()});
  return fc->forward(last);
}

BasicBlock::BasicBlock(int64_t in, int64_t out, int64_t stride, Generator& gen) {
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, out, 3, gen, stride, 1, 1, false));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(out, out, 3, gen, 1, 1, 1, false));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    shortcut_ = register_module("shortcut", std::make_shared<Sequential>());
    shortcut_->push_back(std::make_shared<Conv2d>(in, out, 1, gen, stride, 0, 1, false));
    shortcut_->push_back(std::make_shared<BatchNorm2d>(out));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor h = relu(bn1_->forward(conv1_->forward(x)));
  h = bn2_->forward(conv2_->forward(h));
  return relu(add(h, shortcut_ ? shortcut_->forward(x) : x));
}

CifarResNet::CifarResNet(int64_t classes, Generator& gen) {
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(3, 16, 3, gen, 1, 1, 1, false));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(16));
  layer1_ = register_module("layer1", std::make_shared<BasicBlock>(16, 16, 1, gen));
  layer2_ = register_module("layer2", std::make_shared<BasicBlock>(16, 32, 2, gen));
  layer3_ = register_module("layer3", std::make_shared<BasicBlock>(32, 64, 2, gen));
  fc_ = register_module("fc", std::make_shared<Linear>(64, classes, gen));
}

Tensor CifarResNet::forward(const Tensor& x) {
  Tensor h = relu(bn1_->forward(conv1_->forward(x)));
  h = layer3_->forward(layer2_->forward(layer1_->forward(h)));
  return fc_->forward(flatten(mean(h, {2, 3}), 1));
}

const std::vector<ModelInfo>& model_zoo() {
  static const std::vector<ModelInfo> zoo = {
      {"small_cnn", {1, 28, 28}, 10,
       "Conv(1->16,5x5) ReLU MaxPool Conv(16->32,5x5) ReLU MaxPool Linear(1568->100) ReLU Linear(100->10)",
       [](Generator& gen) -> std::shared_ptr<Module> { return make_mnist_cnn(16, 32, 100, gen); }},
      {"madry_cnn", {1, 28, 28}, 10,
       "Conv(1->32,5x5) ReLU MaxPool Conv(32->64,5x5) ReLU MaxPool Linear(3136->1024) ReLU Linear(1024->10)",
       [](Generator& gen) -> std::shared_ptr<Module> { return make_mnist_cnn(32, 64, 1024, gen); }},
      {"lstm", {1, 28, 28}, 10, "LSTM(28->128) over the image rows, Linear(128->10) on the last step",
       [](Generator& gen) -> std::shared_ptr<Module> { return std::make_shared<LSTMClassifier>(28, 28, 128, 10, gen); }},
      {"cifar_resnet", {3, 32, 32}, 10,
       "ResNet: conv3x3(16)+BN, BasicBlocks 16/32/64 (stride 1/2/2), global avg pool, Linear(64->10)",
       [](Generator& gen) -> std::shared_ptr<Module> { return std::make_shared<CifarResNet>(10, gen); }},
  };
  return zoo;
}

const ModelInfo& model_info(const std::string& name) {
  std::string known;
  for (const auto& m : model_zoo()) {
    if (m.name == name) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  throw ValueError("unknown model '" + name + "' (known: " + known + ")");
}

std::shared_ptr<Module> make_model(const std::string& name, Generator& gen) { return model_info(name).make(gen); }

}  // namespace advgrad
