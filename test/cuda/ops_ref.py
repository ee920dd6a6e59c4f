#!/usr/bin/env python3
"""References for test/cuda/ops.test.ts: every case of test/fixtures/ops/ops.json recomputed by this
machine's PyTorch on DEVICE (the GPU the test runs on), from the inputs and upstream gradients stored
there, with the functions of gen_ops.py's CASES. Writes OUT_JSON in ops.json's format.

    python3 test/cuda/ops_ref.py OUT_JSON [DEVICE]        (DEVICE: cuda (default) or cpu)

TF32 is off: float32 matmuls in full precision, as libtorch's default is for the addon.
"""
import importlib.util
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "fixtures", "ops", "gen_ops.py")
FIXTURE = os.path.join(HERE, "..", "fixtures", "ops", "ops.json")


def load_gen_ops():
    spec = importlib.util.spec_from_file_location("gen_ops", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sdpa(q, k, v, mask=None, causal=False):
    """softmax(q k^T / sqrt(hs) + mask) v, written out (the definition, on q's device)."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    if mask is not None:
        s = s + mask
    return s.softmax(-1) @ v


def dec(e, device):
    if e["dtype"] == "bool":
        return torch.tensor(e["data"], dtype=torch.bool, device=device).view(e["shape"])
    if e["dtype"] == "int64":
        return torch.tensor(e["data"], dtype=torch.int64, device=device).view(e["shape"])
    return torch.tensor(e["data"], dtype=torch.float32, device=device).view(e["shape"])


def main():
    out_path = sys.argv[1]
    device = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("ops_ref.py: torch %s sees no CUDA device" % torch.__version__)
    if hasattr(torch.backends, "cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    gen = load_gen_ops()
    gen.sdpa = sdpa  # the CASES lambdas look `sdpa` up in gen_ops' globals when called
    fixture = json.load(open(FIXTURE))
    out = {"torch": torch.__version__, "device": device, "cases": {}}
    for name, case in fixture["cases"].items():
        fn = gen.CASES[name][1]
        inputs = [dec(e, device) for e in case["inputs"]]
        for t in inputs:
            if t.is_floating_point():
                t.requires_grad_(True)
        if fn == "autocast":
            with torch.autocast(device, dtype=torch.bfloat16):
                res = F.linear(inputs[0], inputs[1])
        else:
            res = fn(*inputs)
        outs = res if isinstance(res, list) else [res]
        rec = {"inputs": case["inputs"], "outputs": [gen.enc(o) for o in outs]}
        float_outs = [o for o in outs if o.is_floating_point() and o.requires_grad]
        if float_outs and "upstream" in case:
            ups = [dec(u, device) for u in case["upstream"]]
            total = sum((o.float() * u).sum() for o, u in zip(float_outs, ups))
            total.backward()
            rec["upstream"] = case["upstream"]
            rec["grads"] = [gen.enc(t.grad) if t.grad is not None else None for t in inputs]
        out["cases"][name] = rec
    with open(out_path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("ops_ref.py: %d cases on %s, torch %s" % (len(out["cases"]), device, torch.__version__))


if __name__ == "__main__":
    main()
