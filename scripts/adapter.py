"""The low-rank adapter file (scripts/train_adapter.py writes it; models/adapter/ ships it): read it,
and merge it into fp32 weights as W + B·A·alpha/r. numpy only, so fetch-model.sh needs no torch.

File: safetensors, F32 tensors `<linear>.lora_A` [r, in] and `<linear>.lora_B` [out, r] where
`<linear>` is an HF BertModel Linear (e.g. encoder.layer.3.attention.self.query); metadata `rank`,
`alpha` (strings, as safetensors metadata is)."""
import hashlib
import json
import struct

import numpy as np


class AdapterError(Exception):
    pass


def read_adapter(path):
    """Returns (pairs, meta): pairs maps each adapted Linear to (A, B, scale)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    try:
        rank, alpha = int(meta["rank"]), float(meta["alpha"])
    except (KeyError, ValueError) as e:
        raise AdapterError(f"{path}: metadata needs rank and alpha ({e})")
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise AdapterError(f"{path}: {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).astype(np.float32)
    pairs = {}
    for name in sorted(tensors):
        if name.endswith(".lora_A"):
            base = name[: -len(".lora_A")]
            A, B = tensors[name], tensors.get(base + ".lora_B")
            if B is None or A.shape[0] != rank or B.shape[1] != rank:
                raise AdapterError(f"{path}: {base} has no lora_B of rank {rank}")
            pairs[base] = (A, B, alpha / rank)
    if not pairs:
        raise AdapterError(f"{path}: no lora_A/lora_B pairs")
    meta = dict(meta, sha256=hashlib.sha256(open(path, "rb").read()).hexdigest(), linears=len(pairs))
    return pairs, meta


def merge(weights, pairs):
    """W + scale·B·A for every adapted Linear, in place on a {hf_name: fp32 array} dict."""
    for base, (A, B, scale) in pairs.items():
        name = base + ".weight"
        if name not in weights:
            raise AdapterError(f"the adapter names {base}, which the model does not have")
        W = weights[name]
        if W.shape != (B.shape[0], A.shape[1]):
            raise AdapterError(f"{base}: weight {W.shape}, adapter {B.shape[0]}x{A.shape[1]}")
        weights[name] = (W.astype(np.float64) + scale * (B.astype(np.float64) @ A.astype(np.float64))).astype(np.float32)
    return weights
