#!/usr/bin/python3
"""Golden fixtures for tests/test_nn_golden.cpp: nn layers, losses and the model zoo, computed by PyTorch.

Regenerate (needs Debian's python3-torch; the files are committed, so the C++ tests never need Python):

    /usr/bin/python3 tests/golden/make_nn_fixtures.py [--out DIR]   # default DIR: tests/data/golden

The output is deterministic: every case seeds torch with a fixed number derived from its name
(torch.manual_seed), so adding or reordering cases changes no other file. The zoo models are the
project's PyTorch twins of nn/models.cpp, bench/peer/torch_zoo.py (imported through sys.path).

Writes tests/data/golden/nn_<case>.safetensors. Layer and loss cases are float64 (I64 for labels, indices
and num_batches_tracked). Every float value stored as an input, parameter or R below is representable in
float32, so the float64 reference is the exact answer for the float32 tensors advgrad computes with, and
its error is advgrad's float32 arithmetic alone. Tensors:
  param.<key>         every state_dict entry of the module (parameters and buffers) before the forward
  input / input.<k>   the input(s)
  target (losses)     labels (I64) or the target tensor; target_class for targeted DLR
  output / output.<k> the result (RNNs: output, output.h, output.c)
  grad_output[.<k>]   a fixed random tensor R shaped like each output
  grad.input[.<k>]    d sum_k sum(output_k * R_k) / d input (absent for integer inputs); mse_loss also
                      stores grad.target
  grad.param.<key>    the same derivative for every parameter
  after.param.<key>   stateful layers (BatchNorm in training): every state_dict entry after the forward
Metadata (strings): "kind" (layer, loss, zoo), "layer"/"loss"/"model" and the configuration (integers in
decimal, floats as Python reprs which round-trip through strtod, booleans true/false, pairs "h,w").

Zoo cases (nn_zoo_<model>.safetensors) are float32 as PyTorch saves them: param.<key> is the state_dict of
a PyTorch-initialised model, input a batch of 4, output the float32 logits PyTorch computes, and
output_f64 the logits of the same float32 weights and input evaluated in float64 (a tighter reference).
cifar_resnet has random non-trivial BatchNorm statistics and is evaluated in eval mode; output.train is
its logits in training mode (batch statistics) on the same batch.

The files are written with json + struct in the safetensors layout (8-byte little-endian header length,
JSON header with dtype/shape/data_offsets per tensor and a "__metadata__" map of strings, padded with
spaces to a multiple of 8, then the raw little-endian bytes back to back), so nothing beyond torch is needed.
"""
import argparse
import copy
import json
import os
import struct
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "data", "golden")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peer"))

from safetensors_io import write_safetensors  # noqa: E402 (shared with the other fixture scripts)
import torch_zoo  # noqa: E402 (the zoo models, also used by the PyTorch benchmark)


def fmt(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(fmt(v) for v in value)
    return repr(value)


def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode("utf-8")))


def f32_exact(t):
    """t (float64) rounded to the nearest float32 value, kept in float64."""
    return t.detach().float().double()


def randn(*shape):
    return f32_exact(torch.randn(tuple(shape), dtype=torch.float64))


def uniform(lo, hi, *shape):
    return f32_exact(torch.empty(tuple(shape), dtype=torch.float64).uniform_(lo, hi))


def round_module(module):
    """Rounds every floating state_dict entry of a float64 module to float32-representable values."""
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.copy_(f32_exact(t))


def save(name, meta, tensors):
    path = os.path.join(OUT_DIR, "nn_%s.safetensors" % name)
    write_safetensors(path, tensors, {k: fmt(v) for k, v in meta.items()})
    return path


