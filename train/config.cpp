#include "advgrad/train/config.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "advgrad/core/error.h"
#include "advgrad/core/parallel.h"
#include "advgrad/nn/models.h"
#include "advgrad/train/json_fields.h"

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
      f("quiet", c.quiet), f("mart_beta", c.mart_beta), f("awp_gamma", c.awp_gamma), f("awp_warmup", c.awp_warmup),
      f("ema_decay", c.ema_decay);
}

// Fields config.json files written before they existed do not have; those take their defaults.
bool added_later(const std::string& name) {
  return name == "mart_beta" || name == "awp_gamma" || name == "awp_warmup" || name == "ema_decay";
}

[[noreturn]] void fail(const std::string& m) { throw ValueError("train: " + m); }

void check_count(const char* name, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    fail("setting '" + std::string(name) + "' must be a whole number in [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "], got " + std::to_string(v));
}

// A finite number in the interval; `lo_open` / `hi_open` exclude the ends.
void check_number(const char* name, double v, double lo, double hi, bool lo_open = false, bool hi_open = false) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (!ok) {
    const std::string range = hi == std::numeric_limits<double>::max()
                                  ? std::string(lo_open ? "> " : ">= ") + nlohmann::json(lo).dump()
                                  : std::string(lo_open ? "(" : "[") + nlohmann::json(lo).dump() + ", " +
                                        nlohmann::json(hi).dump() + (hi_open ? ")" : "]");
    fail("setting '" + std::string(name) + "' must be a finite number " + range + ", got " + std::to_string(v));
  }
}

}  // namespace

void TrainConfig::validate() const {
  using L = TrainLimits;
  const bool onnx_file = model.size() > 5 && model.compare(model.size() - 5, 5, ".onnx") == 0;  // the CLI loads it
  if (!model.empty() && !onnx_file) {  // "" = a model given to the Trainer as an object
    try {
      model_info(model);
    } catch (const Error& e) {
      fail(std::string("setting 'model': ") + e.what());
    }
  }
  if (!is_training_method(method)) {
    std::string known;
    for (const std::string& m : training_methods()) known += (known.empty() ? "" : ", ") + m;
    fail("unknown method '" + method + "' (" + known + ")");
  }
  if (optimizer != "sgd" && optimizer != "adam") fail("unknown optimizer '" + optimizer + "' (sgd, adam)");
  if (schedule != "onecycle" && schedule != "cosine" && schedule != "step" && schedule != "constant")
    fail("unknown schedule '" + schedule + "' (onecycle, cosine, step, constant)");
  check_number("eps", eps, 0, 1);
  check_count("steps", steps, 1, L::max_steps);
  check_number("adv_fraction", adv_fraction, 0, 1);
  check_number("trades_beta", trades_beta, 0, kAnyPositive);
  check_count("eps_ramp_epochs", eps_ramp_epochs, 0, L::max_epochs);
  check_number("mart_beta", mart_beta, 0, kAnyPositive);
  check_number("awp_gamma", awp_gamma, 0, 1);
  if (awp_gamma > 0 && method != "pgd" && method != "trades" && method != "mart")
    fail("setting 'awp_gamma' (AWP) works on top of pgd, trades or mart, not '" + method + "'");
  check_count("awp_warmup", awp_warmup, 0, L::max_epochs);
  check_number("ema_decay", ema_decay, 0, 1, false, /*hi_open=*/true);
  check_count("epochs", epochs, 1, L::max_epochs);
  check_count("batch", batch, 1, L::max_batch);
  check_number("lr", lr, 0, kAnyPositive, /*lo_open=*/true);
  check_number("momentum", momentum, 0, 1, false, /*hi_open=*/true);
  check_number("weight_decay", weight_decay, 0, kAnyPositive);
  check_number("onecycle_pct", onecycle_pct, 0, 1, true, true);
  check_number("clip_norm", clip_norm, 0, kAnyPositive);  // 0 is "off"; NaN or < 0 must not mean "off" silently
  check_count("limit", limit, 0, L::max_samples);
  // Validation picks best.safetensors and shows robust overfitting; an empty set would silently score 0.
  if (val_size < 1) fail("setting 'val_size' must be >= 1 (the held-out images pick the best checkpoint)");
  check_count("val_size", val_size, 1, L::max_samples);
  check_count("test_limit", test_limit, 0, L::max_samples);
  check_count("val_pgd_steps", val_pgd_steps, 1, L::max_steps);
  check_count("final_pgd_steps", final_pgd_steps, 1, L::max_steps);
  if (seed > L::max_seed) fail("setting 'seed' must be a whole number in [0, 2^63 - 1], got " + std::to_string(seed));
  check_count("threads", threads, 0, kMaxThreads);
  check_count("stop_after_epochs", stop_after_epochs, 0, L::max_epochs);
}

std::string TrainConfig::to_json() const {
  nlohmann::ordered_json j;
  TrainConfig copy = *this;
  for_each_field<nlohmann::ordered_json>(copy, [&](const char* name, auto& v) { j[name] = v; });
  return j.dump(2);
}

TrainConfig TrainConfig::from_json(const std::string& text, const std::string& source) {
  namespace jf = json_fields;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IOError(source + ": not a JSON object");
  TrainConfig c;
  for_each_field<nlohmann::json>(c, [&](const char* name, auto& v) {
    using T = std::decay_t<decltype(v)>;
    if (added_later(name) && !j.contains(name)) return;  // an older config.json: the default
    if constexpr (std::is_same_v<T, std::string>) {
      v = jf::get_string(j, name, source);
    } else if constexpr (std::is_same_v<T, bool>) {
      v = jf::get_bool(j, name, source);
    } else if constexpr (std::is_same_v<T, double>) {
      v = jf::get_number(j, name, std::numeric_limits<double>::lowest(), std::numeric_limits<double>::max(), source);
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      v = T(jf::get_int(j, name, 0, int64_t(TrainLimits::max_seed), source));
    } else {
      static_assert(std::is_integral_v<T> && std::is_signed_v<T>, "a new field type needs a reader");
      // Checked against the field's own type before narrowing; validate() then checks its real range.
      v = T(jf::get_int(j, name, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), source));
    }
  });
  try {
    c.validate();
  } catch (const ValueError& e) {
    throw IOError(source + ": " + e.what());
  }
  return c;
}

}  // namespace advgrad
