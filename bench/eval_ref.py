#!/usr/bin/python3
"""Python PyTorch side of bench/eval.bench.ts: the same OLMo model (test/fixtures/model/reference.py's
forward, torch's fused attention) and weights on the same instances, precision and threads, timing
(a) OLMo's eval forward — no_grad, per-instance cross-entropy as Trainer.eval_batch computes it —
and (b) the training forward (autograd recording, mean cross-entropy, no backward). Prints one JSON
line with tokens/s of each and the mean eval loss.

    /usr/bin/python3 bench/eval_ref.py JOB.json
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_ref  # noqa: E402  (sdpa attention and the safetensors reader the training benchmark uses)
from train_ref import reference  # noqa: E402


def main():
    job = json.load(open(sys.argv[1]))
    torch.set_num_threads(job["threads"])
    c = dict(reference.DEFAULTS)
    c.update({k: v for k, v in job["model"].items() if k in reference.DEFAULTS or k in ("eos_token_id", "pad_token_id")})
    if c["block_type"] != "llama":
        reference.attend = train_ref.sdpa_attend
    weights = train_ref.load_safetensors(os.path.join(job["initDir"], "model.safetensors"))
    P = {name: weights[name].requires_grad_(True) for name, _ in reference.param_shapes(c)}
    K, B, T = job["batches"], job["batchSize"], job["seqLen"]
    ids = torch.from_numpy(np.fromfile(job["idsFile"], dtype=np.int32).astype(np.int64)).view(K, B, T)
    amp = job["precision"] == "amp_bf16"
    tokens = K * B * T
    losses = []

    def eval_forward():
        losses.clear()
        with torch.no_grad():
            for k in range(K):
                x = ids[k]
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    logits = reference.model_fwd(c, P, x)  # (B, T, V)
                V = logits.shape[-1]
                ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), x[:, 1:].reshape(-1), reduction="none")
                losses.extend(ce.view(B, T - 1).mean(dim=-1).tolist())

    def train_forward():
        for k in range(K):
            x = ids[k]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                logits = reference.model_fwd(c, P, x)
            V = logits.shape[-1]
            F.cross_entropy(logits[:, :-1].float().reshape(-1, V), x[:, 1:].reshape(-1)).item()

    best = {}
    for rnd in range(3):  # the first round warms up and is dropped
        for name, fn in (("forward", eval_forward), ("trainForward", train_forward)):
            t0 = time.perf_counter()
            fn()
            v = tokens / (time.perf_counter() - t0)
            if rnd > 0:
                best[name] = max(best.get(name, 0.0), v)
    print(json.dumps({"side": "pytorch", "tokensPerSec": best, "meanLoss": float(np.mean(losses)), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
