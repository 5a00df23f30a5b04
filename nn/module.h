// Module: the building block of models, as in PyTorch's C++ frontend. A module registers named
// parameters, buffers and submodules; hierarchical names ("0.weight", "lstm.weight_ih_l0") equal
// PyTorch's state_dict keys, so weights move both ways through safetensors.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "advgrad/autograd/ops.h"
#include "advgrad/nn/state_dict.h"

namespace advgrad {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. Modules with several inputs/outputs (RNNs) offer richer methods besides this one.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // "Linear(in_features=1568, out_features=100, bias=true)": the type and its configuration.
  virtual std::string describe() const = 0;

  // ---- parameters, buffers, submodules (in registration order; names are hierarchical) ----
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  int64_t num_parameters() const;  // total element count
  void zero_grad();                // drops every parameter's .grad
  // Freeze (false) or unfreeze parameters: frozen ones get no gradient and cost no backward work.
  void set_requires_grad(bool on);

  // ---- state dict: parameters and persistent buffers by name ----
  StateDict state_dict() const;
  // Copies values into this module's tensors (their handles stay valid). strict: missing and unexpected
  // keys are errors; always: a shape mismatch is an error. ValueError lists every problem by key.
  // allow_non_finite: NaN/inf values are refused (ValueError naming each such tensor, nothing changed)
  // unless this is true (experiments on broken weights). Values are checked after conversion to the
  // parameter's dtype, so a float64 1e300 headed for a float32 weight counts as +inf.
  void load_state_dict(const StateDict& state, bool strict = true, bool allow_non_finite = false);

  // Converts every floating parameter and buffer in place (handles stay valid; gradients are dropped):
  // to(DType::F64) makes a whole model gradcheck-able, to(Device::Reference) runs it on the reference
  // backend.
  void to(DType dtype);
  void to(Device device);

  // ---- random state: named generators (Dropout's mask counter), in registration order ----
  // Checkpoint state that is not in state_dict (whose keys stay PyTorch's): a trainer saves each
  // generator's offset beside the optimizer state and sets it back on resume, so a model that draws
  // random numbers in forward() resumes bit-identically. Names are hierarchical ("3.generator").
  std::vector<std::pair<std::string, Generator*>> named_generators() const;

  // ---- mode ----
  void train(bool on = true);  // recursively; Dropout and BatchNorm behave differently in training
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // A printable tree: each module's name, description and parameter count.
  std::string summary() const;

 protected:
  Tensor register_parameter(const std::string& name, Tensor value);  // makes it a leaf requiring grad
  Tensor register_buffer(const std::string& name, Tensor value);      // saved in state_dict, no grad
  // A generator this module draws from in forward(); it must live as long as the module (a member).
  void register_generator(const std::string& name, Generator& gen);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;
  void summary_lines(const std::string& name, int depth, std::string& out) const;

  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<std::string, Generator*>> generators_;
  bool training_ = true;
};

// A chain of modules named "0", "1", ... as torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return children().size(); }
  Module& operator[](size_t i) const { return *children().at(i).second; }
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "Sequential"; }
};

}  // namespace advgrad
