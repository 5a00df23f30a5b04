// advgrad inspect FILE.onnx|FILE.safetensors [--json]
// What a model or weights file holds, read without running anything: for ONNX the inputs and outputs with
// their dims, the opset, the op counts, the initializers (parameters, buffers, constants) with their
// shapes, and whether advgrad runs every node (the ones it cannot run are listed with the reason); for
// safetensors the tensors with dtypes and shapes, and the metadata.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/core/error.h"
#include "advgrad/nn/serialize.h"
#ifdef ADVGRAD_HAVE_ONNX
#include "advgrad/onnx/load_onnx.h"
#endif

namespace advgrad::cli {
namespace {

struct InspectArgs {
  std::string file;
  bool json = false;
};

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d < 0 ? 0 : d;
  return n;
}

#ifdef ADVGRAD_HAVE_ONNX

// "[N, 1, 28, 28]": symbolic dims by their name ("?" when unnamed).
std::string dims_text(const OnnxValueInfo& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.dims.size(); ++i) {
    const std::string name = i < v.dim_names.size() && !v.dim_names[i].empty() ? v.dim_names[i] : "?";
    s += (i ? "," : "") + (v.dims[i] < 0 ? name : std::to_string(v.dims[i]));
  }
  return s + "]";
}

void print_onnx(const OnnxFileSummary& f) {
  std::printf("file        %s (ONNX, IR version %lld, opset %lld%s%s)\n", f.file.c_str(), (long long)f.ir_version,
              (long long)f.opset, f.producer.empty() ? "" : ", from ", f.producer.c_str());
  for (const auto& v : f.inputs) std::printf("input       %s  %s %s\n", v.name.c_str(), v.dtype.c_str(), dims_text(v).c_str());
  for (const auto& v : f.outputs) std::printf("output      %s  %s %s\n", v.name.c_str(), v.dtype.c_str(), dims_text(v).c_str());
  int64_t nodes = 0;
  std::string ops;
  for (const auto& kv : f.op_counts) {
    nodes += kv.second;
    ops += (ops.empty() ? "" : ", ") + kv.first + " " + std::to_string(kv.second);
  }
  std::printf("ops         %lld nodes: %s\n", (long long)nodes, ops.c_str());
  for (const char* role : {"parameter", "buffer", "constant"}) {
    int64_t count = 0, values = 0;
    for (const auto& t : f.initializers)
      if (t.role == role) ++count, values += element_count(t.dims);
    if (count == 0) continue;
    std::printf("%-11s %lld (%lld values)\n", (std::string(role) + "s").c_str(), (long long)count, (long long)values);
    for (const auto& t : f.initializers)
      if (t.role == role) std::printf("  %-40s %-8s %s\n", t.name.c_str(), t.dtype.c_str(), shape_str(t.dims).c_str());
  }
  if (f.unsupported.empty()) {
    std::printf("supported   yes: advgrad runs every node\n");
  } else {
    std::printf("supported   no: %zu node(s) advgrad cannot run\n", f.unsupported.size());
    for (const auto& line : f.unsupported) std::printf("  %s\n", line.c_str());
  }
}

void print_onnx_json(const OnnxFileSummary& f) {
  auto values = [](const std::vector<OnnxValueInfo>& vs) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& v : vs) a.push_back({{"name", v.name}, {"dtype", v.dtype}, {"dims", v.dims}, {"dim_names", v.dim_names}});
    return a;
  };
  nlohmann::ordered_json j;
  j["file"] = f.file, j["format"] = "onnx", j["ir_version"] = f.ir_version, j["opset"] = f.opset;
  j["producer"] = f.producer;
  j["inputs"] = values(f.inputs), j["outputs"] = values(f.outputs);
  nlohmann::ordered_json ops = nlohmann::ordered_json::object();
  for (const auto& kv : f.op_counts) ops[kv.first] = kv.second;
  j["op_counts"] = ops;
  nlohmann::ordered_json inits = nlohmann::ordered_json::array();
  for (const auto& t : f.initializers) inits.push_back({{"name", t.name}, {"dtype", t.dtype}, {"dims", t.dims}, {"role", t.role}});
  j["initializers"] = inits;
  j["supported"] = f.unsupported.empty();
  j["unsupported"] = f.unsupported;
  std::cout << j.dump() << "\n";
}

#endif  // ADVGRAD_HAVE_ONNX

void print_safetensors(const std::string& file, const SafetensorsHeader& h, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["file"] = file, j["format"] = "safetensors";
    nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
    for (const auto& kv : h.tensors)
      tensors.push_back({{"name", kv.first}, {"dtype", dtype_name(kv.second.dtype)}, {"shape", kv.second.shape}});
    j["tensors"] = tensors;
    j["metadata"] = h.metadata;
    std::cout << j.dump() << "\n";
    return;
  }
  int64_t values = 0;
  for (const auto& kv : h.tensors) values += element_count(kv.second.shape);
  std::printf("file        %s (safetensors, %zu tensors, %lld values, %llu data bytes)\n", file.c_str(), h.tensors.size(),
              (long long)values, (unsigned long long)h.data_size);
  for (const auto& kv : h.tensors)
    std::printf("  %-40s %-8s %s\n", kv.first.c_str(), dtype_name(kv.second.dtype), shape_str(kv.second.shape).c_str());
  std::printf("metadata    %zu entr%s\n", h.metadata.size(), h.metadata.size() == 1 ? "y" : "ies");
  for (const auto& kv : h.metadata) std::printf("  %-20s %s\n", kv.first.c_str(), one_line(kv.second).c_str());
}

void run(const InspectArgs& args) {
  if (ends_with(args.file, ".safetensors")) {
    print_safetensors(args.file, read_safetensors_header(args.file), args.json);  // IOError naming the file
    return;
  }
  if (!ends_with(args.file, ".onnx"))
    throw CLI::ValidationError("FILE", "'" + args.file + "' is neither a .onnx nor a .safetensors file");
#ifdef ADVGRAD_HAVE_ONNX
  const OnnxFileSummary summary = summarize_onnx(args.file);  // checked as load_onnx checks it; nothing runs
  if (args.json)
    print_onnx_json(summary);
  else
    print_onnx(summary);
#else
  throw ValueError(args.file + ": this advgrad was built without ONNX support (cmake -DADVGRAD_ONNX=ON)");
#endif
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "What a .onnx or .safetensors file holds (inputs, ops, parameters; tensors, metadata), without running it");
  cmd->add_option("FILE", args->file, "A FILE.onnx (a model for --model) or FILE.safetensors (weights)")->required();
  cmd->add_flag("--json", args->json, "Print one JSON object instead of text");
  cmd->callback([args] { run(*args); });
}

}  // namespace advgrad::cli
