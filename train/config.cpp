#include "train/config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace advgrad {

namespace {
// One list of fields drives both directions of the JSON mapping, so they cannot drift apart.
template <class Json, class Config, class F>
void for_each_field(Config& c, F&& f) {
  f("model", c.model), f("data", c.data), f("limit", c.limit), f("val_size", c.val_size),
      f("test_limit", c.test_limit), f("method", c.method), f("eps", c.eps), f("steps", c.steps),
      f("adv_fraction", c.adv_fraction), f("trades_beta", c.trades_beta), f("eps_ramp_epochs", c.eps_ramp_epochs),
      f("epochs", c.epochs), f("batch", c.batch), f("optimizer", c.optimizer), f("lr", c.lr),
      f("momentum", c.momentum), f("weight_decay", c.weight_decay), f("schedule", c.schedule),
      f("onecycle_pct", c.onecycle_pct), f("clip_norm", c.clip_norm), f("val_pgd_steps", c.val_pgd_steps),
      f("co_detect", c.co_detect), f("co_fallback_pgd", c.co_fallback_pgd), f("final_pgd_steps", c.final_pgd_steps),
      f("seed", c.seed), f("threads", c.threads), f("out", c.out), f("stop_after_epochs", c.stop_after_epochs),
      f("quiet", c.quiet);
}
}  // namespace

void TrainConfig::validate() const {
  auto fail = [](const std::string& m) { throw ValueError("train: " + m); };
  if (method != "natural" && method != "pgd" && method != "fgsm-rs" && method != "free" && method != "trades")
    fail("unknown method '" + method + "' (natural, pgd, fgsm-rs, free, trades)");
  if (!(eps >= 0 && eps <= 1)) fail("eps must be in [0, 1]");
  if (steps < 1) fail("steps must be >= 1");
  if (epochs < 1) fail("epochs must be >= 1");
  if (batch < 1) fail("batch must be >= 1");
  if (!(lr > 0)) fail("lr must be > 0");
  if (!(adv_fraction >= 0 && adv_fraction <= 1)) fail("adv_fraction must be in [0, 1]");
  if (optimizer != "sgd" && optimizer != "adam") fail("unknown optimizer '" + optimizer + "' (sgd, adam)");
  if (schedule != "onecycle" && schedule != "cosine" && schedule != "step" && schedule != "constant")
    fail("unknown schedule '" + schedule + "' (onecycle, cosine, step, constant)");
  if (limit < 0 || val_size < 0 || test_limit < 0) fail("limit, val_size and test_limit must be >= 0");
  // Validation picks best.safetensors and shows robust overfitting; an empty set would silently score 0.
  if (val_size < 1) fail("val_size must be >= 1 (the held-out images pick the best checkpoint)");
  if (eps_ramp_epochs < 0 || stop_after_epochs < 0 || threads < 0) fail("counts must be >= 0");
  if (!(onecycle_pct > 0 && onecycle_pct < 1)) fail("onecycle_pct must be in (0, 1)");
  if (val_pgd_steps < 1 || final_pgd_steps < 1) fail("evaluation steps must be >= 1");
}

std::string TrainConfig::to_json() const {
  nlohmann::ordered_json j;
  TrainConfig copy = *this;
  for_each_field<nlohmann::ordered_json>(copy, [&](const char* name, auto& v) { j[name] = v; });
  return j.dump(2);
}

TrainConfig TrainConfig::from_json(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IOError(source + ": not a JSON object");
  TrainConfig c;
  for_each_field<nlohmann::json>(c, [&](const char* name, auto& v) {
    if (!j.contains(name)) throw IOError(source + ": missing setting '" + name + "'");
    try {
      v = j.at(name).get<std::decay_t<decltype(v)>>();
    } catch (const nlohmann::json::exception&) {
      throw IOError(source + ": setting '" + std::string(name) + "' has the wrong type");
    }
  });
  c.validate();
  return c;
}

}  // namespace advgrad
