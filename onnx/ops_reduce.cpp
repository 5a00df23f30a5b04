// Reductions: ReduceMean and ReduceSum with keepdims. ReduceSum takes its axes as an input since opset 13
// (with noop_with_empty_axes); ReduceMean keeps them an attribute through opset 17.
#include "advgrad/onnx/op_table.h"

namespace advgrad::onnx_import {
namespace {

OpSpec reduction(bool is_mean) {
  OpSpec spec;
  spec.attributes = {"axes", "keepdims", "noop_with_empty_axes"};
  spec.prepare = [is_mean](const NodeInfo& node, const std::vector<const Value*>&) {
    const bool axes_are_input = !is_mean && node.opset >= 13;
    if (axes_are_input && has_attr(node, "axes")) throw NodeError("attribute 'axes' is an input since opset 13");
    const std::vector<int64_t> attr_axes = attr_ints(node, "axes", {});
    const bool keepdims = attr_int(node, "keepdims", 1) != 0;
    const bool noop_with_empty_axes = attr_int(node, "noop_with_empty_axes", 0) != 0;
    return unary([=](const std::vector<const Value*>& in) {
      const Tensor& x = float_input(in, 0, "data");
      std::vector<int64_t> axes = axes_are_input && has_input(in, 1) ? int_input(in, 1, "axes").values : attr_axes;
      if (axes.empty() && noop_with_empty_axes) return Value::of(x);
      for (auto& a : axes) a = normalize_axis(a, x.dim(), "axis");
      return Value::of(is_mean ? mean(x, axes, keepdims) : sum(x, axes, keepdims));
    });
  };
  return spec;
}

}  // namespace

void add_reduce_ops(OpTable& t) {
  t["ReduceMean"] = reduction(true);
  t["ReduceSum"] = reduction(false);
}

}  // namespace advgrad::onnx_import
