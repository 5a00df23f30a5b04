// advgrad export --model NAME|FILE.onnx [--weights FILE.safetensors] --out model.onnx
// Writes a model as an ONNX file (onnx/save_onnx.h): a zoo model traced with the given weights, or an ONNX
// file's graph with its weights (overridden by name, strictly, by --weights), e.g. after fine-tuning.
#include <cstdio>
#include <memory>
#include <string>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/core/error.h"
#include "advgrad/nn/serialize.h"
#ifdef ADVGRAD_HAVE_ONNX
#include "advgrad/onnx/load_onnx.h"
#include "advgrad/onnx/save_onnx.h"
#endif

namespace advgrad::cli {
namespace {

struct ExportArgs {
  std::string model, weights, out;
  int opset = 13;
  bool allow_non_finite = false;
};

void run(const ExportArgs& args) {
#ifndef ADVGRAD_HAVE_ONNX
  throw ValueError("export: this advgrad was built without ONNX support (cmake -DADVGRAD_ONNX=ON)");
#else
  std::shared_ptr<Module> model;
  Shape sample;
  int64_t opset = args.opset;
  if (is_onnx_path(args.model)) {
    auto imported = load_onnx(args.model);
    opset = imported->opset();  // an imported graph goes out as it came in: its own opset (--opset is for traced models)
    const auto& dims = imported->input_dims();
    sample.assign(dims.begin() + (dims.empty() ? 0 : 1), dims.end());
    model = imported;
    if (!args.weights.empty()) load_safetensors_into(*model, args.weights, /*strict=*/true, args.allow_non_finite);
  } else {
    const ModelInfo& info = model_info(args.model);  // ValueError listing the zoo for an unknown name
    if (args.weights.empty())
      throw ValueError("--weights: a zoo model (" + args.model + ") needs its weights (FILE.safetensors)");
    model = load_model(args.model, args.weights, args.allow_non_finite);
    sample = info.input_shape;
  }
  OnnxExportOptions options;
  options.opset = args.opset;
  save_onnx(*model, sample, args.out, options);
  std::printf("wrote %s (%s, input [N,%s], opset %d)\n", args.out.c_str(), args.model.c_str(),
              [&] {
                std::string s;
                for (size_t i = 0; i < sample.size(); ++i) s += (i ? "," : "") + std::to_string(sample[i]);
                return s;
              }()
                  .c_str(),
              int(opset));
#endif
}

}  // namespace

void register_export(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export", "Write a model (zoo + weights, or an ONNX file + weights) as ONNX");
  cmd->add_option("--model", args->model, "A zoo model name or a FILE.onnx")->required();
  cmd->add_option("--weights", args->weights,
                  "FILE.safetensors (required for a zoo model; for an ONNX file it overrides its weights by name)");
  cmd->add_option("--out", args->out, "The ONNX file to write")->required();
  cmd->add_option("--opset", args->opset, "ONNX opset of a traced model (13 to 17)")
      ->check(integer_in(13, 17))
      ->capture_default_str();
  cmd->add_flag("--allow-non-finite", args->allow_non_finite, "Load weights holding NaN/Inf anyway");
  cmd->footer(models_help());
  cmd->callback([args] { run(*args); });
}

}  // namespace advgrad::cli
