"""The PyTorch side of the peak-memory comparison: a loop of madry_cnn pgd7_at_step, exactly as the peer
(../shared/peer/torch_ref.py) times it, built from the peer's own model and attack definitions.

  /usr/bin/python3 bench/torch_pgd7_loop.py [--threads 2] [--iters 10]

bench/compare.py runs it as a child process and reads its peak RSS from the kernel (wait4).
"""
import argparse, os, sys
import torch, torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'peer'))
import torch_ref  # noqa: E402  (the peer's madry_cnn and pgd, imported, not copied)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    m = torch_ref.madry_cnn()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    for _ in range(a.iters + 1):  # the peer's pgd_at_step: PGD-7 in eval mode, then a train step
        m.eval()
        xa = torch_ref.pgd(m, x, y, 0.1, 0.025, 7)
        m.train()
        opt.zero_grad()
        F.cross_entropy(m(xa), y).backward()
        opt.step()


if __name__ == '__main__':
    main()
