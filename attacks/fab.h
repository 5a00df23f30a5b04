// FAB, the fast adaptive boundary attack (Croce & Hein, "Minimally distorted adversarial examples with a
// fast adaptive boundary attack", ICML 2020), L-inf and L2: the untargeted version (FAB, the paper's) and
// the targeted one (FAB-T, as in AutoAttack).
// A minimum-norm attack: each step linearises the decision boundary between the label and another class
// (FAB-T: the target; FAB: the class whose linearised boundary is closest to the iterate),
// projects both the current iterate and the clean point onto that hyperplane inside the [0,1] box, and
// moves to a convex combination of the two projections (biased toward the clean point); once an iterate
// is adversarial it is kept if it is the smallest so far and pulled back toward the clean point. A sample
// counts as fooled only if the smallest adversarial point found lies within eps.
#pragma once
#include "advgrad/attacks/attack.h"

namespace advgrad {

// The minimal-norm step d (L-inf or L2) from each row t of `points` onto the hyperplane
// {z : <w, z> = b} while t + d stays in [0,1]: min ||d|| s.t. <w, t + d> = b, 0 <= t + d <= 1.
// When the box cannot reach the hyperplane, d goes to the box corner nearest to it (the point of the box
// with the largest progress toward it). points, w: float64 [N, D]; b: float64 [N]. Returns float64 [N, D].
// Solved by bisection on the multiplier of the constraint (both norms have a monotone piecewise-linear
// progress function of it), then one exact linear solve on the final piece.
Tensor project_onto_hyperplane_in_box(const Tensor& points, const Tensor& w, const Tensor& b, Norm norm);

// One FAB run (`steps` iterations) on every given sample: the smallest adversarial point found (the clean
// point where none was) and its distance to x in the attack's norm (+inf where none was found).
struct FABRun {
  Tensor x_adv, distance;  // [n, ...] in x's dtype; float64 [n]
};

// FAB-T: for each of the `target_classes` highest other classes (by the clean logits) in turn, on the
// samples not yet fooled, `steps` FAB iterations toward the boundary with that class. Untargeted success
// criterion (misclassified within eps), like APGD-T: it picks its own targets. Restart 0 starts at the
// clean point, each later restart at a random point at distance eps/2 (the authors' choice).
class FABTargeted : public Attack {
 public:
  explicit FABTargeted(AttackOptions options);
  std::string name() const override { return opt_.norm == Norm::L2 ? "fab-t-l2" : "fab-t"; }

  // One FAB run toward `targets` on every given sample.
  using Run = FABRun;
  Run fab(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, bool random_start,
          Generator& gen, AttackResult& counters) const;

 protected:
  void validate(const Tensor& x) const override;
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

// FAB (untargeted, the paper's version): every step projects onto the linearised boundary with the class
// whose boundary is closest to the iterate (|f_j| / ||grad f_j||_dual over all j != label, f_j = z_j - z_label),
// so one step needs the gradients of all C - 1 logit differences (C - 1 gradient samples per sample: the
// batch is replicated once per other class). One run per restart; restart 0 starts at the clean point, later
// ones at a random point at distance eps/2. Success: misclassified within eps.
class FAB : public Attack {
 public:
  explicit FAB(AttackOptions options);
  std::string name() const override { return opt_.norm == Norm::L2 ? "fab-l2" : "fab"; }

 protected:
  void validate(const Tensor& x) const override;
  Tensor attack_once(Module& model, const Tensor& x, const Tensor& labels, const Tensor& targets, Generator& gen,
                     AttackResult& counters) override;
};

}  // namespace advgrad