def state_entries(prefix, module):
    return {prefix + k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------------------------
# Layers: one input x, one output y; grads of sum(y * R).

def layer_case(name, meta, module, x, train=True, stateful=False, prepare=None):
    seed_for(name)
    module = module.double()
    # Re-draw the parameters from this case's seed so that each file depends on its name only.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.empty_like(p).uniform_(-0.5, 0.5))
    if prepare is not None:
        prepare(module)
    round_module(module)
    module.train(train)
    out = state_entries("param.", module)
    x = x()
    if x.is_floating_point():
        x = f32_exact(x).requires_grad_()
    y = module(x)
    R = randn(*y.shape)
    (y * R).sum().backward()
    out.update(input=x.detach(), output=y.detach(), grad_output=R)
    if x.is_floating_point():
        out["grad.input"] = x.grad.detach()
    for k, p in module.named_parameters():
        out["grad.param." + k] = p.grad.detach()
    if stateful:
        out.update(state_entries("after.param.", module))
    meta = dict(kind="layer", train=train, **meta)
    return save(name, meta, out)


def bn_prepare(module):
    """Non-trivial affine parameters and running statistics."""
    c = module.num_features
    with torch.no_grad():
        module.weight.copy_(1.0 + 0.3 * torch.randn(c, dtype=torch.float64))
        module.bias.copy_(0.3 * torch.randn(c, dtype=torch.float64))
        module.running_mean.copy_(0.5 * torch.randn(c, dtype=torch.float64))
        module.running_var.copy_(torch.empty(c, dtype=torch.float64).uniform_(0.5, 2.0))
        module.num_batches_tracked.fill_(7)


def make_grouped_conv_and_pool_option_fixtures():
    """Grouped and depthwise convolution, and the pooling options torch.onnx.export writes (issue 14)."""
    files = []

    def conv(name, out_channels, groups, kernel, stride, padding, dilation, bias, shape):
        cfg = dict(in_channels=shape[1], out_channels=out_channels, kernel=kernel, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, bias=bias)
        m = nn.Conv2d(shape[1], out_channels, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
        files.append(layer_case(name, dict(layer="Conv2d", **cfg), m,
                                lambda: torch.randn(*shape, dtype=torch.float64)))

    conv("conv2d_groups", 6, 2, (3, 3), (2, 1), (1, 1), (1, 2), True, (2, 4, 7, 8))
    conv("conv2d_depthwise", 6, 6, (3, 3), (1, 1), (1, 1), (1, 1), True, (2, 6, 7, 6))  # unit stride, "same"
    conv("conv2d_depthwise_x2", 6, 3, (3, 2), (2, 2), (1, 0), (2, 1), False, (2, 3, 9, 8))  # 2 outputs per channel

    def maxpool(name, kernel, stride, padding, dilation, ceil_mode, shape):
        m = nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        cfg = dict(layer="MaxPool2d", kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                   ceil_mode=ceil_mode)
        files.append(layer_case(name, cfg, m, lambda: torch.randn(*shape, dtype=torch.float64)))

    def avgpool(name, kernel, stride, padding, ceil_mode, count_include_pad, shape):
        m = nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)
        cfg = dict(layer="AvgPool2d", kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                   count_include_pad=count_include_pad)
        files.append(layer_case(name, cfg, m, lambda: torch.randn(*shape, dtype=torch.float64)))

    # Heights/widths chosen so that ceil_mode adds a last, partial window (7 and 9 with 2x2/2; 8 and 6 with
    # 3x3/2 pad 1, whose last window overhangs the padded input).
    maxpool("maxpool2d_ceil", (2, 2), (2, 2), (0, 0), (1, 1), True, (2, 2, 7, 9))
    maxpool("maxpool2d_ceil_dilation", (3, 3), (2, 2), (1, 1), (2, 2), True, (2, 3, 8, 9))
    maxpool("maxpool2d_dilation", (2, 3), (1, 2), (1, 1), (2, 1), False, (2, 2, 7, 8))
    avgpool("avgpool2d_ceil", (3, 3), (2, 2), (1, 1), True, True, (2, 2, 8, 6))
    avgpool("avgpool2d_ceil_nopad", (3, 3), (2, 2), (1, 1), True, False, (2, 2, 8, 6))
    avgpool("avgpool2d_nopad", (2, 3), (3, 2), (1, 1), False, False, (2, 2, 7, 6))
    return files


def make_layer_fixtures():
    files = []
    L = layer_case
    files.append(L("linear_bias", dict(layer="Linear", in_features=5, out_features=4, bias=True),
                   nn.Linear(5, 4, bias=True), lambda: torch.randn(2, 3, 5, dtype=torch.float64)))
    files.append(L("linear_nobias", dict(layer="Linear", in_features=5, out_features=4, bias=False),
                   nn.Linear(5, 4, bias=False), lambda: torch.randn(2, 3, 5, dtype=torch.float64)))

    def conv(name, kernel, stride, padding, dilation, bias, shape):
        cfg = dict(in_channels=shape[1], out_channels=4, kernel=kernel, stride=stride, padding=padding,
                   dilation=dilation, bias=bias)
        m = nn.Conv2d(shape[1], 4, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
        files.append(L(name, dict(layer="Conv2d", **cfg), m, lambda: torch.randn(*shape, dtype=torch.float64)))

    conv("conv2d_bias", (3, 2), (2, 2), (1, 1), (2, 2), True, (2, 3, 9, 8))
    conv("conv2d_nobias", (2, 3), (2, 1), (1, 2), (2, 1), False, (2, 3, 8, 7))

    def pool(name, layer, cls, kernel, stride, padding, shape):
        m = cls(kernel, stride=stride, padding=padding)
        files.append(L(name, dict(layer=layer, kernel=kernel, stride=stride, padding=padding), m,
                       lambda: torch.randn(*shape, dtype=torch.float64)))

    pool("maxpool2d", "MaxPool2d", nn.MaxPool2d, (3, 3), (2, 2), (1, 1), (2, 3, 7, 8))
    pool("maxpool2d_rect", "MaxPool2d", nn.MaxPool2d, (3, 2), (1, 3), (1, 0), (2, 2, 6, 7))
    pool("avgpool2d", "AvgPool2d", nn.AvgPool2d, (3, 3), (2, 2), (1, 1), (2, 3, 7, 8))
    pool("avgpool2d_rect", "AvgPool2d", nn.AvgPool2d, (2, 3), (3, 2), (1, 1), (2, 2, 7, 6))
    files.extend(make_grouped_conv_and_pool_option_fixtures())
    files.append(L("adaptive_avgpool2d", dict(layer="AdaptiveAvgPool2d"), nn.AdaptiveAvgPool2d(1),
                   lambda: torch.randn(2, 3, 5, 4, dtype=torch.float64)))

    bn_shapes = {"batchnorm1d_2d": (nn.BatchNorm1d, (6, 4)), "batchnorm1d_3d": (nn.BatchNorm1d, (3, 4, 5)),
                 "batchnorm2d": (nn.BatchNorm2d, (2, 3, 4, 5))}
    for base, (cls, shape) in bn_shapes.items():
        for train in (True, False):
            # One configuration with non-default eps and momentum.
            eps, momentum = (1e-3, 0.3) if base == "batchnorm2d" else (1e-5, 0.1)
            m = cls(shape[1], eps=eps, momentum=momentum)
            cfg = dict(layer="BatchNorm2d" if cls is nn.BatchNorm2d else "BatchNorm1d", num_features=shape[1],
                       eps=eps, momentum=momentum)
            files.append(L("%s_%s" % (base, "train" if train else "eval"), cfg, m,
                           (lambda s: lambda: 1.5 * torch.randn(*s, dtype=torch.float64) + 0.7)(shape),
                           train=train, stateful=True, prepare=bn_prepare))

    files.append(L("dropout_p0", dict(layer="Dropout", p=0.0), nn.Dropout(0.0),
                   lambda: torch.randn(3, 4, dtype=torch.float64), train=True))
    files.append(L("dropout_eval", dict(layer="Dropout", p=0.5), nn.Dropout(0.5),
                   lambda: torch.randn(3, 4, dtype=torch.float64), train=False))
    files.append(L("relu", dict(layer="ReLU"), nn.ReLU(), lambda: torch.randn(3, 5, dtype=torch.float64)))
    files.append(L("leaky_relu", dict(layer="LeakyReLU", negative_slope=0.2), nn.LeakyReLU(0.2),
                   lambda: torch.randn(3, 5, dtype=torch.float64)))
    files.append(L("tanh", dict(layer="Tanh"), nn.Tanh(), lambda: 2 * torch.randn(3, 5, dtype=torch.float64)))
    files.append(L("sigmoid", dict(layer="Sigmoid"), nn.Sigmoid(), lambda: 2 * torch.randn(3, 5, dtype=torch.float64)))
    files.append(L("flatten", dict(layer="Flatten"), nn.Flatten(), lambda: torch.randn(2, 3, 2, 4, dtype=torch.float64)))

    def embedding_prepare(m):
        with torch.no_grad():
            m.weight.copy_(torch.randn_like(m.weight))  # N(0, 1), PyTorch's own initialisation

    # Repeated indices: their gradient rows add up.
    files.append(L("embedding", dict(layer="Embedding", num_embeddings=7, embedding_dim=3), nn.Embedding(7, 3),
                   lambda: torch.tensor([[1, 4, 4, 0, 6], [2, 4, 1, 1, 3]], dtype=torch.int64),
                   prepare=embedding_prepare))
    return files


# ---------------------------------------------------------------------------------------------------------
# Recurrent layers: output [N,T,H], h_n (and c_n) [layers,N,H]; loss sum(out*R) + sum(h_n*Rh) (+ sum(c_n*Rc)).

def recurrent_case(name, cls, initial_state=False):
    seed_for(name)
    I, H, layers, N, T = 3, 4, 2, 2, 5
    m = cls(I, H, num_layers=layers, batch_first=True).double()
    round_module(m)
    out = state_entries("param.", m)
    x = randn(N, T, I).requires_grad_()
    inputs = {"input": x}
    lstm = cls is nn.LSTM
    if initial_state:
        h0 = randn(layers, N, H).requires_grad_()
        inputs["input.h0"] = h0
        if lstm:
            c0 = randn(layers, N, H).requires_grad_()
            inputs["input.c0"] = c0
            y, (h, c) = m(x, (h0, c0))
        else:
            y, h = m(x, h0)
    elif lstm:
        y, (h, c) = m(x)
    else:
        y, h = m(x)
    outputs = {"output": y, "output.h": h}
    if lstm:
        outputs["output.c"] = c
    loss = 0
    for k, v in outputs.items():
        R = randn(*v.shape)
        out["grad_output" + k[len("output"):]] = R
        out[k] = v.detach()
        loss = loss + (v * R).sum()
    loss.backward()
    for k, v in inputs.items():
        out[k] = v.detach()
        out["grad." + k] = v.grad.detach()
    for k, p in m.named_parameters():
        out["grad.param." + k] = p.grad.detach()
    meta = dict(kind="layer", layer=cls.__name__, input_size=I, hidden_size=H, num_layers=layers, batch_first=True,
                train=True, initial_state=initial_state)
    return save(name, meta, out)


def make_recurrent_fixtures():
    return [recurrent_case("rnn", nn.RNN), recurrent_case("lstm", nn.LSTM), recurrent_case("gru", nn.GRU),
            recurrent_case("lstm_initial_state", nn.LSTM, initial_state=True),
            recurrent_case("gru_initial_state", nn.GRU, initial_state=True)]


# ---------------------------------------------------------------------------------------------------------
# Losses: logits [N, C] (and targets); grads of sum(loss * R).

N_LOSS, C_LOSS = 6, 5


def logits_and_labels():
    z = randn(N_LOSS, C_LOSS) * 2
    y = torch.randint(0, C_LOSS, (N_LOSS,))
    # Half of the samples are classified correctly (label = argmax), so both branches of the margin losses
    # (best other class = top-1 or top-2) are covered.
    y[::2] = z[::2].argmax(1)
    return f32_exact(z), y


def reduce(v, reduction):
    return v.mean() if reduction == "mean" else v.sum() if reduction == "sum" else v


def best_other(z, y):
    mask = F.one_hot(y, z.shape[1]).bool()
    return z.masked_fill(mask, float("-inf")).max(1).values


def cw_formula(z, y, reduction):
    # max_{j != y} z_j - z_y
    return reduce(best_other(z, y) - z.gather(1, y[:, None])[:, 0], reduction)


def dlr_formula(z, y, reduction):
    # -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12), z_pi sorted in decreasing order
    zs = z.sort(1, descending=True).values
    zy = z.gather(1, y[:, None])[:, 0]
    return reduce(-(zy - best_other(z, y)) / (zs[:, 0] - zs[:, 2] + 1e-12), reduction)


def dlr_targeted_formula(z, y, t, reduction):
    # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
    zs = z.sort(1, descending=True).values
    zy = z.gather(1, y[:, None])[:, 0]
    zt = z.gather(1, t[:, None])[:, 0]
    return reduce(-(zy - zt) / (zs[:, 0] - (zs[:, 2] + zs[:, 3]) / 2 + 1e-12), reduction)


def loss_case(name, meta, fn, inputs, extra):
    """fn(**inputs, **extra) -> loss; inputs are differentiated, extra (labels) are not."""
    seed_for(name + ".R")
    inputs = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    y = fn(**inputs, **extra)
    R = randn(*y.shape)
    (y * R).sum().backward()
    out = dict(output=y.detach(), grad_output=R)
    for k, v in inputs.items():
        key = k if k in ("input", "target") else "input." + k  # mse_loss differentiates its target too
        out[key] = v.detach()
        out["grad." + key] = v.grad.detach()
    for k, v in extra.items():
        out[k] = v
    return save(name, dict(kind="loss", **meta), out)


def make_loss_fixtures():
    files = []
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.1):
            name = "ce_%s%s" % (reduction, "_ls" if smoothing else "")
            seed_for(name)
            z, y = logits_and_labels()
            files.append(loss_case(name, dict(loss="cross_entropy", reduction=reduction, label_smoothing=smoothing),
                                   lambda input, target, r=reduction, s=smoothing:
                                   F.cross_entropy(input, target, reduction=r, label_smoothing=s),
                                   dict(input=z), dict(target=y)))
        name = "nll_" + reduction
        seed_for(name)
        z, y = logits_and_labels()
        files.append(loss_case(name, dict(loss="nll_loss", reduction=reduction),
                               lambda input, target, r=reduction: F.nll_loss(input, target, reduction=r),
                               dict(input=f32_exact(F.log_softmax(z, 1))), dict(target=y)))
        name = "mse_" + reduction
        seed_for(name)
        files.append(loss_case(name, dict(loss="mse_loss", reduction=reduction),
                               lambda input, target, r=reduction: F.mse_loss(input, target, reduction=r),
                               dict(input=randn(3, 4), target=randn(3, 4)), {}))
        name = "cw_" + reduction
        seed_for(name)
        z, y = logits_and_labels()
        files.append(loss_case(name, dict(loss="cw_margin", reduction=reduction),
                               lambda input, target, r=reduction: cw_formula(input, target, r),
                               dict(input=z), dict(target=y)))
        name = "dlr_" + reduction
        seed_for(name)
        z, y = logits_and_labels()
        files.append(loss_case(name, dict(loss="dlr", reduction=reduction),
                               lambda input, target, r=reduction: dlr_formula(input, target, r),
                               dict(input=z), dict(target=y)))
        name = "dlr_targeted_" + reduction
        seed_for(name)
        z, y = logits_and_labels()
        t = (y + torch.randint(1, C_LOSS, (N_LOSS,))) % C_LOSS  # a target class != label
        files.append(loss_case(name, dict(loss="dlr_targeted", reduction=reduction),
                               lambda input, target, target_class, r=reduction:
                               dlr_targeted_formula(input, target, target_class, r),
                               dict(input=z), dict(target=y, target_class=t)))

    # TRADES: KL(softmax(model(x_nat)) || softmax(model(x_adv))) with batchmean; the gradient flows into both
    # the adversarial logits (input.adv) and the clean logits (input.nat), as in TRADES' training loss.
    name = "kl_div_trades"
    seed_for(name)
    za, zn = randn(N_LOSS, C_LOSS) * 2, randn(N_LOSS, C_LOSS) * 2
    files.append(loss_case(name, dict(loss="kl_div", reduction="batchmean", composition="log_softmax(adv), softmax(nat)"),
                           lambda adv, nat: F.kl_div(F.log_softmax(adv, 1), F.softmax(nat, 1), reduction="batchmean"),
                           dict(adv=za, nat=zn), {}))
    return files


# ---------------------------------------------------------------------------------------------------------
# Model zoo (float32, as PyTorch saves a model).

def zoo_case(name, make, input_shape, prepare=None):
    seed_for("zoo_" + name)
    model = make()
    if prepare is not None:
        prepare(model)
    model.eval()
    x = torch.rand(4, *input_shape)
    with torch.no_grad():
        logits = model(x)
        logits64 = copy.deepcopy(model).double()(x.double())
    out = state_entries("param.", model)
    out.update(input=x, output=logits, output_f64=logits64)
    if name == "cifar_resnet":
        train_model = copy.deepcopy(model).train()
        with torch.no_grad():
            out["output.train"] = train_model(x)
    meta = dict(kind="zoo", model=name, batch=4, torch_version=torch.__version__)
    return save("zoo_" + name, meta, out)


def resnet_prepare(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1.0 + 0.2 * torch.randn(c))
                m.bias.copy_(0.1 * torch.randn(c))
                m.running_mean.copy_(0.2 * torch.randn(c))
                m.running_var.copy_(torch.empty(c).uniform_(0.5, 1.5))
                m.num_batches_tracked.fill_(100)


def make_zoo_fixtures():
    return [zoo_case(name, make, shape, prepare=resnet_prepare if name == "cifar_resnet" else None)
            for name, (make, shape) in torch_zoo.ZOO.items()]


def main():
    global OUT_DIR
    ap = argparse.ArgumentParser(description="writes the nn golden fixtures")
    ap.add_argument("--out", default=OUT_DIR, help="output directory (default: tests/data/golden)")
    OUT_DIR = ap.parse_args().out
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_num_threads(1)
    files = make_layer_fixtures() + make_recurrent_fixtures() + make_loss_fixtures() + make_zoo_fixtures()
    total = sum(os.path.getsize(f) for f in files)
    print("wrote %d nn fixtures, %d bytes (torch %s) to %s" % (len(files), total, torch.__version__,
                                                              os.path.normpath(OUT_DIR)), file=sys.stderr)


if __name__ == "__main__":
    main()
