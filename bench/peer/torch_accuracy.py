"""The training recipes of docs/RESULTS.md in PyTorch: train a zoo model on Fashion-MNIST, naturally or
adversarially, then measure clean, FGSM and PGD-20 accuracy on the test set.

  /usr/bin/python3 bench/peer/torch_accuracy.py --model small_cnn --method pgd --steps 7 --eps 0.1 \\
      --epochs 10 --lr 0.05 [--data /usr/share/datasets/fashion-mnist] [--threads 2] [--seed 0] [--limit N]

The options are `advgrad train`'s, with its defaults: SGD momentum 0.9, weight decay 5e-4, batch 128,
one-cycle LR (cosine, peak --lr after 40% of the steps, torch's OneCycleLR); training attacks in eval mode,
PGD with step 2.5*eps/steps and a random start, FGSM-RS with a random start and step 1.25*eps. Evaluation
as advgrad's summary.json: FGSM (step eps, no random start) and PGD-20 (step 2.5*eps/20, random start).
Prints one JSON line per epoch and a last one with clean_acc, fgsm_acc, pgd20_acc (percent) and seconds.
--limit N uses the first N training and test images (a quick check of the script, not a reference).
"""
import argparse
import gzip
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pin_threads import pin_threads  # noqa: E402

METHODS = ["natural", "fgsm-rs", "pgd"]


def parse_args():
    ap = argparse.ArgumentParser(description="a training recipe of docs/RESULTS.md in PyTorch")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", default="small_cnn", choices=["small_cnn", "madry_cnn", "lstm"])
    ap.add_argument("--method", default="pgd", choices=METHODS)
    ap.add_argument("--steps", type=int, default=7, help="PGD steps of training (--method pgd)")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.05, help="one-cycle peak learning rate")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training and test images")
    a = ap.parse_args()
    for name in ("steps", "epochs", "batch", "threads"):
        if getattr(a, name) < 1:
            ap.error("--%s must be at least 1, got %d" % (name, getattr(a, name)))
    if not 0 < a.eps <= 1 or a.lr <= 0 or a.limit < 0:
        ap.error("--eps must be in (0, 1], --lr above 0 and --limit 0 or more")
    return a


if __name__ == "__main__":  # the arguments first: --threads sizes the BLAS pool, which torch starts on import
    ARGS = parse_args()
    pin_threads(ARGS.threads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_zoo  # noqa: E402


def read_idx(path):
    """An IDX file (gzip'd) as a uint8 tensor: magic 0x0000 0x08 ndim, ndim big-endian sizes, then bytes."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise SystemExit("error: --data: %s is not a uint8 IDX file" % path)
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


def load_split(data, prefix):
    for kind in ("images-idx3", "labels-idx1"):
        path = os.path.join(data, "%s-%s-ubyte.gz" % (prefix, kind))
        if not os.path.isfile(path):
            raise SystemExit("error: --data %s: no %s (Debian's dataset-fashion-mnist installs it in "
                             "/usr/share/datasets/fashion-mnist)" % (data, os.path.basename(path)))
    images = read_idx(os.path.join(data, prefix + "-images-idx3-ubyte.gz")).unsqueeze(1).float() / 255
    labels = read_idx(os.path.join(data, prefix + "-labels-idx1-ubyte.gz")).long()
    return images, labels


def adversarial_batch(model, x, y, a):
    if a.method == "natural":
        return x
    model.eval()
    if a.method == "fgsm-rs":
        return torch_zoo.pgd(model, x, y, a.eps, 1.25 * a.eps, 1, random_start=True)
    return torch_zoo.pgd(model, x, y, a.eps, 2.5 * a.eps / a.steps, a.steps, random_start=True)


def accuracy(model, images, labels, attack=None, batch=500):
    """Percent of samples classified correctly, after `attack(x, y)` when given; eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        x, y = images[i:i + batch], labels[i:i + batch]
        if attack is not None:
            x = attack(x, y)
        with torch.no_grad():
            correct += (model(x).argmax(1) == y).sum().item()
    return 100.0 * correct / len(images)


def main(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_x, train_y = load_split(a.data, "train")
    test_x, test_y = load_split(a.data, "t10k")
    if a.limit:
        train_x, train_y, test_x, test_y = train_x[:a.limit], train_y[:a.limit], test_x[:a.limit], test_y[:a.limit]

    model = torch_zoo.make_model(a.model)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    batches = (len(train_x) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * batches, pct_start=0.4)
    start = time.time()
    for epoch in range(1, a.epochs + 1):
        order = torch.randperm(len(train_x))
        loss_sum = 0.0
        for i in range(0, len(train_x), a.batch):
            idx = order[i:i + a.batch]
            x, y = train_x[idx], train_y[idx]
            xa = adversarial_batch(model, x, y, a)
            model.train()
            loss = F.cross_entropy(model(xa), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
        print(json.dumps({"epoch": epoch, "train_loss": round(loss_sum / len(train_x), 4),
                          "seconds": round(time.time() - start, 1)}), flush=True)
    train_seconds = time.time() - start
    eps = a.eps
    summary = {"model": a.model, "method": a.method, "steps": a.steps if a.method == "pgd" else None, "eps": eps,
               "epochs": a.epochs, "lr": a.lr, "seed": a.seed, "test_samples": len(test_x),
               "clean_acc": accuracy(model, test_x, test_y),
               "fgsm_acc": accuracy(model, test_x, test_y,
                                    lambda x, y: torch_zoo.pgd(model, x, y, eps, eps, 1, random_start=False)),
               "pgd20_acc": accuracy(model, test_x, test_y,
                                     lambda x, y: torch_zoo.pgd(model, x, y, eps, 2.5 * eps / 20, 20)),
               "train_seconds": round(train_seconds, 1), "seconds": round(time.time() - start, 1),
               "torch": torch.__version__}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(ARGS)
