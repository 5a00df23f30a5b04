// The recorded graph. Each differentiable op that runs while grad mode is on and some input requires grad
// creates one Node: it knows the producers of its inputs (next_edges, in input order) and how to turn the
// gradient of its single output into gradients for its inputs (apply).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/core/tensor.h"

namespace advgrad {

class Node;

// Where the gradient of one input goes: the node that produced it (an op, or the AccumulateGrad of a
// leaf). A null node means that input needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
};

class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node();  // releases the graph behind it iteratively (no recursion on long chains)
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradients of the inputs, one per next_edges entry, given the gradient of the output. An entry may be
  // left undefined when needed[i] is false (that input's gradient would be dropped: skip its work) or
  // when the input does not depend on the output.
  virtual std::vector<Tensor> apply(const Tensor& grad_output, const std::vector<bool>& needed) = 0;

  const std::string& name() const { return name_; }
  // Creation order: later ops have larger numbers (a debugging aid and a tie-breaker).
  uint64_t sequence_nr() const { return sequence_nr_; }

  std::vector<Edge> next_edges;
  // Shape and dtype of each input, so the engine can check what apply returns.
  std::vector<Shape> input_shapes;
  std::vector<DType> input_dtypes;

 private:
  std::string name_;
  uint64_t sequence_nr_;
};

// The sink of a leaf that requires grad: the engine accumulates into the leaf's .grad here (backward) or
// hands the gradient back to the caller (grad). One per leaf while a graph uses it.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : Node("AccumulateGrad"), leaf_(std::move(leaf)) {}
  std::vector<Tensor> apply(const Tensor&, const std::vector<bool>&) override { return {}; }
  Tensor leaf() const { return Tensor(leaf_); }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// A tensor kept for backward: its data (detached, so the graph holds no cycle through it) and the storage
// version at the time it was saved. unpack() raises AutogradError if it was modified in place since.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* op);
  Tensor unpack() const;
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;
  uint64_t version_ = 0;
  const char* op_ = "";
};

// The edge for gradients of `t`: its grad_fn, or its leaf's AccumulateGrad, or null if it needs no grad.
Edge gradient_edge(const Tensor& t);

}  // namespace advgrad
