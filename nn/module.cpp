#include "advgrad/nn/module.h"

#include "advgrad/nn/serialize.h"

#include <set>
#include <sstream>

namespace advgrad {

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  if (value.requires_grad() && !value.is_leaf()) value = value.detach();
  if (!value.requires_grad()) value.requires_grad_(true);
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, value);
  return value;
}

void Module::register_generator(const std::string& name, Generator& gen) {
  for (const auto& kv : generators_)
    if (kv.first == name) throw ValueError("register_generator: '" + name + "' is registered twice");
  generators_.emplace_back(name, &gen);
}

std::vector<std::pair<std::string, Generator*>> Module::named_generators() const {
  std::vector<std::pair<std::string, Generator*>> out = generators_;
  for (const auto& [name, child] : children_)
    for (const auto& [sub, g] : child->named_generators()) out.emplace_back(name + "." + sub, g);
  return out;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  if (!module) throw ValueError("register_module: '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters()) out.push_back(kv.second);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

void Module::set_requires_grad(bool on) {
  for (auto& p : parameters()) p.requires_grad_(on);
}

StateDict Module::state_dict() const {
  StateDict sd;
  for (auto& kv : named_parameters()) sd[kv.first] = kv.second;
  for (auto& kv : named_buffers()) sd[kv.first] = kv.second;
  return sd;
}

void Module::load_state_dict(const StateDict& state, bool strict, bool allow_non_finite) {
  StateDict own = state_dict();
  std::vector<std::string> problems;
  bool non_finite = false;
  // Pass 1: every problem is found (and listed) before any value is copied.
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source on its device and in its dtype)
  for (const auto& [key, t] : own) {
    auto it = state.find(key);
    if (it == state.end()) {
      if (strict) problems.push_back("missing key '" + key + "'");
      continue;
    }
    if (it->second.shape() != t.shape()) {
      problems.push_back("'" + key + "': shape " + shape_str(it->second.shape()) + " in the file, " +
                         shape_str(t.shape()) + " in the model");
      continue;
    }
    // Converted first (a float64 file into float32 weights), so that what is checked is what is loaded.
    Tensor src = it->second.to(t.device());
    if (is_floating(t.dtype())) src = src.to(t.dtype());
    // A float into an integer buffer (num_batches_tracked): only whole numbers int64 can hold convert.
    const std::string fraction = non_integral_summary(src, t.dtype());
    if (!fraction.empty()) {
      problems.push_back("'" + key + "': " + fraction + " for its " + dtype_name(t.dtype()) + " buffer");
      continue;
    }
    if (!allow_non_finite) {
      const std::string bad = non_finite_summary(src);
      if (!bad.empty()) {
        problems.push_back("'" + key + "': " + bad);
        non_finite = true;
      }
    }
    copies.emplace_back(t, src);
  }
  if (strict)
    for (const auto& kv : state)
      if (!own.count(kv.first)) problems.push_back("unexpected key '" + kv.first + "'");
  if (!problems.empty()) {
    std::string msg = "load_state_dict: " + std::to_string(problems.size()) + " problem(s): ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    if (non_finite) msg += " (NaN/inf weights are refused unless allow_non_finite is set)";
    throw ValueError(msg);
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(src);  // converts dtype where src kept its own (an int64 buffer, say)
  }
}

namespace {
// Points t's existing TensorImpl at converted data, so every handle to it sees the change.
void retarget(const Tensor& t, const Tensor& converted) {
  TensorImpl& im = t.impl();
  Tensor dense = converted.dense();
  im.storage = dense.impl().storage;
  im.offset = dense.offset();
  im.strides = dense.strides();
  im.dtype = dense.dtype();
  im.device = dense.device();
  im.grad.reset();
}
}  // namespace

void Module::to(DType dtype) {
  if (!is_floating(dtype)) throw TypeError("Module::to: parameters must stay floating point");
  for (auto& kv : state_dict())
    if (is_floating(kv.second.dtype()) && kv.second.dtype() != dtype) retarget(kv.second, kv.second.to(dtype).clone());
}

void Module::to(Device device) {
  for (auto& kv : state_dict())
    if (kv.second.device() != device) retarget(kv.second, kv.second.to(device));
}

void Module::train(bool on) {
  training_ = on;
  for (auto& kv : children_) kv.second->train(on);
}

void Module::summary_lines(const std::string& name, int depth, std::string& out) const {
  int64_t own = 0;
  for (const auto& kv : params_) own += kv.second.numel();
  out += std::string(size_t(depth) * 2, ' ') + (name.empty() ? "" : "(" + name + ") ") + describe();
  if (own) out += "  [" + std::to_string(own) + " params]";
  out += "\n";
  for (const auto& [n, child] : children_) child->summary_lines(n, depth + 1, out);
}

std::string Module::summary() const {
  std::string out;
  summary_lines("", 0, out);
  out += "total parameters: " + std::to_string(num_parameters()) + "\n";
  return out;
}

Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(children().size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& kv : children()) h = kv.second->forward(h);
  return h;
}

// Declared in nn/serialize.h; defined here so that the safetensors reader does not depend on Module.
std::map<std::string, std::string> load_safetensors_into(Module& model, const std::string& path, bool strict,
                                                         bool allow_non_finite) {
  return load_safetensors_into(path, model.state_dict(), strict, allow_non_finite);
}

}  // namespace advgrad
