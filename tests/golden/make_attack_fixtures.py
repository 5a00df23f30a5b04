#!/usr/bin/python3
"""Golden fixture for tests/test_attacks_golden.cpp: PGD computed by PyTorch's reference loop.

Regenerate (needs Debian's python3-torch; the file is committed, the C++ test needs no Python):

    /usr/bin/python3 tests/golden/make_attack_fixtures.py [--out DIR]   # default DIR: tests/data/golden

The attack is the `pgd` function of the PyTorch benchmark (bench/peer/torch_zoo.py, imported) without
random start: eps 0.01, step 0.001, 10 steps, on small_cnn with PyTorch's default
initialisation (torch.manual_seed(0)) and a batch of 32 uniform images. Labels are the model's own clean
predictions, so every sample is attacked (advgrad, like AutoAttack, skips misclassified samples).
Writes tests/data/golden/attack_pgd_small_cnn.safetensors: param.<key> (float32 state_dict), x, y (I64),
x_adv, and metadata eps/step/steps/robust_acc.
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


def main():
    ap = argparse.ArgumentParser(description="writes the PGD golden fixture")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "data", "golden"),
                    help="output directory (default: tests/data/golden)")
    out_dir = ap.parse_args().out
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch_zoo.small_cnn().eval()
    # Sharpen the random model (x2 on every weight) so that logits depend on the input, like a trained model's.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    x = torch.rand(32, 1, 28, 28)
    with torch.no_grad():
        y = model(x).argmax(1)
    eps, step, steps = 0.01, 0.001, 10
    x_adv = torch_zoo.pgd(model, x, y, eps, step, steps, random_start=False)
    with torch.no_grad():
        robust = (model(x_adv).argmax(1) == y).float().mean().item()
    tensors = {"param." + k: v for k, v in model.state_dict().items()}
    tensors.update({"x": x, "y": y, "x_adv": x_adv})
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "attack_pgd_small_cnn.safetensors")
    write_safetensors(out, tensors, {"eps": repr(eps), "step": repr(step), "steps": str(steps),
                                     "robust_acc": repr(robust), "torch": torch.__version__})
    print("wrote %s (robust accuracy %.4f)" % (os.path.normpath(out), robust), file=sys.stderr)


if __name__ == "__main__":
    main()
