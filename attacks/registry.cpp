// Attacks by name, with each one's customary defaults.
#include "attacks/apgd.h"
#include "attacks/gradient_attacks.h"
#include "attacks/square.h"
#include "attacks/trades_kl.h"

namespace advgrad {

const std::vector<std::string>& attack_names() {
  static const std::vector<std::string> names = {"fgsm",  "fgsm-rs", "bim",     "pgd",   "pgd-l2",
                                                 "mifgsm", "apgd-ce", "apgd-dlr", "apgd-t", "square", "trades-kl"};
  return names;
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options) {
  AttackOptions o = options;
  auto step_or = [&](double fallback) { return o.step_size > 0 ? o.step_size : fallback; };
  if (name == "fgsm") {  // one step of eps from the clean point
    o.steps = 1, o.random_start = false, o.step_size = step_or(o.eps);
    return std::make_unique<PGD>(o, name);
  }
  if (name == "fgsm-rs") {  // Wong et al.: uniform start, one step of 1.25 eps
    o.steps = 1, o.random_start = true, o.step_size = step_or(1.25 * o.eps);
    return std::make_unique<PGD>(o, name);
  }
  if (name == "bim") {  // Kurakin et al.: iterated FGSM from the clean point, step eps / steps
    o.random_start = false, o.step_size = step_or(o.eps / std::max(o.steps, 1));
    return std::make_unique<PGD>(o, name);
  }
  if (name == "pgd") {
    o.norm = Norm::Linf;
    return std::make_unique<PGD>(o, name);
  }
  if (name == "pgd-l2") {
    o.norm = Norm::L2;
    return std::make_unique<PGD>(o, name);
  }
  if (name == "mifgsm") return std::make_unique<MIFGSM>(o);
  if (name == "apgd-ce") {
    o.loss = AttackLoss::CrossEntropy;
    return std::make_unique<APGD>(o, name);
  }
  if (name == "apgd-dlr") {
    o.loss = AttackLoss::DLR;
    return std::make_unique<APGD>(o, name);
  }
  if (name == "apgd-t") {
    o.loss = AttackLoss::DLR, o.targeted = false;  // picks its own targets; success = misclassified
    return std::make_unique<APGDTargeted>(o);
  }
  if (name == "square") {
    o.loss = AttackLoss::CWMargin, o.random_start = true;
    return std::make_unique<SquareAttack>(o);
  }
  if (name == "trades-kl") return std::make_unique<TradesKL>(o);
  std::string known;
  for (const auto& n : attack_names()) known += (known.empty() ? "" : ", ") + n;
  throw ValueError("unknown attack '" + name + "' (known: " + known + ")");
}

}  // namespace advgrad
