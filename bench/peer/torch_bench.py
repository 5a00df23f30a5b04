"""The PyTorch peer of advgrad-bench: the same 12 workloads on the same models, one JSON line each.

  /usr/bin/python3 bench/peer/torch_bench.py [--threads T] [--iters N] [--batch B]
                                             [--only WORKLOAD|MODEL|MODEL/WORKLOAD] [--cpu-time]

The arguments and the output schema are advgrad-bench's (bench/advgrad_bench.cpp), so bench/compare.py
reads both alike:
  {"impl": "pytorch-<version>", "threads": T, "model": ..., "workload": ..., "batch": B,
   "sec_per_batch": s, "samples_per_s": r}
Workloads (batch B of uniform [0,1] 1x28x28 images, random labels of 10 classes; SGD lr 0.01 momentum 0.9):
  infer         eval mode, forward under no_grad
  train_step    train mode: forward, cross-entropy, backward, SGD step
  pgd10_attack  eval mode: L-inf PGD eps 0.1, step 0.01, 10 steps, random start
  pgd7_at_step  PGD-7 (eps 0.1, step 0.025) in eval mode, then a train step on the adversarial batch
Each runs once to warm up, then --iters times; the mean is reported (wall time, or process CPU time with
--cpu-time). --threads also sizes PyTorch's BLAS pool (pin_threads.py) unless OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS are already set. Needs Debian's python3-torch and libopenblas0-pthread (without it
PyTorch's BLAS is the slow reference one): scripts/setup.sh --peer.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pin_threads import pin_threads  # noqa: E402

MODELS = ["small_cnn", "madry_cnn", "lstm"]
WORKLOADS = ["infer", "train_step", "pgd10_attack", "pgd7_at_step"]


def positive(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %s" % text)
    return n


def selected(only, model, workload):
    return only is None or only in (model, workload, model + "/" + workload)


def parse_args():
    ap = argparse.ArgumentParser(description="the advgrad-bench workloads in PyTorch, as JSON lines")
    ap.add_argument("--threads", type=positive, default=2)
    ap.add_argument("--iters", type=positive, default=5)
    ap.add_argument("--batch", type=positive, default=128)
    ap.add_argument("--only", default=None, help="WORKLOAD, MODEL or MODEL/WORKLOAD")
    ap.add_argument("--cpu-time", action="store_true", help="report process CPU time instead of wall time")
    a = ap.parse_args()
    if a.only is not None and not any(selected(a.only, m, w) for m in MODELS for w in WORKLOADS):
        ap.error("--only %s matches no workload (models: %s; workloads: %s)" %
                 (a.only, ", ".join(MODELS), ", ".join(WORKLOADS)))
    return a


if __name__ == "__main__":  # the arguments first: --threads sizes the BLAS pool, which torch starts on import
    ARGS = parse_args()
    pin_threads(ARGS.threads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_zoo  # noqa: E402


def seconds_per_call(fn, iters, clock):
    fn()  # warm-up: allocator, oneDNN primitive caches, the optimizer's momentum buffers
    t0 = clock()
    for _ in range(iters):
        fn()
    return (clock() - t0) / iters


def workloads(model, x, y):
    """name -> a call running one batch of that workload on `model`."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step(xb):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(xb), y).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)

    def pgd10_attack():
        model.eval()
        torch_zoo.pgd(model, x, y, 0.1, 0.01, 10)

    def pgd7_at_step():
        model.eval()
        train_step(torch_zoo.pgd(model, x, y, 0.1, 0.025, 7))

    return {"infer": infer, "train_step": lambda: train_step(x), "pgd10_attack": pgd10_attack,
            "pgd7_at_step": pgd7_at_step}


def main(a):
    torch.set_num_threads(a.threads)
    clock = time.process_time if a.cpu_time else time.perf_counter
    torch.manual_seed(0)
    x, y = torch.rand(a.batch, 1, 28, 28), torch.randint(0, 10, (a.batch,))
    for name in MODELS:
        todo = [w for w in WORKLOADS if selected(a.only, name, w)]
        if not todo:
            continue  # an unselected model is not even built (peak RSS is measured with --only)
        calls = workloads(torch_zoo.make_model(name), x, y)
        for w in todo:
            s = seconds_per_call(calls[w], a.iters, clock)
            print(json.dumps({"impl": "pytorch-" + torch.__version__, "threads": a.threads, "model": name,
                              "workload": w, "batch": a.batch, "sec_per_batch": round(s, 5),
                              "samples_per_s": round(a.batch / s, 1)}), flush=True)


if __name__ == "__main__":
    main(ARGS)
