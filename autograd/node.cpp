#include "advgrad/autograd/node.h"

#include <atomic>

namespace advgrad {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}

Node::Node(std::string name) : name_(std::move(name)), sequence_nr_(next_sequence_nr++) {}

Node::~Node() {
  // Releasing next_edges naively would destroy the producer, which destroys its producer, ... one stack
  // frame per op: a 100,000-step chain overflows. Instead, take over every node we hold the last reference
  // to, empty its edges, and let it die edge-less.
  std::vector<std::shared_ptr<Node>> stack;
  for (auto& e : next_edges)
    if (e.node) stack.push_back(std::move(e.node));
  next_edges.clear();
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) {
      for (auto& e : n->next_edges)
        if (e.node) stack.push_back(std::move(e.node));
      n->next_edges.clear();
    }
  }
}

SavedTensor::SavedTensor(const Tensor& t, const char* op) : op_(op) {
  if (!t.defined()) return;
  data_ = t.detach();
  version_ = t.version();
}

Tensor SavedTensor::unpack() const {
  if (data_.defined() && data_.version() != version_)
    throw AutogradError(std::string(op_) + ": a tensor saved for its backward (" + data_.describe() +
                        ") was modified in place after the op ran (version " + std::to_string(version_) + ", now " +
                        std::to_string(data_.version()) + "); clone() it before modifying, or recompute");
  return data_;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  TensorImpl& im = t.impl();
  if (im.grad_fn) return {im.grad_fn};
  if (!im.requires_grad) return {};
  auto acc = im.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    im.grad_accumulator = acc;
  }
  return {acc};
}

}  // namespace advgrad
