// Per-op dispatch cost and a small MLP training step: olmo-ts vs Python PyTorch on the same
// libtorch, same thread count, in one run. Prints µs per iteration and the ratio (lower is better
// for olmo-ts; ratio = olmo-ts / PyTorch).  Run: npm run bench  [-- --threads N]
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { F, Tensor, keep, manualSeed, noGrad, randn, setNumThreads, tidy, zeroGrad, zeros } from '../src';

const threads = Number(process.argv.find((a) => a.startsWith('--threads='))?.split('=')[1] ?? 1);
setNumThreads(threads);
manualSeed(0);

function bench(fn: () => void, iters: number, trials = 7): number {
  for (let i = 0; i < iters / 10 + 1; i++) fn();
  const times: number[] = [];
  for (let t = 0; t < trials; t++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e3 / iters);
  }
  return Math.min(...times);
}

const k = <T extends Tensor>(t: T) => keep(t);
const a16 = k(randn(16)), b16 = k(randn(16));
const m1 = k(randn([16, 16])), m2 = k(randn([16, 16]));
const x = k(randn([8, 64])), w = k(randn([64, 64])), bias = k(randn(64));
const params = tidy(() => [randn([256, 64]).mul(0.05), zeros(256), randn([64, 256]).mul(0.05), zeros(64)]).map((p) => k(p.requiresGrad_()));
const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
const xb = k(randn([32, 64])), yb = k(randn([32, 64]));

function mlpStep(): void {
  tidy(() => {
    const out = F.linear(F.linear(xb, w1, b1).silu(), w2, b2);
    const loss = out.sub(yb).square().mean();
    loss.backward();
    noGrad(() => { for (const p of params) p.sub_(p.grad!, 0.05); });
    zeroGrad(params);
  });
}

function runOurs(): Record<string, number> {
  return {
    'add (16 floats)': bench(() => a16.add(b16).dispose(), 20000),
    'matmul (16x16 @ 16x16)': bench(() => m1.matmul(m2).dispose(), 20000),
    'linear+silu (8x64, 64x64)': bench(() => { const h = F.linear(x, w, bias); h.silu().dispose(); h.dispose(); }, 10000),
    'MLP train step (32x64-256-64, fwd+bwd+SGD)': bench(mlpStep, 1000),
  };
}
function runPython(): Record<string, number> {
  const py = spawnSync('/usr/bin/python3', [path.join(__dirname, 'ops_ref.py'), String(threads)], { encoding: 'utf8' });
  if (py.status !== 0) {
    console.error('Python PyTorch reference failed (is python3-torch installed?):\n' + py.stderr);
    process.exit(1);
  }
  return JSON.parse(py.stdout.trim().split('\n').pop()!) as Record<string, number>;
}
// Interleave rounds so both sides see the same background load; keep each side's best.
const best = (acc: Record<string, number>, r: Record<string, number>) => {
  for (const [k, v] of Object.entries(r)) acc[k] = Math.min(acc[k] ?? Infinity, v);
  return acc;
};
const ours: Record<string, number> = {};
const ref: Record<string, number> = {};
for (let round = 0; round < 3; round++) {
  best(ours, runOurs());
  best(ref, runPython());
}

console.log(`olmo-ts vs Python PyTorch — same libtorch, ${threads} thread(s), µs per iteration (best of 3 interleaved rounds x 7 trials)\n`);
console.log(`${'case'.padEnd(46)}${'olmo-ts'.padStart(10)}${'PyTorch'.padStart(10)}${'ratio'.padStart(8)}`);
for (const [name, us] of Object.entries(ours)) {
  const r = ref[name]!;
  console.log(`${name.padEnd(46)}${us.toFixed(2).padStart(10)}${r.toFixed(2).padStart(10)}${(us / r).toFixed(2).padStart(8)}`);
}
console.log('\nratio < 1: olmo-ts is faster');
