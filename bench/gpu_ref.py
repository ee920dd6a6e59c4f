#!/usr/bin/env python3
"""Python PyTorch side of bench/gpu.bench.ts: the same OLMo training step on the same GPU, at its best
in eager PyTorch (bf16 autocast, fused scaled-dot-product attention, fused AdamW; torch.compile when
asked). The model is test/fixtures/model/reference.py's OLMo forward (the one the parity tests check
olmo-ts against), with its attention switched to F.scaled_dot_product_attention and its RoPE tables
cached on the GPU.

Driven over stdin/stdout, one JSON object per line, so that the benchmark can interleave rounds:
    {"cmd": "ceiling"}                            -> {"tflops": bf16 8192^3 matmul TFLOP/s}
    {"cmd": "init", "model": {...}, "batch": B, "seq": T, "lr": .., "betas": [..], "eps": .., "wd": ..,
     "compile": false, "seed": 0}                 -> {"params": N, "torch": "...", "initS": s}
    {"cmd": "round", "steps": n}                  -> {"seconds": s, "loss": last loss, "peakBytes": max allocated}
    {"cmd": "free"}                               -> {} (drops the model and optimizer)
Everything else it prints goes to stderr.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "model"))
import reference  # noqa: E402

DEV = sys.argv[1] if len(sys.argv) > 1 else "cuda"  # "cpu": rehearsal of the driver (gpu.bench.ts --device=cpu)
_rope_cache = {}


def rope_tables_cached(c, seq_len, hs):
    """reference.rope_tables, computed once per shape on the GPU (reference.py builds them on the CPU per call)."""
    key = (seq_len, hs, c["rope_theta"])
    if key not in _rope_cache:
        dev = torch.device(DEV)
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hs, 2, dtype=torch.float, device=dev) / hs))
        seq = torch.arange(seq_len, dtype=torch.float, device=dev)
        freqs = torch.einsum("i,j->ij", seq, inv_freq)
        pos = torch.cat((freqs, freqs), dim=-1)
        _rope_cache[key] = (pos.sin()[None, None], pos.cos()[None, None])
    return _rope_cache[key]


def sdpa_attend(c, q, k, v, bias):
    """OLMo's causal attention through PyTorch's fused kernel (flash attention for bf16 on Hopper)."""
    rep = c["n_heads"] // k.shape[1]
    if rep > 1:
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    if not hasattr(F, "scaled_dot_product_attention"):  # torch 1.13 (CPU rehearsal only)
        return F._scaled_dot_product_attention(q, k, v, bias, 0.0, False, bias is None)[0]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=bias is None)


reference.attend = sdpa_attend
reference.rope_tables = rope_tables_cached

state = {}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def ceiling():
    n = 8192 if DEV == "cuda" else 256
    a = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync()
    t = time.perf_counter()
    reps = 10
    for _ in range(reps):
        a @ b
    sync()
    s = time.perf_counter() - t
    return {"tflops": 2 * n**3 * reps / s / 1e12}


def init(job):
    t0 = time.perf_counter()
    state.clear()
    if DEV == "cuda":
        torch.cuda.empty_cache()
    torch.manual_seed(job.get("seed", 0))
    c = dict(reference.DEFAULTS)
    c.update({k: v for k, v in job["model"].items() if k in reference.DEFAULTS})
    P = {}
    for name, shape in reference.param_shapes(c):
        p = torch.empty(shape, device=DEV, dtype=torch.float32)
        if name.endswith(".bias"):
            p.zero_()
        elif "norm" in name:
            p.fill_(1.0)
        else:
            p.normal_(0.0, 0.02)
        P[name] = p.requires_grad_(True)
    decay = [p for n, p in P.items() if p.dim() == 2 and "wte" not in n and "wpe" not in n]
    no_decay = [p for n, p in P.items() if not (p.dim() == 2 and "wte" not in n and "wpe" not in n)]
    groups = [g for g in ({"params": decay, "weight_decay": job["wd"]}, {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    fused = {"fused": True} if DEV == "cuda" else {}  # the fused kernel is CUDA's (and torch 1.13 has none on CPU)
    opt = torch.optim.AdamW(groups, lr=job["lr"], betas=tuple(job["betas"]), eps=job["eps"], **fused)
    B, T = job["batch"], job["seq"]
    g = torch.Generator(device=DEV).manual_seed(job.get("seed", 0))
    ids = torch.randint(0, c["vocab_size"], (B, T), device=DEV, generator=g)
    labels = ids[:, 1:].reshape(-1)

    def fwd_loss(P, ids):
        with torch.autocast(DEV, dtype=torch.bfloat16):
            logits = reference.model_fwd(c, P, ids)  # (B, T, V) bf16
        V = logits.shape[-1]
        # OLMo's loss: the logits in float32, cross-entropy against the next token
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, V), labels, ignore_index=-100)

    if job.get("compile"):
        fwd_loss = torch.compile(fwd_loss)
    state.update(c=c, P=P, opt=opt, ids=ids, fwd_loss=fwd_loss)
    return {"params": sum(p.numel() for p in P.values()), "torch": torch.__version__, "initS": time.perf_counter() - t0,
            "device": torch.cuda.get_device_name(0) if DEV == "cuda" else "cpu (rehearsal)"}


def step():
    loss = state["fwd_loss"](state["P"], state["ids"])
    loss.backward()
    state["opt"].step()
    state["opt"].zero_grad(set_to_none=True)
    return loss


def run_round(n):
    if DEV == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t = time.perf_counter()
    loss = None
    for _ in range(n):
        loss = step()
    sync()
    s = time.perf_counter() - t
    return {"seconds": s, "loss": loss.item(), "peakBytes": torch.cuda.max_memory_allocated() if DEV == "cuda" else 0}


def main():
    if DEV == "cuda" and not torch.cuda.is_available():
        reply({"error": "no CUDA device: torch %s sees no GPU" % torch.__version__})
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            if job["cmd"] == "ceiling":
                reply(ceiling())
            elif job["cmd"] == "init":
                reply(init(job))
            elif job["cmd"] == "round":
                reply(run_round(job["steps"]))
            elif job["cmd"] == "free":
                state.clear()
                if DEV == "cuda":
                    torch.cuda.empty_cache()
                reply({})
            elif job["cmd"] == "quit":
                return
        except Exception as e:  # noqa: BLE001 (reported to the driver, which records it)
            reply({"error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
