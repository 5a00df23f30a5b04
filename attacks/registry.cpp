// The table of attacks. One line per attack: name, norm, description, defaults, factory.
#include "advgrad/attacks/registry.h"

#include "advgrad/attacks/apgd.h"
#include "advgrad/attacks/bim.h"
#include "advgrad/attacks/fab.h"
#include "advgrad/attacks/fgsm.h"
#include "advgrad/attacks/mifgsm.h"
#include "advgrad/attacks/pgd.h"
#include "advgrad/attacks/square.h"
#include "advgrad/attacks/trades_kl.h"

namespace advgrad {

namespace {

template <class A>
std::unique_ptr<Attack> build(const AttackOptions& o) {
  return std::make_unique<A>(o);
}

// APGD and Square take their objective from the options; these set it for each name.
std::unique_ptr<Attack> apgd_with(AttackOptions o, AttackLoss loss, const char* name) {
  o.loss = loss;
  return std::make_unique<APGD>(o, name);
}
std::unique_ptr<Attack> apgd_targeted(const AttackOptions& options) {
  AttackOptions o = options;
  o.loss = AttackLoss::DLR, o.targeted = false;  // picks its own targets; success = misclassified
  return std::make_unique<APGDTargeted>(o);
}
std::unique_ptr<Attack> fab_targeted(const AttackOptions& options) {
  AttackOptions o = options;
  o.targeted = false;  // picks its own targets; success = misclassified within eps
  return std::make_unique<FABTargeted>(o);
}
std::unique_ptr<Attack> fab_untargeted(const AttackOptions& options) {
  AttackOptions o = options;
  o.targeted = false;  // untargeted by definition: success = misclassified within eps
  return std::make_unique<FAB>(o);
}
std::unique_ptr<Attack> square_attack(const AttackOptions& options) {
  AttackOptions o = options;
  o.loss = AttackLoss::CWMargin, o.random_start = true;
  return std::make_unique<SquareAttack>(o);
}

}  // namespace

const std::vector<AttackEntry>& attack_registry() {
  static const std::vector<AttackEntry> table = {
      {"fgsm", Norm::Linf, "FGSM (Goodfellow et al. 2015): one signed-gradient step from the clean point",
       "1 step of eps, no random start", &build<FGSM>},
      {"fgsm-rs", Norm::Linf, "FGSM from a random start (Wong et al. 2020)",
       "1 step of 1.25 eps from a uniform start", &build<FGSMRandomStart>},
      {"bim", Norm::Linf, "BIM / I-FGSM (Kurakin et al. 2017): FGSM iterated from the clean point",
       "steps of eps / steps, no random start", &build<BIM>},
      {"pgd", Norm::Linf, "PGD (Madry et al. 2018), L-inf", "steps of 2.5 eps / steps from a uniform start",
       &build<PGD>},
      {"pgd-l2", Norm::L2, "PGD (Madry et al. 2018), L2", "steps of 2.5 eps / steps from a uniform start",
       &build<PGD>},
      {"mifgsm", Norm::Linf, "MI-FGSM (Dong et al. 2018): iterated FGSM with momentum",
       "steps of eps / steps, momentum 1, no random start", &build<MIFGSM>},
      {"apgd-ce", Norm::Linf, "APGD-CE (Croce & Hein 2020): step-size-free PGD with momentum, cross-entropy",
       "step 2 eps halved on stalls, momentum 0.75",
       [](const AttackOptions& o) { return apgd_with(o, AttackLoss::CrossEntropy, "apgd-ce"); }},
      {"apgd-dlr", Norm::Linf, "APGD-DLR (Croce & Hein 2020): APGD on the difference-of-logits-ratio loss",
       "step 2 eps halved on stalls, momentum 0.75",
       [](const AttackOptions& o) { return apgd_with(o, AttackLoss::DLR, "apgd-dlr"); }},
      {"apgd-t", Norm::Linf, "APGD-T (Croce & Hein 2020): targeted DLR toward each top other class in turn",
       "9 target classes; picks its own targets", &apgd_targeted},
      {"fab", Norm::Linf, "FAB (Croce & Hein 2020): minimum-norm steps toward the closest linearised boundary of any class",
       "alpha_max 0.1, eta 1.05, beta 0.9; C - 1 gradients a step; restarts after the first from eps/2", &fab_untargeted},
      {"fab-l2", Norm::L2, "FAB (Croce & Hein 2020), L2",
       "alpha_max 0.1, eta 1.05, beta 0.9; C - 1 gradients a step; restarts after the first from eps/2", &fab_untargeted},
      {"fab-t", Norm::Linf, "FAB-T (Croce & Hein 2020): minimum-norm boundary projections toward each top other class",
       "9 target classes, alpha_max 0.1, eta 1.05, beta 0.9; restarts after the first from eps/2", &fab_targeted},
      {"fab-t-l2", Norm::L2, "FAB-T (Croce & Hein 2020), L2",
       "9 target classes, alpha_max 0.1, eta 1.05, beta 0.9; restarts after the first from eps/2", &fab_targeted},
      {"square", Norm::Linf, "Square (Andriushchenko et al. 2020): score-based black-box, random squares",
       "5000 queries, p_init 0.8, margin loss", &square_attack},
      {"trades-kl", Norm::Linf, "TRADES' inner maximisation (Zhang et al. 2019): ascent on KL(f(x) || f(x'))",
       "steps of 2.5 eps / steps from x + 0.001 N(0,1)", &build<TradesKL>},
  };
  return table;
}

const AttackEntry& attack_entry(const std::string& name) {
  std::string known;
  for (const auto& entry : attack_registry()) {
    if (entry.name == name) return entry;
    known += (known.empty() ? "" : ", ") + entry.name;
  }
  throw ValueError("unknown attack '" + name + "' (known: " + known + ")");
}

const std::vector<std::string>& attack_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const auto& entry : attack_registry()) all.push_back(entry.name);
    return all;
  }();
  return names;
}

std::unique_ptr<Attack> make_attack(const std::string& name, const AttackOptions& options) {
  const AttackEntry& entry = attack_entry(name);
  AttackOptions o = options;
  o.norm = entry.norm;
  return entry.make(o);
}

}  // namespace advgrad
