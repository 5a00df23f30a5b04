// A first adversarial example, end to end, with nothing but tensors and autograd:
//   1. make a 2-D two-class dataset (two interleaved spirals),
//   2. train a small MLP on it with plain SGD,
//   3. attack it with FGSM and PGD: x_adv = clip(x + eps * sign(grad_x loss)), within the eps-ball and [0,1],
//   4. print clean and robust accuracy.
// The attack takes gradients with grad(loss, {x}): the model's own .grad fields are never touched.
#include <cmath>
#include <cstdio>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/ops.h"

using namespace advgrad;

struct Mlp {
  Tensor w1, b1, w2, b2, w3, b3;
  explicit Mlp(Generator& g) {
    auto init = [&](int64_t out, int64_t in) {  // uniform(-1/sqrt(in), 1/sqrt(in)), like PyTorch's Linear
      double bound = 1.0 / std::sqrt(double(in));
      return uniform({out, in}, -bound, bound, g).requires_grad_();
    };
    w1 = init(64, 2), b1 = zeros({64}).requires_grad_();
    w2 = init(64, 64), b2 = zeros({64}).requires_grad_();
    w3 = init(2, 64), b3 = zeros({2}).requires_grad_();
  }
  Tensor operator()(const Tensor& x) const {
    return linear(relu(linear(relu(linear(x, w1, b1)), w2, b2)), w3, b3);
  }
  std::vector<Tensor> params() const { return {w1, b1, w2, b2, w3, b3}; }
};

// Two spirals inside the unit square [0,1]^2: the attack's box constraint is the data's natural range.
void make_spirals(int64_t n, Generator& g, Tensor& x, Tensor& y) {
  Tensor t = rand({n}, g), noise = mul(randn({n, 2}, g), 0.01);
  std::vector<float> xs(size_t(2 * n));
  std::vector<int64_t> ys(static_cast<size_t>(n));
  auto tv = t.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t cls = i % 2;
    double r = 0.05 + 0.4 * tv[size_t(i)], a = 3.5 * M_PI * tv[size_t(i)] + M_PI * double(cls);
    xs[size_t(2 * i)] = float(0.5 + r * std::cos(a));
    xs[size_t(2 * i + 1)] = float(0.5 + r * std::sin(a));
    ys[size_t(i)] = cls;
  }
  x = clamp(add(from_vector(xs, {n, 2}), noise), 0.0, 1.0);
  y = from_vector(ys);
}

double accuracy(const Mlp& model, const Tensor& x, const Tensor& y) {
  NoGradGuard no_grad;
  return sum(eq(argmax(model(x), 1), y)).item() / double(y.numel());
}

// PGD-Linf with `steps` steps of size alpha from x (FGSM is one step of size eps).
Tensor pgd(const Mlp& model, const Tensor& x, const Tensor& y, double eps, double alpha, int steps) {
  Tensor adv = x.clone();
  for (int s = 0; s < steps; ++s) {
    Tensor probe = adv.clone().requires_grad_();
    Tensor g = grad({cross_entropy(model(probe), y)}, {probe})[0];
    NoGradGuard no_grad;
    adv = adv + sign(g) * alpha;                                          // x' = x' + alpha sign(grad)
    adv = clamp(minimum(maximum(adv, x - eps), x + eps), 0.0, 1.0);  // project: eps-ball, then [0,1]
  }
  return adv;
}

int main() {
  Generator gen(1);
  Tensor x_train, y_train, x_test, y_test;
  make_spirals(2000, gen, x_train, y_train);
  make_spirals(1000, gen, x_test, y_test);
  Mlp model(gen);

  std::printf("training a 2-64-64-2 MLP on two spirals (full batch, SGD + momentum)\n");
  std::vector<Tensor> velocity;
  for (const auto& p : model.params()) velocity.push_back(zeros_like(p));
  for (int step = 0; step <= 1500; ++step) {
    for (auto& p : model.params()) p.zero_grad();
    Tensor loss = cross_entropy(model(x_train), y_train);
    backward(loss);
    {
      NoGradGuard no_grad;
      auto params = model.params();
      for (size_t i = 0; i < params.size(); ++i) {
        velocity[i].mul_(0.9).add_(params[i].grad());
        params[i].add_(velocity[i], -0.1);
      }
    }
    if (step % 300 == 0) std::printf("  step %4d  loss %.4f  train acc %.3f\n", step, loss.item(),
                                     accuracy(model, x_train, y_train));
  }
  std::printf("clean test accuracy: %.3f\n", accuracy(model, x_test, y_test));
  for (double eps : {0.01, 0.02, 0.05}) {
    double fgsm = accuracy(model, pgd(model, x_test, y_test, eps, eps, 1), y_test);
    double pgd20 = accuracy(model, pgd(model, x_test, y_test, eps, 2.5 * eps / 20, 20), y_test);
    std::printf("eps %.2f: FGSM accuracy %.3f, PGD-20 accuracy %.3f\n", eps, fgsm, pgd20);
  }
  return 0;
}
