// libFuzzer target for the checkpoint readers: the first byte picks the reader, the rest is its input.
//   0: config.json (TrainConfig::from_json)   1: a metrics.jsonl line (metrics_from_json)
//   2: trainer.json (parse_trainer_json)       3: safetensors bytes loaded as small_cnn weights
//      (Module::load_state_dict) and as SGD and Adam state (Optimizer::load_state)
// Each either accepts the input (then its values are in range, checked below) or throws advgrad::Error;
// anything else -- a crash, a sanitizer report, another exception type -- is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "advgrad/core/error.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/optim.h"
#include "advgrad/nn/serialize.h"
#include "advgrad/train/config.h"
#include "advgrad/train/run_files.h"

namespace {

using namespace advgrad;

void check_metrics(const EpochMetrics& m) {
  if (m.epoch < 1 || !(m.val_pgd_acc >= 0 && m.val_pgd_acc <= 1) || !std::isfinite(m.train_loss)) __builtin_trap();
}

struct Targets {
  std::shared_ptr<Module> model;
  std::unique_ptr<SGD> sgd;
  std::unique_ptr<Adam> adam;
  StateDict initial_weights, initial_sgd, initial_adam;  // deep copies of the state before any input
  Targets() {
    Generator gen(0);
    model = make_model("small_cnn", gen);
    sgd = std::make_unique<SGD>(model->parameters(), 0.1, 0.9);
    adam = std::make_unique<Adam>(model->parameters(), 0.001);
    initial_weights = copies(model->state_dict());
    initial_sgd = copies(sgd->state());
    initial_adam = copies(adam->state());
  }
  // Back to the state before any input, so each input is judged on its own and a crash reproduces from
  // that one input.
  void reset() {
    model->load_state_dict(initial_weights);
    sgd->load_state(initial_sgd);
    adam->load_state(initial_adam);
  }
  static StateDict copies(const StateDict& d) {
    StateDict out;
    for (const auto& kv : d) out[kv.first] = kv.second.clone();
    return out;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 4) {
      case 0: {
        TrainConfig c = TrainConfig::from_json(text, "config.json");
        if (c.epochs < 1 || c.batch < 1 || !std::isfinite(c.lr)) __builtin_trap();
        break;
      }
      case 1:
        check_metrics(metrics_from_json(text, "metrics.jsonl"));
        break;
      case 2: {
        CheckpointIndex ix = parse_trainer_json(text, "trainer.json");
        if (ix.ck.epochs_done < 0 || ix.ck.epochs_done > ix.ck.config.epochs ||
            ix.ck.history.size() != size_t(ix.ck.epochs_done) || ix.model_file.find('/') != std::string::npos)
          __builtin_trap();
        for (const auto& m : ix.ck.history) check_metrics(m);
        break;
      }
      default: {
        static Targets t;  // built once: a fresh small_cnn per input would dominate the run time
        t.reset();
        SafetensorsFile f = load_safetensors_from_memory(data + 1, size - 1, "fuzz.safetensors");
        try {
          t.model->load_state_dict(f.tensors);
        } catch (const Error&) {
        }
        try {
          t.sgd->load_state(f.tensors);
        } catch (const Error&) {
        }
        t.adam->load_state(f.tensors);
        break;
      }
    }
  } catch (const Error&) {
    // The expected answer to malformed input.
  }
  return 0;
}
