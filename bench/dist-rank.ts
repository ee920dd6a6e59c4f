// One rank of bench/dist.bench.ts (started with torchrun's environment): either times all-reduces
// of several sizes, or trains a config for a fixed number of steps through the real Trainer and
// times each step. Rank 0 writes the result as JSON to the file given last.
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadTrainConfig } from '../src/config';
import { ProcessGroup } from '../src/dist/process-group';
import { zeros } from '../src/tensor/creation';
import { setNumThreads } from '../src/tensor/runtime';
import { Trainer } from '../src/train/trainer';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function allreduce(sizesMb: number[], iters: number): Promise<Record<string, number>> {
  const pg = await ProcessGroup.init();
  const out: Record<string, number> = {};
  for (const mb of sizesMb) {
    const t = zeros([Math.round((mb * 1024 * 1024) / 4)]);
    await pg.allReduce(t).wait(); // warm-up (connection buffers)
    const ms: number[] = [];
    for (let i = 0; i < iters; i++) {
      await pg.barrier();
      const t0 = performance.now();
      await pg.allReduce(t).wait();
      ms.push(performance.now() - t0);
    }
    out[String(mb)] = median(ms);
    t.dispose();
  }
  pg.close();
  return out;
}

async function train(job: { config: string; overrides: string[]; warmup: number; steps: number; overlap: boolean; prefetch: boolean; threads: number }): Promise<Record<string, number>> {
  const cfg = loadTrainConfig(job.config, job.overrides);
  setNumThreads(job.threads);
  const trainer = new Trainer(cfg, { console: false, autoResume: false, numThreads: job.threads, overlapGradReduce: job.overlap, fsdpForwardPrefetch: job.prefetch });
  const times: number[] = [];
  let last = 0;
  trainer.on('step', (step: number) => {
    const now = performance.now();
    if (step > job.warmup) times.push(now - last);
    last = now;
  });
  await trainer.fit();
  const params = trainer.model.numParams();
  trainer.close();
  return { stepMs: median(times), params, gradBytes: params * 4 };
}

async function main(): Promise<void> {
  const [mode, arg, out] = process.argv.slice(2) as [string, string, string];
  const job = JSON.parse(arg);
  const result = mode === 'allreduce' ? await allreduce(job.sizesMb, job.iters) : await train(job);
  if (Number(process.env.RANK ?? 0) === 0) fs.writeFileSync(out, JSON.stringify(result));
  process.exit(0);
}
void main();
