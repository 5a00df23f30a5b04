#include "advgrad/autograd/engine.h"

#include <unordered_map>
#include <unordered_set>

#include "advgrad/autograd/node.h"
#include "advgrad/autograd/ops.h"
#include "advgrad/core/grad_mode.h"

namespace advgrad {

namespace {

// Nodes reachable from roots, each after everything it depends on (DFS post-order, iterative so that
// deep graphs cannot overflow the stack). Reversed, it is a valid order for running backward: every
// node comes after all the consumers of its output. Edge order makes it deterministic.
std::vector<Node*> post_order(const std::vector<Node*>& roots) {
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack;
  std::vector<Node*> order;
  for (Node* root : roots) {
    if (!visited.insert(root).second) continue;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      Node* n = stack.back().first;
      size_t i = stack.back().second++;
      if (i < n->next_edges.size()) {
        Node* child = n->next_edges[i].node.get();
        if (child && visited.insert(child).second) stack.push_back({child, 0});
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  return order;
}

struct Root {
  Node* node;
  Tensor grad;
};

// Runs backward from roots. With targets (grad mode), gradients reaching a target node are returned at
// the target's positions and no leaf is touched; without (backward mode), they accumulate into leaves.
std::vector<Tensor> run(const std::vector<Root>& roots, const std::unordered_map<Node*, std::vector<size_t>>* targets,
                        size_t n_results) {
  std::vector<Node*> root_nodes;
  for (const auto& r : roots) root_nodes.push_back(r.node);
  std::vector<Node*> order = post_order(root_nodes);

  // A node is needed when it is a sink we care about or leads to one; the rest of the graph (e.g. weight
  // gradients during an attack) is never evaluated.
  std::unordered_map<Node*, bool> needed;
  auto is_sink = [&](Node* n) {
    return targets ? targets->count(n) > 0 : dynamic_cast<AccumulateGrad*>(n) != nullptr;
  };
  for (Node* n : order) {
    bool need = is_sink(n);
    for (const auto& e : n->next_edges) need = need || (e.node && needed[e.node.get()]);
    needed[n] = need;
  }

  NoGradGuard no_grad;  // backward formulas must not record graphs of their own
  std::unordered_map<Node*, Tensor> pending;
  auto deposit = [&](Node* n, const Tensor& g) {
    auto it = pending.find(n);
    if (it == pending.end()) pending.emplace(n, g);
    else it->second = add(it->second, g);
  };
  for (const auto& r : roots) deposit(r.node, r.grad);

  std::vector<Tensor> results(n_results);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    if (!needed[n]) continue;
    auto found = pending.find(n);
    if (found == pending.end()) continue;  // no gradient reached this node
    Tensor g = std::move(found->second);
    pending.erase(found);

    if (targets) {
      auto t = targets->find(n);
      if (t != targets->end())
        for (size_t k : t->second) results[k] = g;
    }
    if (auto* acc = dynamic_cast<AccumulateGrad*>(n)) {
      if (!targets) {
        Tensor leaf = acc->leaf();
        Tensor old = leaf.grad();
        leaf.set_grad(old.defined() ? add(old, g) : g.clone());  // a private copy: g may be shared
      }
      continue;
    }

    std::vector<bool> mask(n->next_edges.size());
    bool any = false;
    for (size_t i = 0; i < mask.size(); ++i) {
      Node* child = n->next_edges[i].node.get();
      mask[i] = child && needed[child];
      any = any || mask[i];
    }
    if (!any) continue;
    std::vector<Tensor> grads = n->apply(g, mask);
    if (grads.size() != mask.size())
      throw AutogradError(n->name() + " backward: returned " + std::to_string(grads.size()) + " gradients for " +
                          std::to_string(mask.size()) + " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!mask[i] || !grads[i].defined()) continue;
      if (grads[i].shape() != n->input_shapes[i] || grads[i].dtype() != n->input_dtypes[i])
        throw AutogradError(n->name() + " backward: gradient for input " + std::to_string(i) + " is " +
                            grads[i].describe() + ", the input was " + dtype_name(n->input_dtypes[i]) +
                            shape_str(n->input_shapes[i]));
      deposit(n->next_edges[i].node.get(), grads[i]);
    }
  }
  return results;
}

Tensor seed_grad(const Tensor& out, const Tensor& given, const char* api) {
  if (given.defined()) {
    if (given.shape() != out.shape())
      throw ShapeError(std::string(api) + ": gradient " + shape_str(given.shape()) + " for an output of shape " +
                       shape_str(out.shape()));
    return given.dtype() == out.dtype() ? given : given.to(out.dtype());
  }
  if (out.numel() != 1)
    throw ShapeError(std::string(api) + ": output of shape " + shape_str(out.shape()) +
                     " is not a scalar; pass its gradient explicitly");
  return ones(out.shape(), out.dtype(), out.device());
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_root) {
  if (!root.requires_grad())
    throw AutogradError("backward: the tensor does not require grad (no input of its computation requires grad, "
                        "or it was computed under NoGradGuard)");
  Edge e = gradient_edge(root);
  run({{e.node.get(), seed_grad(root, grad_root, "backward")}}, nullptr, 0);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool allow_unused) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw ValueError("grad: " + std::to_string(grad_outputs.size()) + " grad_outputs for " +
                     std::to_string(outputs.size()) + " outputs");
  std::vector<Edge> keep;  // holds the root and target nodes alive during the run
  std::vector<Root> roots;
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (!outputs[k].requires_grad())
      throw AutogradError("grad: output " + std::to_string(k) + " does not require grad");
    Edge e = gradient_edge(outputs[k]);
    keep.push_back(e);
    roots.push_back({e.node.get(), seed_grad(outputs[k], grad_outputs.empty() ? Tensor() : grad_outputs[k], "grad")});
  }
  std::unordered_map<Node*, std::vector<size_t>> targets;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].requires_grad())
      throw AutogradError("grad: input " + std::to_string(k) + " does not require grad");
    Edge e = gradient_edge(inputs[k]);
    keep.push_back(e);
    targets[e.node.get()].push_back(k);
  }
  std::vector<Tensor> res = run(roots, &targets, inputs.size());
  for (size_t k = 0; k < res.size(); ++k)
    if (!res[k].defined() && !allow_unused)
      throw AutogradError("grad: input " + std::to_string(k) +
                          " was not used to compute the outputs (pass allow_unused to get an undefined gradient)");
  return res;
}

}  // namespace advgrad
