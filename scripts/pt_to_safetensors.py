#!/usr/bin/env python3
"""Convert a PyTorch weights file (torch.save of a state_dict, or of a whole model) to safetensors.

Usage: scripts/pt_to_safetensors.py IN.pt OUT.safetensors [--key state_dict]

Needs only PyTorch (Debian: python3-torch); the safetensors format is written here with json + struct:
an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw
little-endian tensor bytes, packed in name order. advgrad reads F32, F64 and I64, so other floating
tensors become F32 and other integer tensors I64 (BatchNorm's num_batches_tracked is int64 already).
"""
import argparse
import json
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def state_dict_of(obj, key):
    if key:
        if not isinstance(obj, dict) or key not in obj:
            sys.exit(f"error: --key {key}: the file holds no entry of that name")
        obj = obj[key]
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and not any(torch.is_tensor(v) for v in obj.values()):
        obj = obj["state_dict"]  # a training checkpoint {"state_dict": ..., "optimizer": ...}
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        sys.exit("error: the file holds no state_dict (a dict of tensors); name its entry with --key")
    return obj


def as_supported(t):
    t = t.detach().cpu().contiguous()
    if t.dtype in DTYPES:
        return t
    return t.to(torch.float32 if t.is_floating_point() else torch.int64)


def write_safetensors(tensors, path):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = as_supported(tensors[name])
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--key", default="", help="the checkpoint entry holding the state_dict")
    a = ap.parse_args()
    try:
        obj = torch.load(a.input, map_location="cpu", weights_only=False)
    except TypeError:  # PyTorch before weights_only
        obj = torch.load(a.input, map_location="cpu")
    tensors = state_dict_of(obj, a.key)
    write_safetensors(tensors, a.output)
    print(f"wrote {a.output}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
