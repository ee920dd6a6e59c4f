#!/usr/bin/python3
"""Python side of bench/head.bench.ts: PyTorch's LM head + loss for one micro-batch, as OLMo (and
bench/train_ref.py) computes it under CPU bf16 autocast: logits = hidden @ W^T, float32 cast,
cross-entropy (ignore -100) + z-loss, backward to hidden and W. Prints JSON {shape: median ms}.

    /usr/bin/python3 bench/head_ref.py THREADS REPS NxC[,NxC...] [VOCAB]
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def main():
    threads, reps, shapes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    vocab = int(sys.argv[4]) if len(sys.argv) > 4 else 50304
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    for shape in shapes:
        n, c = (int(v) for v in shape.split("x"))
        h = torch.randn(n, c, requires_grad=True)
        w = (torch.randn(vocab, c) * 0.02).requires_grad_()
        t = torch.randint(0, vocab, (n,))
        times = []
        for i in range(reps + 2):
            h.grad = None
            w.grad = None
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = F.linear(h, w)
            lf = logits.float()
            loss = F.cross_entropy(lf, t, ignore_index=-100) + 1e-4 * lf.logsumexp(-1).pow(2).mean()
            loss.backward()
            del logits, lf, loss
            if i >= 2:
                times.append(time.perf_counter() - t0)
        times.sort()
        out[shape] = times[len(times) // 2] * 1000
    print(json.dumps(out))


if __name__ == "__main__":
    main()
