// The PyTorch snippet this project grew from, rewritten on advgrad -- with its bugs fixed and explained.
//
// The original (abridged):
//   class AdversarialTraining:
//     def __init__(self, model, epsilon=0.01, alpha=0.01, iterations=10): ...
//     def generate_adversarial_sample(self, x, y):
//       x_adv = x.clone().detach().requires_grad_(True)
//       for _ in range(self.iterations):
//         loss = F.cross_entropy(self.model(x_adv), y)
//         loss.backward()                                   # (2) fills every weight's .grad, every step
//         x_adv = x_adv + self.alpha * x_adv.grad.sign()    # (5) one step is as large as the whole ball
//         x_adv = torch.clamp(x_adv, x - self.epsilon, x + self.epsilon)   # (1) no random start
//       return x_adv                                        # (4) still attached to the graph
//     def train(self, loader, optimizer, criterion):
//       self.model.train()                                  # (3) the attack then runs in train mode
//       for x, y in loader:
//         x_adv = self.generate_adversarial_sample(x, y)
//         optimizer.zero_grad(); criterion(self.model(x_adv), y).backward(); optimizer.step()
//
// What goes wrong, and what the version below does instead:
//   (1) No random start: every step begins at x, where the loss surface is what the model was trained on;
//       PGD starts uniformly inside the ball (Madry et al.).
//   (2) backward() computes and accumulates weight gradients on every attack step: wasted work, and the
//       optimizer later steps with attack gradients mixed in. grad(loss, {x}) returns the input gradient
//       only, touches no .grad, and skips the weight-gradient GEMMs.
//   (3) The attack runs in train mode: BatchNorm statistics and Dropout masks change while attacking.
//       Attacks run in eval mode (EvalModeGuard), then training switches back.
//   (4) x_adv stays attached to the attack's graph, so the training backward runs through every attack
//       step again (and the x_adv.grad of the next iteration is None in PyTorch). Here x_adv is plain data.
//   (5) alpha = epsilon: each step jumps to a corner of the ball, so 10 steps are no better than FGSM.
//       The usual step is 2.5 * eps / steps. Also: no clipping to [0,1], so examples leave image space.
#include <cstdio>

#include "advgrad/attacks/attack.h"
#include "advgrad/autograd/engine.h"
#include "advgrad/data/load_dataset.h"
#include "advgrad/data/loader.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/optim.h"

using namespace advgrad;

class AdversarialTraining {
 public:
  AdversarialTraining(Module& model, double epsilon = 0.1, int iterations = 10)
      : model_(model), eps_(epsilon), steps_(iterations), alpha_(2.5 * epsilon / iterations) {}

  Tensor generate_adversarial_sample(const Tensor& x, const Tensor& y, Generator& gen) {
    EvalModeGuard eval(model_);                                   // (3)
    Tensor x_adv = random_start(x, eps_, Norm::Linf, gen);        // (1)
    for (int i = 0; i < steps_; ++i) {
      Tensor probe = x_adv.detach().requires_grad_();
      Tensor loss = cross_entropy(model_.forward(probe), y);
      Tensor g = grad({loss}, {probe})[0];                        // (2) input gradient only
      NoGradGuard no_grad;
      x_adv = project(add(x_adv, mul(sign(g), alpha_)), x, eps_, Norm::Linf);  // (5) + [0,1]
    }
    return x_adv.detach();                                        // (4)
  }

  double train_epoch(const DataLoader& loader, int64_t epoch, Optimizer& optimizer, int64_t max_batches) {
    double total = 0;
    int64_t n = 0;
    Generator gen(epoch);
    for (int64_t i = 0; i < std::min(loader.num_batches(), max_batches); ++i) {
      Batch b = loader.batch(epoch, i);
      Tensor x_adv = generate_adversarial_sample(b.x, b.y, gen);
      model_.train();
      optimizer.zero_grad();
      Tensor loss = cross_entropy(model_.forward(x_adv), b.y);
      backward(loss);
      optimizer.step();
      total += loss.item(), ++n;
    }
    return total / double(std::max<int64_t>(n, 1));
  }

 private:
  Module& model_;
  double eps_;
  int steps_;
  double alpha_;
};

int main() {
  Dataset train = load_dataset(default_fashion_mnist_dir(), "train");
  LoaderOptions lo;
  lo.batch_size = 128, lo.shuffle = true, lo.seed = 0;
  DataLoader loader(train, lo);
  Generator gen(0);
  auto model = make_model("small_cnn", gen);
  SGD opt(model->parameters(), 0.02, 0.9);
  AdversarialTraining at(*model, 0.1, 7);
  for (int64_t epoch = 0; epoch < 2; ++epoch)
    std::printf("epoch %lld: adversarial training loss %.4f (first 60 batches)\n", (long long)epoch + 1,
                at.train_epoch(loader, epoch, opt, 60));
  return 0;
}
