#!/usr/bin/python3
"""Golden fixtures for tests/test_attacks_golden.cpp: FAB-T and FAB (Croce & Hein, ICML 2020) written in PyTorch.

Regenerate (needs Debian's python3-torch; the file is committed, the C++ test needs no Python):

    /usr/bin/python3 tests/golden/make_fab_fixtures.py [--out DIR]   # default DIR: tests/data/golden

The model and batch are those of make_attack_fixtures.py (small_cnn of bench/peer/torch_zoo.py,
torch.manual_seed(0), every weight x2, 32 uniform images labelled by the model's own predictions).
FAB-T, L-inf: for each of the `targets` highest other classes, `steps` iterations of the paper's step
(projections of the iterate and of the clean point onto the linearised boundary with the target inside
[0,1], combined with alpha = min(a1 / (a1 + a2), alpha_max), overshoot eta, pull-back beta after an
adversarial iterate), first restart from the clean point. The projection is computed here independently
of advgrad: by sorting each row's breakpoints and walking the piecewise-linear progress function.
Writes tests/data/golden/attack_fab_small_cnn.safetensors: x_adv, distance (float64, +inf where no
adversarial point was found), fooled (I64: misclassified within eps), and metadata.
The untargeted FAB (each step toward the class whose linearised boundary is closest, |f_j| / ||grad f_j||_1,
one autograd gradient per class) writes attack_fab_untargeted_small_cnn.safetensors, the same fields.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peer"))
from safetensors_io import write_safetensors  # noqa: E402
import torch_zoo  # noqa: E402


def project_linf(t, w, b):
    """min ||d||_inf s.t. <w, t + d> = b, 0 <= t + d <= 1, per row (float64); the nearest corner if unreachable.

    With the sign chosen so that the step must raise <w, d>, coordinate i moves by min(lam, room_i) in the
    direction of w_i; progress(lam) = sum_i |w_i| min(lam, room_i) is piecewise linear with breakpoints at
    the rooms. Sort them, find the piece where progress reaches c, and solve it there.
    """
    c = b - (w * t).sum(1)
    s = torch.where(c < 0, -1.0, 1.0).to(t.dtype)
    w, c = w * s[:, None], c * s
    moves = w != 0
    room = torch.where(w > 0, 1 - t, t) * moves
    weight = w.abs()
    lam = torch.empty_like(c)
    for i in range(t.shape[0]):
        r, a = room[i][moves[i]], weight[i][moves[i]]
        order = torch.argsort(r)
        r, a = r[order], a[order]
        # progress at the k-th breakpoint: sum_{j<k} a_j r_j + r_k * sum_{j>=k} a_j
        below = torch.cat([torch.zeros(1, dtype=t.dtype), torch.cumsum(a * r, 0)[:-1]])
        above = torch.flip(torch.cumsum(torch.flip(a, [0]), 0), [0])
        at_break = below + r * above
        k = int(torch.searchsorted(at_break, c[i:i + 1]).item()) if len(r) else 0
        if len(r) == 0 or k >= len(r):
            lam[i] = r[-1] if len(r) else 0.0  # unreachable: everything at its bound
        else:
            lam[i] = (c[i] - below[k]) / above[k]
    d = torch.minimum(lam[:, None].expand_as(room), room) * moves
    return torch.sign(w) * d


def fab_steps(model, xs, ys, x0s, steps, boundary, alpha_max, eta, beta):
    """`steps` FAB iterations from the clean points x0s (float64 [m, D]); boundary(x1) gives the linearised
    hyperplane (w [m, D], b [m]) at the iterate. Returns the closest adversarial points and their distances."""
    m = x0s.shape[0]
    x1 = x0s.clone()
    best, best_d = x0s.clone(), torch.full((m,), float("inf"), dtype=torch.float64)
    for _ in range(steps):
        w, b = boundary(x1)
        with torch.no_grad():
            d = project_linf(torch.cat([x1, x0s]), torch.cat([w, w]), torch.cat([b, b]))
            d1, d2 = d[:m], d[m:]
            a1 = d1.abs().amax(1).clamp_min(1e-8)
            a2 = d2.abs().amax(1).clamp_min(1e-8)
            alpha = torch.clamp(a1 / (a1 + a2), max=alpha_max)[:, None]
            x1 = ((x1 + eta * d1) * (1 - alpha) + (x0s + eta * d2) * alpha).clamp(0, 1).float().double()
            adv = model(x1.float().reshape(xs.shape)).argmax(1) != ys
            dist = (x1 - x0s).abs().amax(1)
            closer = adv & (dist < best_d)
            best[closer], best_d[closer] = x1[closer], dist[closer]
            x1 = torch.where(adv[:, None], (x0s + (x1 - x0s) * beta).float().double(), x1)
    return best, best_d


def fab_targeted(model, x, y, eps, steps, targets, alpha_max=0.1, eta=1.05, beta=0.9):
    n = x.shape[0]
    x0 = x.reshape(n, -1).double()
    with torch.no_grad():
        ranked = model(x).sort(dim=1, descending=True)[1]  # no ties in float logits here
    out = x.clone()
    done = torch.zeros(n, dtype=torch.bool)
    distances = torch.full((n,), float("inf"), dtype=torch.float64)
    for r in range(1, targets + 1):
        idx = (~done).nonzero().flatten()
        if len(idx) == 0:
            break
        xs, ys, ts, x0s = x[idx], y[idx], ranked[idx, r], x0[idx]
        m = len(idx)

        def toward_target(x1):
            z = x1.float().reshape(xs.shape).requires_grad_()
            logits = model(z)
            f = logits.gather(1, ts[:, None])[:, 0] - logits.gather(1, ys[:, None])[:, 0]
            (g,) = torch.autograd.grad(f.sum(), z)
            w = g.reshape(m, -1).double()
            return w, (w * x1).sum(1) - f.detach().double()

        best, best_d = fab_steps(model, xs, ys, x0s, steps, toward_target, alpha_max, eta, beta)
        found = best_d <= eps
        out[idx[found]] = best[found].float().reshape(-1, *x.shape[1:])
        distances[idx[found]] = best_d[found]
        done[idx[found]] = True
    return out, distances, done


def fab_untargeted(model, x, y, eps, steps, alpha_max=0.1, eta=1.05, beta=0.9):
    """The paper's FAB: each step aims at the class whose linearised boundary is closest,
    |f_j| / ||grad f_j||_1 over j != y (f_j = z_j - z_y); one gradient per class, by autograd per class."""
    n = x.shape[0]
    x0 = x.reshape(n, -1).double()
    rows = torch.arange(n)

    def closest(x1):
        z = x1.float().reshape(x.shape).requires_grad_()
        logits = model(z)
        classes = logits.shape[1]
        fs, gs = [], []
        for j in range(classes):
            f = logits[:, j] - logits.gather(1, y[:, None])[:, 0]
            (g,) = torch.autograd.grad(f.sum(), z, retain_graph=j + 1 < classes)
            fs.append(f.detach().double())
            gs.append(g.reshape(n, -1).double())
        F, G = torch.stack(fs, 1), torch.stack(gs, 1)  # [n, C], [n, C, D]
        dist = F.abs() / (1e-12 + G.abs().sum(2))
        dist[rows, y] = float("inf")
        j = dist.argmin(1)
        w, f = G[rows, j], F[rows, j]
        return w, (w * x1).sum(1) - f

    best, best_d = fab_steps(model, x, y, x0, steps, closest, alpha_max, eta, beta)
    found = best_d <= eps
    out = x.clone()
    out[found] = best[found].float().reshape(-1, *x.shape[1:])
    distances = torch.where(found, best_d, torch.full_like(best_d, float("inf")))
    return out, distances, found


def main():
    ap = argparse.ArgumentParser(description="writes the FAB-T golden fixture")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "data", "golden"),
                    help="output directory (default: tests/data/golden)")
    out_dir = ap.parse_args().out
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch_zoo.small_cnn().eval()
    with torch.no_grad():  # as make_attack_fixtures.py: the same model and batch
        for p in model.parameters():
            p.mul_(2.0)
    x = torch.rand(32, 1, 28, 28)
    with torch.no_grad():
        y = model(x).argmax(1)
    eps, steps, targets = 0.01, 20, 3
    x_adv, distance, fooled = fab_targeted(model, x, y, eps, steps, targets)
    with torch.no_grad():
        assert ((model(x_adv).argmax(1) != y) == fooled).all()
    robust = 1.0 - fooled.double().mean().item()
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "attack_fab_small_cnn.safetensors")
    write_safetensors(out, {"x_adv": x_adv, "distance": distance, "fooled": fooled.long()},
                      {"eps": repr(eps), "steps": str(steps), "targets": str(targets),
                       "robust_acc": repr(robust), "torch": torch.__version__})
    print("wrote %s (robust accuracy %.4f)" % (os.path.normpath(out), robust), file=sys.stderr)

    # The untargeted FAB on the same model and batch, at a larger eps (it aims at one boundary per step).
    eps_u = 0.02
    x_adv, distance, fooled = fab_untargeted(model, x, y, eps_u, steps)
    with torch.no_grad():
        assert ((model(x_adv).argmax(1) != y) == fooled).all()
    robust = 1.0 - fooled.double().mean().item()
    out = os.path.join(out_dir, "attack_fab_untargeted_small_cnn.safetensors")
    write_safetensors(out, {"x_adv": x_adv, "distance": distance, "fooled": fooled.long()},
                      {"eps": repr(eps_u), "steps": str(steps), "robust_acc": repr(robust), "torch": torch.__version__})
    print("wrote %s (robust accuracy %.4f)" % (os.path.normpath(out), robust), file=sys.stderr)


if __name__ == "__main__":
    main()
