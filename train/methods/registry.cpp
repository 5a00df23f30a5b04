// The training methods by name: what --method accepts, config.json stores and the command's help lists.
// A new method: its file under train/methods/ and one entry here (its factory's declaration beside it).
#include "advgrad/train/config.h"
#include "advgrad/train/methods/awp.h"
#include "advgrad/train/methods/method.h"

namespace advgrad {

std::unique_ptr<TrainingMethod> make_natural(const MethodOptions&);   // natural.cpp
std::unique_ptr<TrainingMethod> make_pgd(const MethodOptions&);       // pgd.cpp
std::unique_ptr<TrainingMethod> make_fgsm_rs(const MethodOptions&);   // fgsm_rs.cpp
std::unique_ptr<TrainingMethod> make_free(const MethodOptions&);      // free.cpp
std::unique_ptr<TrainingMethod> make_trades(const MethodOptions&);    // trades.cpp
std::unique_ptr<TrainingMethod> make_mart(const MethodOptions&);      // mart.cpp

namespace {
std::vector<MethodInfo>& table() {
  static std::vector<MethodInfo> methods = {
      {"natural", "cross-entropy on clean inputs", make_natural},
      {"pgd", "PGD adversarial training (Madry et al. 2018), --steps K of 2.5 eps/K", make_pgd},
      {"fgsm-rs", "FGSM from a random start, step 1.25 eps (Wong et al. 2020)", make_fgsm_rs},
      {"free", "free adversarial training, --steps replays per batch (Shafahi et al. 2019)", make_free},
      {"trades", "TRADES, CE + --beta x KL (Zhang et al. 2019)", make_trades},
      {"mart", "MART, boosted CE + --mart-beta x weighted KL (Wang et al. 2020)", make_mart},
  };
  return methods;
}
}  // namespace

const std::vector<MethodInfo>& method_registry() { return table(); }

void add_training_method(MethodInfo method) {
  if (method.name.empty() || !method.make) throw ValueError("add_training_method: a method needs a name and a factory");
  if (is_training_method(method.name))
    throw ValueError("add_training_method: '" + method.name + "' is already a training method");
  table().push_back(std::move(method));
}

std::vector<std::string> training_methods() {
  std::vector<std::string> out;
  for (const MethodInfo& m : method_registry()) out.push_back(m.name);
  return out;
}

bool is_training_method(const std::string& name) {
  for (const MethodInfo& m : method_registry())
    if (m.name == name) return true;
  return false;
}

std::unique_ptr<TrainingMethod> make_training_method(const std::string& name, const MethodOptions& options) {
  for (const MethodInfo& m : method_registry()) {
    if (m.name != name) continue;
    std::unique_ptr<TrainingMethod> method = m.make(options);
    if (options.awp_gamma == 0) return method;
    if (name != "pgd" && name != "trades" && name != "mart")
      throw ValueError("train: AWP (awp_gamma " + std::to_string(options.awp_gamma) +
                       ") works on top of pgd, trades or mart, not '" + name + "'");
    return std::make_unique<AWP>(std::move(method), options.awp_gamma, options.awp_warmup);
  }
  std::string known;
  for (const MethodInfo& m : method_registry()) known += (known.empty() ? "" : ", ") + m.name;
  throw ValueError("train: unknown method '" + name + "' (" + known + ")");
}

}  // namespace advgrad
