// Same inputs => bit-identical results at 1, 2 and 3 threads (work is split by shape, never by thread count).
#include <doctest/doctest.h>

#include "advgrad/autograd/engine.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/parallel.h"

using namespace advgrad;

namespace {

struct Results {
  std::vector<Tensor> tensors;
};

// A conv -> pool -> linear -> cross-entropy step plus a large matmul and a full sum: every gradient.
Results run_workload() {
  Generator g(2024);
  Tensor x = rand({16, 3, 19, 17}, g).requires_grad_();
  Tensor w1 = mul(randn({8, 3, 5, 5}, g), 0.1).detach().requires_grad_();
  Tensor b1 = randn({8}, g).requires_grad_();
  Tensor w2 = mul(randn({10, 8 * 9 * 8}, g), 0.05).detach().requires_grad_();
  Tensor labels = randint(0, 10, {16}, g);
  Tensor h = relu(conv2d(x, w1, b1, 1, 2));
  h = max_pool2d(h, 2, 2);
  Tensor logits = linear(flatten(h, 1), w2);
  Tensor loss = cross_entropy(logits, labels);
  backward(loss);

  Tensor a = randn({300, 257}, g), b = randn({257, 311}, g);
  Tensor big = randn({1 << 18}, g);
  Tensor c = randn({8, 33, 65}, g), d = randn({65, 40}, g);
  // The fused LSTM (hidden 128, batch 100: two row chunks of the recurrence) with every gradient.
  Tensor xs = randn({4, 100, 12}, g).requires_grad_(), h0 = randn({100, 128}, g), c0 = randn({100, 128}, g);
  Tensor wih = mul(randn({512, 12}, g), 0.1).detach().requires_grad_();
  Tensor whh = mul(randn({512, 128}, g), 0.1).detach().requires_grad_();
  Tensor bih = randn({512}, g).requires_grad_(), bhh = randn({512}, g).requires_grad_();
  Tensor seq = lstm_sequence(xs, h0, c0, wih, whh, bih, bhh);
  backward(sum(mul(seq, seq)));
  return {{loss, h, logits, x.grad(), w1.grad(), b1.grad(), w2.grad(), matmul(a, b), sum(big), matmul(c, d),
           softmax(a, 0), sum(a, {0}), seq, xs.grad(), wih.grad(), whh.grad(), bih.grad()}};
}

}  // namespace

TEST_CASE("conv2d forward+backward, matmul and reductions are bit-identical at 1, 2 and 3 threads") {
  int saved = num_threads();
  set_num_threads(1);
  Results one = run_workload();
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    Results other = run_workload();
    REQUIRE(other.tensors.size() == one.tensors.size());
    for (size_t i = 0; i < one.tensors.size(); ++i)
      CHECK_MESSAGE(bitwise_equal(one.tensors[i], other.tensors[i]), "result ", i, " differs at ", threads, " threads");
  }
  set_num_threads(saved);
}

TEST_CASE("the cpu backend agrees with the reference backend on the same workload") {
  Generator g(3);
  Tensor x = rand({4, 3, 11, 9}, g), w = randn({5, 3, 3, 3}, g);
  Tensor xr = x.to(Device::Reference).requires_grad_(), wr = w.to(Device::Reference).requires_grad_();
  Tensor xc = x.clone().requires_grad_(), wc = w.clone().requires_grad_();
  backward(sum(square(conv2d(xc, wc, Tensor(), 2, 1))));
  backward(sum(square(conv2d(xr, wr, Tensor(), 2, 1))));
  CHECK(allclose(xc.grad(), xr.grad().to(Device::CPU), 1e-4, 1e-5));
  CHECK(allclose(wc.grad(), wr.grad().to(Device::CPU), 1e-4, 1e-5));
}
