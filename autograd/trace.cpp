#include "advgrad/autograd/trace.h"

#include "advgrad/core/error.h"

namespace advgrad {

namespace {
thread_local Tracer* current_tracer = nullptr;
}  // namespace

Tracer* active_tracer() { return current_tracer; }

const TraceAttribute& TracedOp::attribute(const std::string& name) const {
  for (const auto& a : attributes)
    if (a.name == name) return a;
  throw ValueError("traced op '" + op + "' has no attribute '" + name + "'");
}

bool TracedOp::has_attribute(const std::string& name) const {
  for (const auto& a : attributes)
    if (a.name == name) return true;
  return false;
}

TraceScope::TraceScope(Tracer& tracer) : previous_(current_tracer) { current_tracer = &tracer; }
TraceScope::~TraceScope() { current_tracer = previous_; }

TraceComposite::TraceComposite() : outer_(current_tracer) { current_tracer = nullptr; }
TraceComposite::~TraceComposite() { current_tracer = outer_; }

}  // namespace advgrad
