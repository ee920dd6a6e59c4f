# The Python side of bench/dist.bench.ts: torch.distributed all-reduce on Gloo between ranks started
# by the driver (same environment variables), timed the way dist-rank.ts times olmo-ts's.
import json, os, sys, time
import torch
import torch.distributed as dist

def main():
    job = json.loads(sys.argv[1])
    out = sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    res = {}
    for mb in job["sizesMb"]:
        t = torch.zeros(round(mb * 1024 * 1024 / 4))
        dist.all_reduce(t)
        ms = []
        for _ in range(job["iters"]):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            ms.append((time.perf_counter() - t0) * 1000)
        ms.sort()
        res[str(mb)] = ms[len(ms) // 2]
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(res, f)
    dist.destroy_process_group()

main()
