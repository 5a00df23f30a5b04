"""Writes safetensors files from the fixture scripts with json + struct (the format: an 8-byte little-endian
header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian
bytes back to back), so nothing beyond torch is needed."""
import json
import struct

import torch

FORMATS = {torch.float64: ("F64", "d"), torch.float32: ("F32", "f"), torch.int64: ("I64", "q")}


def write_safetensors(path, tensors, metadata):
    """tensors: {name: torch.Tensor of float64/float32/int64}; metadata {str: str}. Sorted by name."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        code, fmt_char = FORMATS[t.dtype]
        raw = struct.pack("<%d%s" % (t.numel(), fmt_char), *t.flatten().tolist())
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)
