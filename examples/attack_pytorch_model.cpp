// Evaluate the robustness of a model trained in PyTorch. Export its state_dict as safetensors, e.g.
//   from safetensors.torch import save_file; save_file(model.state_dict(), "small_cnn.safetensors")
// (or write the file with json + struct as tests/golden/make_nn_fixtures.py does), with a model defined
// exactly as bench/peer/torch_zoo.py's small_cnn / madry_cnn / lstm. Then:
//   attack_pytorch_model small_cnn small_cnn.safetensors [eps]
#include <cstdio>
#include <string>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"

using namespace advgrad;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL WEIGHTS.safetensors [EPS]\n", argv[0]);
    return 2;
  }
  try {
    Generator gen(0);
    auto model = make_model(argv[1], gen);
    model->load_state_dict(load_safetensors(argv[2]).tensors);  // PyTorch's names: 0.weight, lstm.weight_ih_l0, ...
    const double eps = argc > 3 ? std::stod(argv[3]) : 0.1;
    Dataset test = load_dataset(default_fashion_mnist_dir(), "test");
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < 1000; ++i) rows.push_back(i);
    AttackOptions o;
    o.eps = eps, o.steps = 20;
    EvalReport r = evaluate(*model, test.images_float(rows), test.labels_tensor(rows), {{"fgsm", o}, {"pgd", o}});
    std::printf("clean %.3f  FGSM %.3f  PGD-20 %.3f  (eps %.3f, first 1000 test images)\n", r.clean_accuracy,
                r.attacks[0].accuracy, r.attacks[1].accuracy, eps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
