#!/usr/bin/env python3
"""References for test/cuda/model-parity.test.ts: for every fixture of test/fixtures/model (weights
and inputs written by reference.py), this machine's PyTorch recomputes reference.py's OLMo forward on
DEVICE: float32 logits, loss and parameter gradients. Writes OUT_DIR/<case>.safetensors with logits,
loss and grad.<name>. (No bf16 autocast references: reference.py does not follow OLMo's autocast
rules inside its norms; bf16 is covered by the fused-head test and the GPU benchmark.)

    python3 test/cuda/model_ref.py OUT_DIR [DEVICE]        (DEVICE: cuda (default) or cpu)

TF32 is off: float32 matmuls in full precision, as libtorch's default is for the addon.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "model")
sys.path.insert(0, FIXTURES)
import reference  # noqa: E402  (the plain-PyTorch OLMo forward of the CPU parity tests)

NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BOOL": np.bool_}


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=NP[e["dtype"]]).reshape(e["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out, meta


def run(c, P, ids, mask, docs):
    logits = reference.model_fwd(c, P, ids, mask, docs)
    labels = ids[:, 1:].clone()
    if mask is not None:
        labels[mask[:, 1:] == 0] = -100
    V = logits.shape[-1]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    return logits, loss


def main():
    out_dir = sys.argv[1]
    device = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("model_ref.py: torch %s sees no CUDA device" % torch.__version__)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if device != "cpu":
        torch.set_default_device(device)  # reference.py's causal/ALiBi/RoPE tables are made without a device
    os.makedirs(out_dir, exist_ok=True)
    for f in sorted(os.listdir(FIXTURES)):
        if not f.endswith(".safetensors"):
            continue
        t, meta = load(os.path.join(FIXTURES, f))
        c = reference.full_config(json.loads(meta["config"]))
        P = {k[6:]: v.float().to(device).requires_grad_(True) for k, v in t.items() if k.startswith("param.")}
        ids = t["input_ids"].to(device)
        mask = t["attention_mask"].to(device) if "attention_mask" in t else None
        docs = t["attention_bias"].to(device) if "attention_bias" in t else None
        logits, loss = run(c, P, ids, mask, docs)
        loss.backward()
        out = {"logits": logits.detach().cpu(), "loss": loss.detach().cpu().reshape(())}
        for n, p in P.items():
            out["grad." + n] = p.grad.detach().cpu()
        reference.save_safetensors(os.path.join(out_dir, f), out, {"device": device, "torch": torch.__version__})
        print("%s: loss %.6f" % (f, loss.item()))


if __name__ == "__main__":
    main()
