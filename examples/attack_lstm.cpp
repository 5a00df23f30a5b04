// Attacks work on any model of the framework: here an LSTM that reads a Fashion-MNIST image row by row.
// Train it briefly, then compare FGSM, PGD and APGD on the same samples -- the same calls as for a CNN.
#include <cstdio>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/autograd/engine.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/loader.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/optim.h"

using namespace advgrad;

int main() {
  Dataset train = load_dataset(default_fashion_mnist_dir(), "train");
  Dataset test = load_dataset(default_fashion_mnist_dir(), "test");
  Generator gen(0);
  auto lstm = make_model("lstm", gen);  // LSTM(28 -> 128) over the 28 rows, Linear(128 -> 10)
  LoaderOptions lo;
  lo.batch_size = 128, lo.shuffle = true;
  DataLoader loader(train, lo);
  SGD opt(lstm->parameters(), 0.1, 0.9);
  for (int64_t i = 0; i < 150; ++i) {  // a short natural training run
    Batch b = loader.batch(0, i);
    opt.zero_grad();
    Tensor loss = cross_entropy(lstm->forward(b.x), b.y);
    backward(loss);
    opt.step();
    if (i % 50 == 0) std::printf("step %lld loss %.3f\n", (long long)i, loss.item());
  }
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 500; ++i) rows.push_back(i);
  Tensor x = test.images_float(rows), y = test.labels_tensor(rows);
  AttackOptions o;
  o.eps = 0.05, o.steps = 20;
  EvalReport r = evaluate(*lstm, x, y, {{"fgsm", o}, {"pgd", o}, {"apgd-ce", o}});
  std::printf("clean accuracy %.3f\n", r.clean_accuracy);
  for (const auto& a : r.attacks) std::printf("%-8s accuracy %.3f (%.1f s)\n", a.name.c_str(), a.accuracy, a.seconds);
  return 0;
}
