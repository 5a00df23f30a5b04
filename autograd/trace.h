// Tracing: the ops one forward pass runs, recorded for an exporter (onnx/save_onnx.cpp writes them as an
// ONNX graph, as torch.onnx.export does). Every op of autograd/ops.h ends with
//
//     if (Tracer* t = active_tracer()) t->record({"conv2d", {x, weight, bias}, {out}, {ints("strides", {...})}});
//
// which costs one thread-local read when nobody traces. A layer whose meaning must survive export
// (BatchNorm, the recurrent layers) records itself as one composite op and hides its inner ops
// (TraceComposite). Tensors are identified by their TensorImpl: the exporter maps the tensors an op reads to
// the values earlier ops wrote, to parameters (by identity with named_parameters) or to constants.
#pragma once
#include <string>
#include <vector>

#include "advgrad/core/tensor.h"

namespace advgrad {

// One attribute of a traced op: a list of integers (axes, strides, a shape) or a real number.
struct TraceAttribute {
  std::string name;
  std::vector<int64_t> ints;
  double real = 0;
  bool is_real = false;
};
inline TraceAttribute ints(const char* name, std::vector<int64_t> values) { return {name, std::move(values), 0, false}; }
inline TraceAttribute real(const char* name, double value) { return {name, {}, value, true}; }

struct TracedOp {
  std::string op;               // the op's name in ops.h ("conv2d") or a composite's ("batch_norm")
  std::vector<Tensor> inputs;   // an undefined entry is an absent optional input (conv2d without bias)
  std::vector<Tensor> outputs;
  std::vector<TraceAttribute> attributes;

  // The attribute `name`; ValueError naming the op when it is missing.
  const TraceAttribute& attribute(const std::string& name) const;
  bool has_attribute(const std::string& name) const;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  virtual void record(TracedOp op) = 0;
};

// The tracer of this thread, or null when nobody traces (or inside a composite).
Tracer* active_tracer();

// Makes `tracer` this thread's active tracer for the scope's lifetime (the previous one comes back after).
class TraceScope {
 public:
  explicit TraceScope(Tracer& tracer);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  Tracer* previous_;
};

// Inside a composite (a layer exported as one node) the inner ops are not recorded; the composite records
// itself through tracer(), which is null when nobody traces:
//
//     TraceComposite composite;
//     Tensor y = ...inner ops...;
//     if (Tracer* t = composite.tracer()) t->record({"batch_norm", {x, weight, ...}, {y}, {...}});
class TraceComposite {
 public:
  TraceComposite();
  ~TraceComposite();
  TraceComposite(const TraceComposite&) = delete;
  TraceComposite& operator=(const TraceComposite&) = delete;
  Tracer* tracer() const { return outer_; }

 private:
  Tracer* outer_;
};

}  // namespace advgrad
