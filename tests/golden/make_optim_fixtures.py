#!/usr/bin/python3
"""Golden fixtures for tests/test_optim.cpp: PyTorch's optimizers and LR schedulers, run in float64.

Regenerate (needs Debian's python3-torch; the files are committed, so the C++ tests never need Python):

    /usr/bin/python3 tests/golden/make_optim_fixtures.py

Writes, under tests/data/golden/:
  optim_<config>.safetensors  one per optimizer configuration. Tensors (float64):
      init.<i>            parameter i before the first step (i = 0: [3,4], i = 1: [5])
      grad.<s>.<i>        the gradient of parameter i at step s (s = 1..3); absent = no gradient that step
      after.<s>.<i>       parameter i after step s
      state.<i>.<name>    PyTorch's optimizer state after step 3 ("momentum_buffer", "exp_avg", "exp_avg_sq",
                          "step"), named as advgrad's Optimizer::state() names it
    Metadata: "optimizer" (SGD, Adam, AdamW) and its hyper-parameters, each a Python float repr (which
    round-trips exactly through strtod) or "true"/"false".
  optim_schedules.safetensors  for each schedule <name>: <name>.lr (and <name>.momentum for OneCycle),
    the value in effect for optimizer steps 0..N-1, i.e. read before the k-th scheduler.step() call.
    Metadata: <name>.<hyper-parameter> as above.

The files are written with json + struct in the safetensors layout (8-byte little-endian header length,
JSON header with dtype/shape/data_offsets per tensor and a "__metadata__" map of strings, then the raw
little-endian bytes), so nothing beyond torch is needed.
"""
import json
import os
import struct
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

# SequentialLR itself calls scheduler.step(0) at a milestone, which triggers PyTorch's deprecation warning.
warnings.filterwarnings("ignore", message="The epoch parameter")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "data", "golden")


def fmt(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(fmt(v) for v in value)
    return repr(value)


# ---------------------------------------------------------------------------------------------------------
# Optimizers: two parameters, three steps with fixed gradients (no model needed).

SHAPES = [(3, 4), (5,)]
OPTIMIZER_CONFIGS = {
    # name: (torch class, keyword arguments, {step: parameter indices without a gradient at that step})
    "sgd": (torch.optim.SGD, dict(lr=0.1), {}),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01), {1: [1]}),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02), {}),
    "adam": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), {2: [1]}),
    "adam_wd": (torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), {}),
    "adamw": (torch.optim.AdamW, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), {3: [0]}),
}


def make_optimizer_fixture(name, cls, kwargs, skips, seed):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in SHAPES]
    out = {"init.%d" % i: p.detach().clone() for i, p in enumerate(params)}
    opt = cls(params, **kwargs)
    for s in (1, 2, 3):
        for i, p in enumerate(params):
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if i in skips.get(s, []):
                p.grad = None  # PyTorch skips a parameter without a gradient (no state change at all)
            else:
                p.grad = g
                out["grad.%d.%d" % (s, i)] = g.clone()
        opt.step()
        for i, p in enumerate(params):
            out["after.%d.%d" % (s, i)] = p.detach().clone()
    for i, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            if value is not None:
                out["state.%d.%s" % (i, key)] = torch.as_tensor(value, dtype=torch.float64).clone()
    meta = {"optimizer": cls.__name__}
    for key, value in kwargs.items():
        if key == "betas":
            meta["beta1"], meta["beta2"] = fmt(value[0]), fmt(value[1])
        else:
            meta[key] = fmt(value)
    write_safetensors(os.path.join(OUT_DIR, "optim_%s.safetensors" % name), out, meta)


# ---------------------------------------------------------------------------------------------------------
# Schedules: the LR (and momentum) the optimizer uses at steps 0..N-1.

def record(opt, sched, n, momentum=False):
    lrs, moms = [], []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        if momentum:
            moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    return lrs, moms


def fresh_sgd(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)


def make_schedule_fixtures():
    S = torch.optim.lr_scheduler
    out, meta = {}, {}

    def put(name, lrs, moms=None, **hyper):
        out[name + ".lr"] = torch.tensor(lrs, dtype=torch.float64)
        if moms:
            out[name + ".momentum"] = torch.tensor(moms, dtype=torch.float64)
        for key, value in hyper.items():
            meta[name + "." + key] = fmt(value)

    opt = fresh_sgd(0.1)
    put("step_lr", record(opt, S.StepLR(opt, step_size=3, gamma=0.5), 12)[0], base=0.1, step_size=3, gamma=0.5)

    # A repeated milestone applies gamma twice (PyTorch keeps milestones in a Counter).
    opt = fresh_sgd(0.1)
    put("multistep_lr", record(opt, S.MultiStepLR(opt, milestones=[2, 5, 5, 9], gamma=0.5), 12)[0],
        base=0.1, milestones=[2, 5, 5, 9], gamma=0.5)

    # 12 steps with T_max = 10: past T_max the cosine rises again, as in PyTorch.
    opt = fresh_sgd(0.1)
    put("cosine", record(opt, S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001), 12)[0],
        base=0.1, T_max=10, eta_min=0.001)

    onecycles = {
        # pct_start * total = 3.6: the phase boundary falls between steps, the peak LR is never hit exactly.
        "onecycle_cos": dict(max_lr=0.1, total_steps=12),
        # pct_start * total = 5: step 4 is the peak (end of warm-up phase).
        "onecycle_linear": dict(max_lr=0.2, total_steps=20, pct_start=0.25, anneal_strategy="linear"),
        "onecycle_three_phase": dict(max_lr=0.5, total_steps=20, pct_start=0.3, div_factor=10.0,
                                     final_div_factor=100.0, three_phase=True, base_momentum=0.8,
                                     max_momentum=0.9),
    }
    for name, kw in onecycles.items():
        opt = fresh_sgd(0.1)
        lrs, moms = record(opt, S.OneCycleLR(opt, **kw), kw["total_steps"], momentum=True)
        full = dict(pct_start=0.3, anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4, three_phase=False,
                    base_momentum=0.85, max_momentum=0.95)
        full.update(kw)
        put(name, lrs, moms, **full)

    # Warm-up alone: LinearLR with end_factor 1 over a constant LR.
    opt = fresh_sgd(0.1)
    put("linear_warmup", record(opt, S.LinearLR(opt, start_factor=0.25, total_iters=5), 12)[0],
        base=0.1, start_factor=0.25, warmup=5)

    # Warm-up, then cosine restarted at the milestone (SequentialLR).
    opt = fresh_sgd(0.1)
    warm = S.LinearLR(opt, start_factor=0.1, total_iters=4)
    cos = S.CosineAnnealingLR(opt, T_max=8, eta_min=0.0)
    put("warmup_cosine", record(opt, S.SequentialLR(opt, [warm, cos], milestones=[4]), 12)[0],
        base=0.1, start_factor=0.1, warmup=4, T_max=8, eta_min=0.0)

    write_safetensors(os.path.join(OUT_DIR, "optim_schedules.safetensors"), out, meta)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    for seed, (name, (cls, kwargs, skips)) in enumerate(sorted(OPTIMIZER_CONFIGS.items())):
        make_optimizer_fixture(name, cls, kwargs, skips, seed=100 + seed)
    make_schedule_fixtures()
    print("wrote optim fixtures (torch %s) to %s" % (torch.__version__, os.path.normpath(OUT_DIR)), file=sys.stderr)


if __name__ == "__main__":
    main()
