// The LM head + loss of one micro-batch alone: olmo-ts's fused op, olmo-ts's unfused path
// (logits, then nextTokenLoss) and PyTorch's (bench/head_ref.py, the ops train_ref.py runs; with glibc as
// shipped and tuned as bench:train's py-tuned side), next to
// the three bf16 matmuls no implementation avoids (logits, d hidden, d W) and a bf16 matmul
// ceiling measured in the same run: where the head's time goes, and how close it can get.
//
//   npm run bench:head [-- --shapes=1024x128,2048x384,2048x512 --vocab=50304 --threads=T --reps=R]
//
// Shapes are tokens x d_model of one micro-batch: tiny-cpu (8 x 128 tokens, d 128), small-cpu
// (8 x 256, d 384) and the d512 shape of bench:train (4 x 512, d 512). Medians of R repetitions.
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { autocast } from '../src/tensor/autograd';
import { randint, randn } from '../src/tensor/creation';
import { headLoss, linear } from '../src/tensor/functional';
import { manualSeed } from '../src/tensor/random';
import { setNumThreads } from '../src/tensor/runtime';
import { keep, tidy } from '../src/tensor/scope';
import { nextTokenLoss } from '../src/train/loss';

function arg(name: string, dflt: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median ms of fn over reps runs after 2 warm-ups. */
function time(fn: () => void, reps: number): number {
  const ts: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    const t = performance.now();
    tidy(fn);
    if (i >= 2) ts.push(performance.now() - t);
  }
  return median(ts);
}

function main(): void {
  const shapes = arg('shapes', '1024x128,2048x384,2048x512').split(',');
  const V = Number(arg('vocab', '50304'));
  const threads = Number(arg('threads', String(os.cpus().length)));
  const reps = Number(arg('reps', '7'));
  setNumThreads(threads);
  manualSeed(0);
  // PyTorch twice: glibc as shipped, and tuned as bench:train's py-tuned side (freed memory stays in the heap).
  const runPy = (env: NodeJS.ProcessEnv) => {
    const py = spawnSync('/usr/bin/python3', [path.join(__dirname, 'head_ref.py'), String(threads), String(reps), shapes.join(','), String(V)], { encoding: 'utf8', env });
    if (py.status !== 0) throw new Error(`head_ref.py failed: ${py.stderr}`);
    return JSON.parse(py.stdout) as Record<string, number>;
  };
  const stock = { ...process.env };
  for (const k of Object.keys(stock)) if (k.startsWith('MALLOC_')) delete stock[k];
  const pyMs = runPy(stock);
  const pyTunedMs = runPy({ ...stock, MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: String(64 * 2 ** 30) });
  const ceilingMs = (() => {
    const a = keep(randn([2048, 2048]).to('bfloat16'));
    const ms = time(() => { a.matmul(a).select(0, 0).select(0, 0).item(); }, reps);
    a.dispose();
    return ms;
  })();
  const ceiling = (2 * 2048 ** 3) / ceilingMs / 1e6; // GFLOP/s
  console.log(`bf16 matmul ceiling (2048^3, ${threads} threads): ${ceiling.toFixed(0)} GFLOP/s; vocab ${V}; ms per micro-batch (fwd + bwd), median of ${reps}`);
  console.log(`${'tokens x d'.padEnd(12)}${'3 matmuls'.padStart(16)}${'fused'.padStart(16)}${'unfused'.padStart(16)}${'PyTorch'.padStart(16)}${'PyTorch tuned'.padStart(16)}${'py/fused'.padStart(10)}${'tuned/fused'.padStart(12)}   matmuls fwd / d hidden / d W (% ceil)`);
  for (const shape of shapes) {
    const [N, C] = shape.split('x').map(Number) as [number, number];
    const flops = 6 * N * C * V;
    const h = keep(randn([N, C]).requiresGrad_());
    const w = keep(tidy(() => randn([V, C]).mul(0.02)).requiresGrad_());
    const t = keep(randint(0, V, [N], { dtype: 'int64' }));
    const hb = keep(h.to('bfloat16')), wb = keep(w.to('bfloat16')), g = keep(randn([N, V]).to('bfloat16'));
    const mmFwd = time(() => { linear(hb, wb).select(0, 0).select(0, 0).item(); }, reps);
    const mmDh = time(() => { g.matmul(wb).select(0, 0).select(0, 0).item(); }, reps);
    const mmDw = time(() => { g.transpose(0, 1).matmul(hb).select(0, 0).select(0, 0).item(); }, reps);
    g.dispose();
    const step = (loss: () => { backward(): void }) => () => { h.grad = null; w.grad = null; loss().backward(); h.grad = null; w.grad = null; };
    const fused = time(step(() => autocast(() => headLoss(h, w, null, t, { zWeight: 1e-4 })).loss), reps);
    const unfused = time(step(() => nextTokenLoss(autocast(() => linear(h, w)).reshape(1, N, V), t.reshape(1, N), { zLoss: true, divisor: 1 }).loss), reps);
    const pct = (ms: number, f = flops) => `${ms.toFixed(1)} (${((100 * f) / ms / 1e6 / ceiling).toFixed(0)}%)`;
    const mm = mmFwd + mmDh + mmDw;
    console.log(`${shape.padEnd(12)}${pct(mm).padStart(16)}${pct(fused).padStart(16)}${pct(unfused).padStart(16)}${pct(pyMs[shape]!).padStart(16)}${pct(pyTunedMs[shape]!).padStart(16)}${`${(pyMs[shape]! / fused).toFixed(2)}x`.padStart(10)}${`${(pyTunedMs[shape]! / fused).toFixed(2)}x`.padStart(12)}   ${[mmFwd, mmDh, mmDw].map((m) => pct(m, flops / 3)).join(' / ')}`);
    for (const x of [h, w, t, hb, wb]) x.dispose();
  }
  console.log('(% = achieved share of the ceiling at 6 x tokens x d x vocab FLOPs; unfused = the model\'s logits then nextTokenLoss, as with fused_loss: false; PyTorch tuned = MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=64GiB)');
}

main();
