"""advgrad's model zoo (nn/models.cpp) written in PyTorch, plus the PGD loop the benchmark times.

Each model creates its layers in the same order and with the same shapes as its C++ twin, so the
state_dict keys match advgrad's (weights move both ways through safetensors) and PyTorch's default
initialisation draws its random numbers in a fixed order (the golden fixtures depend on that order).

  small_cnn     Conv(1->16,5x5,pad 2) ReLU MaxPool2 Conv(16->32,5x5,pad 2) ReLU MaxPool2 Flatten
                Linear(1568->100) ReLU Linear(100->10); nn.Sequential, keys 0.*, 3.*, 7.*, 9.*
  madry_cnn     the same with 32/64 channels and Linear(3136->1024) ReLU Linear(1024->10)
  lstm          LSTM(28->128) over the 28 image rows, Linear(128->10) on the last step; keys lstm.*, fc.*
  cifar_resnet  conv3x3(3->16)+BN, BasicBlocks 16/32/64 (stride 1/2/2), global average pool, Linear(64->10)

Used by bench/peer/torch_bench.py, bench/peer/torch_pgd7_loop.py and the golden fixture scripts
(tests/golden/make_nn_fixtures.py, make_attack_fixtures.py). Needs only torch.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def mnist_cnn(c1, c2, hidden):
    """make_mnist_cnn of nn/models.cpp: two 5x5 conv + 2x2 max-pool stages on 28x28, then two linear layers.
    The indices in the comments are the state_dict prefixes."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 5, padding=2),   # 0
        nn.ReLU(),                        # 1
        nn.MaxPool2d(2),                  # 2
        nn.Conv2d(c1, c2, 5, padding=2),  # 3
        nn.ReLU(),                        # 4
        nn.MaxPool2d(2),                  # 5
        nn.Flatten(),                     # 6
        nn.Linear(c2 * 7 * 7, hidden),    # 7
        nn.ReLU(),                        # 8
        nn.Linear(hidden, 10))            # 9


def small_cnn():
    return mnist_cnn(16, 32, 100)


def madry_cnn():
    return mnist_cnn(32, 64, 1024)


class LSTMClassifier(nn.Module):
    """Reads an image as a sequence of `rows` rows of `row_size` pixels; classifies the last hidden state."""

    def __init__(self, rows=28, row_size=28, hidden=128, classes=10):
        super().__init__()
        self.rows, self.row_size = rows, row_size
        self.lstm = nn.LSTM(row_size, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x.reshape(-1, self.rows, self.row_size))
        return self.fc(out[:, -1])


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN with a residual connection; a 1x1 conv+BN shortcut when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class CifarResNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


# name -> (factory, input shape of one sample); the order and names of model_zoo() in nn/models.cpp.
ZOO = {
    "small_cnn": (small_cnn, (1, 28, 28)),
    "madry_cnn": (madry_cnn, (1, 28, 28)),
    "lstm": (LSTMClassifier, (1, 28, 28)),
    "cifar_resnet": (CifarResNet, (3, 32, 32)),
}


def make_model(name):
    """A freshly initialised zoo model (PyTorch's default initialisation from torch's global generator)."""
    if name not in ZOO:
        raise ValueError("unknown model '%s' (known: %s)" % (name, ", ".join(ZOO)))
    return ZOO[name][0]()


def pgd(model, x, y, eps, step, steps, random_start=True):
    """L-inf PGD on the cross-entropy, every sample attacked: the perturbation d starts uniform in
    [-eps, eps] (or at 0), each step moves it by step * sign(grad), clips it to [-eps, eps] and then to
    what keeps x + d in [0, 1]. Returns the adversarial batch, detached. The model's mode is the caller's."""
    d = torch.empty_like(x).uniform_(-eps, eps) if random_start else torch.zeros_like(x)
    d = (x + d).clamp(0, 1) - x
    for _ in range(steps):
        d.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x + d), y), d)
        d = (d.detach() + step * grad.sign()).clamp(-eps, eps)
        d = (x + d).clamp(0, 1) - x
    return (x + d).detach()
