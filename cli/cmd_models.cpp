// advgrad models [--json]
// The model zoo (nn/models.cpp's table): each model's input shape, classes, parameter count (counted on
// a freshly built model, so it is the architecture's) and the PyTorch definition it mirrors in the
// repository (bench/peer/torch_zoo.py: same layers, order and state_dict names, so weights move both ways).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/nn/models.h"

namespace advgrad::cli {
namespace {

// The repository's PyTorch mirror of the zoo, and each model's definition in it (its ZOO entry).
constexpr const char* kTorchZooFile = "bench/peer/torch_zoo.py";
std::string torch_definition(const std::string& model) {
  if (model == "small_cnn") return "small_cnn() -> nn.Sequential (mnist_cnn(16, 32, 100))";
  if (model == "madry_cnn") return "madry_cnn() -> nn.Sequential (mnist_cnn(32, 64, 1024))";
  if (model == "lstm") return "class LSTMClassifier";
  if (model == "cifar_resnet") return "class CifarResNet";
  return "";  // a model added to the table without a PyTorch twin yet
}

struct ModelsArgs {
  bool json = false;
};

void run(const ModelsArgs& args) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  if (!args.json)
    std::printf("%-13s %-10s %7s %11s  %s\n", "model", "input", "classes", "parameters",
                ("PyTorch definition in " + std::string(kTorchZooFile)).c_str());
  for (const ModelInfo& m : model_zoo()) {
    Generator gen(0);
    const int64_t parameters = m.make(gen)->num_parameters();  // built, not typed in
    const std::string torch = torch_definition(m.name);
    if (args.json) {
      nlohmann::ordered_json e;
      e["name"] = m.name;
      e["input_shape"] = m.input_shape;
      e["classes"] = m.num_classes;
      e["parameters"] = parameters;
      e["description"] = m.description;
      e["pytorch_file"] = torch.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(kTorchZooFile);
      e["pytorch_definition"] = torch.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(torch);
      list.push_back(e);
    } else {
      std::printf("%-13s %-10s %7lld %11lld  %s\n", m.name.c_str(), shape_str(m.input_shape).c_str(),
                  static_cast<long long>(m.num_classes), static_cast<long long>(parameters),
                  torch.empty() ? "-" : torch.c_str());
      std::printf("%-13s %s\n", "", m.description.c_str());
    }
  }
  if (args.json) {
    std::cout << list.dump() << "\n";
    return;
  }
  std::printf("\n--model takes these names (weights: --weights FILE.safetensors, from advgrad or from the PyTorch "
              "definitions above), or a FILE.onnx with its weights inside.\n");
}

}  // namespace

void register_models(CLI::App& app) {
  auto args = std::make_shared<ModelsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "models", "List the model zoo: input shapes, parameter counts, the PyTorch definitions they mirror");
  cmd->add_flag("--json", args->json, "Print one JSON array instead of a table");
  cmd->callback([args] { run(*args); });
}

}  // namespace advgrad::cli
