#!/usr/bin/python3
"""Python PyTorch side of bench/train.bench.ts: trains the same OLMo model (test/fixtures/model/reference.py's
forward) on the same token instances, batch, precision, optimizer, schedule and threads as olmo-ts's
Trainer, and prints one JSON line with tokens/s, per-step times, losses and peak RSS (VmHWM).

    /usr/bin/python3 bench/train_ref.py JOB.json [--profile]

JOB.json is written by bench/train.bench.ts (see `Job` there). With --profile, each phase (batch to
tensor, forward, loss, backward, clip, optimizer) is timed separately.
"""
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "model"))
import reference  # noqa: E402  (the plain-PyTorch OLMo forward the model parity tests use)


def vm_hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sdpa_attend(c, q, k, v, bias):
    """OLMo's attention for sequential/parallel blocks: torch's fused scaled_dot_product_attention
    (`_scaled_dot_product_attention` on 1.13), causal when there is no bias. olmo-ts calls the same op."""
    rep = c["n_heads"] // k.shape[1]
    if rep > 1:
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=bias is None)
    return F._scaled_dot_product_attention(q, k, v, bias, 0.0, False, bias is None)[0]


def load_safetensors(path):
    """Tensors of a safetensors file (F32 only: the model's fp32 master weights)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data, dtype=np.float32, count=(b - a) // 4, offset=a).copy()).view(e["shape"])
    return out


def main():
    job = json.load(open(sys.argv[1]))
    profile = "--profile" in sys.argv[2:]
    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    c = dict(reference.DEFAULTS)
    c.update({k: v for k, v in job["model"].items() if k in reference.DEFAULTS or k in ("eos_token_id", "pad_token_id")})
    if job.get("attention", "sdpa") == "sdpa" and c["block_type"] != "llama":
        reference.attend = sdpa_attend

    weights = load_safetensors(job["initWeights"])
    P = {name: weights[name].requires_grad_(True) for name, _ in reference.param_shapes(c)}
    del weights
    groups = [{"params": [P[n] for n in job["decayNames"]], "weight_decay": job["weightDecay"]},
              {"params": [P[n] for n in job["noDecayNames"]], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    names = job["decayNames"] + job["noDecayNames"]
    opt = torch.optim.AdamW(groups, lr=job["schedule"][0]["lr"], betas=tuple(job["betas"]), eps=job["eps"])

    tokens = np.fromfile(job["tokenFile"], dtype=np.uint16)
    B, T, micro = job["batchSize"], job["seqLen"], job["microBatchSize"]
    tokens = tokens[: len(tokens) // T * T].reshape(-1, T)
    order = np.fromfile(job["indicesFile"], dtype=np.uint32)
    amp = job["precision"] == "amp_bf16"
    zloss = job["zLoss"]
    n_micro = math.ceil(B / micro)

    times, losses, phases, faults = [], [], {}, {}
    last_flt = [resource.getrusage(resource.RUSAGE_SELF).ru_minflt]

    cur = {"step": 0}

    def mark(name, t0):
        if not profile:
            return t0
        t = time.perf_counter()
        flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if cur["step"] > job["warmup"]:
            phases[name] = phases.get(name, 0.0) + (t - t0)
            faults[name] = faults.get(name, 0) + flt - last_flt[0]
        last_flt[0] = flt
        return t

    total = job["warmup"] + job["steps"]
    t_prev = time.perf_counter()
    for step in range(1, total + 1):
        cur["step"] = step
        t = time.perf_counter()
        batch = torch.from_numpy(tokens[order[(step - 1) * B: step * B]].astype(np.int64))  # (B, T)
        t = mark("data", t)
        for p in P.values():
            p.grad = None
        ce_sum = torch.zeros(())
        z_sum = torch.zeros(()) if zloss else None
        for r0 in range(0, B, micro):
            ids = batch[r0: r0 + micro]  # (b, T)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                logits = reference.model_fwd(c, P, ids)  # (b, T, V)
            t = mark("forward", t)
            # The same ops as olmo-ts's nextTokenLoss (src/train/loss.ts): without z-loss, slice the
            # logits, then cast to float32; with z-loss, cast all of them (z covers every position).
            V = logits.shape[-1]
            labels = ids[:, 1:].reshape(-1)
            if not zloss:
                ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), labels, ignore_index=-100) / n_micro
                loss = ce
            else:
                logits = logits.float()
                ce = F.cross_entropy(logits[:, :-1].contiguous().view(-1, V), labels, ignore_index=-100) / n_micro
                z = logits.logsumexp(-1).pow(2).mean().mul(1e-4) / n_micro
                loss = ce + z
                z_sum = z_sum + z.detach()
            ce_sum = ce_sum + ce.detach()
            t = mark("loss", t)
            loss.backward()
            t = mark("backward", t)
        ce_val = ce_sum.item()
        if z_sum is not None:
            z_sum.item()
        t = mark("loss", t)
        # OLMo's clip_grads_and_collect_metrics (global fixed clipping): per-parameter fp32 grad
        # norms, the total norm, then every grad times the clamped coefficient.
        # OLMo clips with the group's max_grad_norm before this step's scheduler update, i.e. the
        # configured value at step 1 and the previous step's scheduled value after that.
        sched = job["schedule"][step - 1]
        max_norm = job["maxGradNorm"] if step == 1 else job["schedule"][step - 2]["maxGradNorm"]
        norms = torch.stack([torch.linalg.vector_norm(P[n].grad, 2.0, dtype=torch.float32) for n in names])
        total_norm = torch.linalg.vector_norm(norms, 2.0)
        if max_norm is not None:
            coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
            for n in names:
                P[n].grad.detach().mul_(coef)
        norms.tolist()  # the per-parameter metrics OLMo logs (one host sync)
        t = mark("clip", t)
        for g in opt.param_groups:
            g["lr"] = sched["lr"]
        opt.step()
        t = mark("optimizer", t)
        now = time.perf_counter()
        times.append(now - t_prev)
        t_prev = now
        losses.append(ce_val)

    timed = sum(times[job["warmup"]:])
    res = {
        "side": "pytorch",
        "tokensPerSec": job["steps"] * B * T / timed,
        "stepMs": [round(s * 1000, 2) for s in times],
        "losses": losses,
        "peakRssMb": vm_hwm_mb(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if profile:
        res["phasesMs"] = {k: v * 1000 / job["steps"] for k, v in phases.items()}
        res["phaseFaults"] = {k: v / job["steps"] for k, v in faults.items()}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
