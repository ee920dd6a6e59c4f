#!/usr/bin/python3
"""Python PyTorch side of bench/ops.bench.ts: the same ops, sizes, threads and iteration counts.
Prints one JSON object {case: microseconds per iteration (best of trials; the minimum is the
estimate least disturbed by other load on the machine)}."""
import json
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)


def bench(fn, iters, trials=7):
    for _ in range(iters // 10 + 1):
        fn()
    times = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters * 1e6)
    return min(times)


a16, b16 = torch.randn(16), torch.randn(16)
m1, m2 = torch.randn(16, 16), torch.randn(16, 16)
x, w, bias = torch.randn(8, 64), torch.randn(64, 64), torch.randn(64)
w1 = (torch.randn(256, 64) * 0.05).requires_grad_()
b1 = torch.zeros(256, requires_grad=True)
w2 = (torch.randn(64, 256) * 0.05).requires_grad_()
b2 = torch.zeros(64, requires_grad=True)
params = [w1, b1, w2, b2]
xb, yb = torch.randn(32, 64), torch.randn(32, 64)


def mlp_step():
    out = F.linear(F.silu(F.linear(xb, w1, b1)), w2, b2)
    loss = (out - yb).square().mean()
    loss.backward()
    with torch.no_grad():
        for p in params:
            p.sub_(p.grad, alpha=0.05)
    for p in params:
        p.grad = None


res = {
    "add (16 floats)": bench(lambda: a16.add(b16), 20000),
    "matmul (16x16 @ 16x16)": bench(lambda: m1.matmul(m2), 20000),
    "linear+silu (8x64, 64x64)": bench(lambda: F.silu(F.linear(x, w, bias)), 10000),
    "MLP train step (32x64-256-64, fwd+bwd+SGD)": bench(mlp_step, 1000),
}
print(json.dumps(res))
