// What `advgrad eval` writes for reuse and reads back: per-sample results (--per-sample FILE.csv|.jsonl),
// the adversarial examples (--save-adv FILE.safetensors), and those examples read back as a hostile file
// for a transfer evaluation (--adv-from FILE.safetensors).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "advgrad/attacks/evaluate.h"
#include "advgrad/cli/common.h"

namespace advgrad::cli {

// ---- per-sample results ----

// A CLI11 check: the path ends in .csv or .jsonl (the format is chosen by it).
CLI::Validator per_sample_path();
// One row per sample: its index in the split, label, clean prediction and, per attack, whether it was
// attacked, fooled, the adversarial prediction and the perturbation's norm (EvalOptions::per_sample).
// CSV: a header line, then comma-separated numbers; JSONL: one object per line. IOError naming the file.
void write_per_sample(const std::string& path, const Samples& s, const EvalReport& rep);

// ---- adversarial examples ----

// The tensors of a --save-adv file: "x_adv" (float32, the model's input shape [N, ...]), "labels" (int64
// [N]) and "indices" (int64 [N], each sample's row of the split); metadata says how they were made.
struct AdversarialSet {
  Tensor x, labels;
  std::vector<int64_t> indices;  // empty when the file has none
  std::map<std::string, std::string> metadata;
};

// Writes rep.adversarial (EvalOptions::keep_adversarial) with the labels and rows of `s`.
void save_adversarial(const std::string& path, const Samples& s, const EvalReport& rep,
                      const std::map<std::string, std::string>& metadata);

// Reads a --save-adv file made against any model, for `model`: the header first (no tensor is read
// before its dtype and shape are known to fit), then only the three tensors. Refused: a damaged file,
// missing or unknown tensors, other dtypes or ranks, counts that disagree, samples the model does not take
// (shapes equal up to dims of size 1 are reshaped), values outside [0,1] or not finite, labels outside
// [0, classes), indices negative or repeated. Each is one usage error naming `option` and the file
// (CLI::ValidationError, exit status 2). Learns an ONNX model's class count (one forward).
AdversarialSet load_adversarial(const std::string& path, LoadedModel& model, const std::string& option);

}  // namespace advgrad::cli
