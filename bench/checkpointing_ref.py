#!/usr/bin/python3
"""Python PyTorch side of bench/checkpointing.bench.ts: the same OLMo model (test/fixtures/model/
reference.py's forward, torch's fused attention), weights and tokens, with OLMo's activation
checkpointing done the way OLMo does it (torch.utils.checkpoint, use_reentrant=False) for the
strategy in the job; prints one JSON line: losses, step and forward times, baseline RSS, peak RSS.

    /usr/bin/python3 bench/checkpointing_ref.py JOB.json
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures", "model"))
sys.path.insert(0, HERE)
import reference  # noqa: E402
from train_ref import load_safetensors, sdpa_attend  # noqa: E402


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def should_checkpoint_block(strategy, i):
    """OLMo's should_checkpoint_block (v0.3.0, with two_in_three and three_in_four)."""
    return (strategy == "whole_layer" or (strategy == "one_in_two" and i % 2 == 0)
            or (strategy == "one_in_three" and i % 3 == 0) or (strategy == "one_in_four" and i % 4 == 0)
            or (strategy == "two_in_three" and i % 3 != 0) or (strategy == "three_in_four" and i % 4 != 0))


def ck(fn, *args):
    return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=True)


def block_fine_grained(c, P, p, x, bias):
    """OLMo's sequential block under fine_grained: attn_norm, attention, ff_norm and act checkpointed."""
    d = c["d_model"]
    kvd = d // c["n_heads"] * reference.kv_heads(c)
    h = ck(lambda t: reference.norm_fwd(c, t, P, p + ".attn_norm", d), x)
    q, k, v = reference.clip(c, reference.lin_fwd(h, P, p + ".att_proj")).split((d, kvd, kvd), dim=-1)
    x = x + ck(lambda a, b, e: reference.attention_fwd(c, P, p, a, b, e, bias), q, k, v)
    n = ck(lambda t: reference.norm_fwd(c, t, P, p + ".ff_norm", d), x)
    a = ck(lambda t: reference.act_fwd(c, t), reference.lin_fwd(n, P, p + ".ff_proj"))
    return x + reference.lin_fwd(a, P, p + ".ff_out")


def model_fwd(c, P, ids, strategy):
    x = F.embedding(ids, P["transformer.wte.weight"])
    for i in range(c["n_layers"]):
        p = f"transformer.blocks.{i}"
        if strategy == "fine_grained":
            x = block_fine_grained(c, P, p, x, None)
        elif should_checkpoint_block(strategy, i):
            x = ck(lambda t, p=p: reference.block_fwd(c, P, p, t, None), x)
        else:
            x = reference.block_fwd(c, P, p, x, None)
    x = reference.norm_fwd(c, x, P, "transformer.ln_f", c["d_model"])
    return F.linear(x, P["transformer.ff_out.weight"])


def main():
    job = json.load(open(sys.argv[1]))
    torch.set_num_threads(job["threads"])
    c = dict(reference.DEFAULTS)
    c.update({k: v for k, v in job["model"].items() if k in reference.DEFAULTS})
    assert c["block_type"] == "sequential" and not c["weight_tying"] and not c["include_bias"]
    reference.attend = sdpa_attend
    weights = load_safetensors(job["initWeights"])
    P = {name: weights[name].requires_grad_(True) for name, _ in reference.param_shapes(c)}
    del weights
    decay = [t for n, t in P.items() if n.endswith(".weight") and "norm" not in n and "wte" not in n]
    no_decay = [t for n, t in P.items() if not (n.endswith(".weight") and "norm" not in n and "wte" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-5)
    b, T = job["microBatch"], job["seqLen"]
    tokens = torch.from_numpy(np.fromfile(job["tokensFile"], dtype=np.int32).astype(np.int64)).view(-1, b, T)
    amp = job["precision"] == "amp_bf16"
    strategy = None if job["strategy"] == "none" else job["strategy"]
    grad_mb = sum(t.numel() for t in P.values()) * 4 / 2 ** 20
    losses, step_ms, fwd_ms = [], [], []
    baseline = float("nan")
    torch.manual_seed(1)
    for s in range(job["warmup"] + job["steps"]):
        if s == job["warmup"]:
            opt.zero_grad(set_to_none=True)
            baseline = status_mb("VmRSS")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        ids = tokens[s]
        f0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model_fwd(c, P, ids, strategy)
        V = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), ids[:, 1:].reshape(-1), ignore_index=-100)
        del logits
        tf = time.perf_counter() - f0
        loss.backward()
        losses.append(loss.item())
        del loss
        opt.step()
        if s >= job["warmup"]:
            step_ms.append((time.perf_counter() - t0) * 1000)
            fwd_ms.append(tf * 1000)
    print(json.dumps({"side": "pytorch", "losses": losses, "stepMs": step_ms, "forwardMs": fwd_ms,
                      "baselineMb": baseline, "peakMb": status_mb("VmHWM"), "gradMb": grad_mb}))


if __name__ == "__main__":
    main()
