// Training throughput: olmo-ts's Trainer vs the same OLMo model, data, batch, precision, optimizer,
// schedule and threads trained by plain PyTorch eager (bench/train_ref.py) on the same libtorch —
// with glibc's malloc as shipped and tuned through environment variables, as a Python user can.
// Each side runs in its own process; rounds are interleaved (the order rotates) and every number is
// the median over rounds. Achieved GFLOP/s is given as a share of a bf16 matmul ceiling measured in
// the same run, on the same threads.
//
//   npm run bench:train [-- --configs=tiny,small,d512 --sides=ts,py,py-tuned,ts-unfused,ts-nocache
//                          --rounds=R --steps=N --warmup=W --threads=T --batch=B --micro=M --profile --perf --keep]
//
// Sides: ts = the Trainer as configured (fused LM head + loss, caching CPU allocator); ts-unfused =
// fused_loss: false; ts-nocache = OLMO_TS_CPU_CACHE_MB=0; py = PyTorch with glibc's defaults; py-tuned
// = PyTorch with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=64 GiB (freed memory stays in the heap).
// --profile times the phases of the real Trainer (its model, loss, backward and optimizer calls are
// wrapped with a clock and a page-fault counter; nothing is re-implemented) next to train_ref.py's
// phases; --perf also runs each side under `perf record` and prints the hottest symbols (perf's
// own work competes with the OpenMP threads: on a 2-core machine it slows the sides unevenly, so
// read it for where time goes, not for ratios).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadTrainConfig } from '../src/config';
import { prepareBrown } from '../src/data/brown';
import { buildGlobalIndices } from '../src/data/global-indices';
import { OLMo } from '../src/model/olmo';
import { AdamW } from '../src/optim/adamw';
import { LionW } from '../src/optim/lion';
import { Optimizer } from '../src/optim/optimizer';
import { buildParamGroups } from '../src/optim/param-groups';
import { scheduleAt } from '../src/optim/scheduler';
import { randn } from '../src/tensor/creation';
import { manualSeed } from '../src/tensor/random';
import { buildInfo, cpuCache, setNumThreads } from '../src/tensor/runtime';
import { tidy } from '../src/tensor/scope';
import { Tensor } from '../src/tensor/tensor';
import { buildDataset, buildModel } from '../src/train/build';
import { Trainer } from '../src/train/trainer';

const ROOT = path.resolve(__dirname, '..');
const TUNED_MALLOC = { MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: String(64 * 2 ** 30) };

/** What the driver hands both sides (JSON file); train_ref.py reads the same fields. */
interface Job {
  name: string;
  configFile: string;
  overrides: string[];
  tokenFile: string;
  /** Raw uint32 epoch order (OLMo's global_indices.npy layout). */
  indicesFile: string;
  /** model.safetensors of the model the Trainer builds from the config's seed (same init on both sides). */
  initWeights: string;
  threads: number;
  warmup: number;
  steps: number;
  seed: number;
  batchSize: number;
  microBatchSize: number;
  seqLen: number;
  precision: string;
  zLoss: boolean;
  model: Record<string, unknown>;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  decayNames: string[];
  noDecayNames: string[];
  /** max_grad_norm from the config: the clipping threshold of step 1 (later steps clip with the previous step's scheduled value, as OLMo). */
  maxGradNorm: number | null;
  /** lr and max_grad_norm of steps 1..warmup+steps, from olmo-ts's scheduler (scheduleAt). */
  schedule: { lr: number; maxGradNorm: number | null }[];
  /** Training FLOPs per token: 6 x (matmul parameters, the LM head included even when tied) + 12·L·d·T. */
  flopsPerToken: number;
}

/** One side's result line. */
interface Result {
  side: string;
  tokensPerSec: number;
  stepMs: number[];
  losses: number[];
  peakRssMb: number;
  /** The caching allocator at the end: idle MB and the most it held (live + idle), when on. */
  cache?: { cachedMb: number; peakTotalMb: number; limitMb: number } | null;
  phasesMs?: Record<string, number>;
  /** Minor page faults per step by phase (fresh pages the allocator had to get from the kernel). */
  phaseFaults?: Record<string, number>;
}

type Side = 'ts' | 'ts-unfused' | 'ts-nocache' | 'py' | 'py-tuned';
const SIDE_LABEL: Record<Side, string> = {
  ts: 'olmo-ts', 'ts-unfused': 'olmo-ts, fused_loss: false', 'ts-nocache': 'olmo-ts, OLMO_TS_CPU_CACHE_MB=0',
  py: 'PyTorch (glibc defaults)', 'py-tuned': 'PyTorch (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=64GiB)',
};

function arg(name: string, dflt: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=') ?? dflt;
}

function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n ? (n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2) : NaN;
};

// ------------------------------------------------------------------ olmo-ts side (child process)

/** Clock + page-fault marks around the real Trainer's calls (installed only with --profile). */
class PhaseTimer {
  phases: Record<string, number> = {};
  faults: Record<string, number> = {};
  private t = performance.now();
  private f = process.resourceUsage().minorPageFault;
  counting = false;

  /** Charges the time since the last mark to `name`. */
  mark(name: string): void {
    const now = performance.now(), f = process.resourceUsage().minorPageFault;
    if (this.counting) {
      this.phases[name] = (this.phases[name] ?? 0) + now - this.t;
      this.faults[name] = (this.faults[name] ?? 0) + f - this.f;
    }
    this.t = now;
    this.f = f;
  }

  /** Wraps obj[key] (a method or a function property): `before` phase charged at entry, `name` at exit. */
  wrap(obj: any, key: string, before: string, name: string): void {
    const orig = obj[key] as (...a: unknown[]) => unknown;
    const self = this;
    obj[key] = function (this: unknown, ...a: unknown[]) {
      self.mark(before);
      try {
        return orig.apply(this, a);
      } finally {
        self.mark(name);
      }
    };
  }
}

/** Runs the real Trainer for warmup+steps steps; timing from its 'step' events. */
async function runTrainer(job: Job, side: Side, profile: boolean): Promise<Result> {
  const overrides = side === 'ts-unfused' ? [...job.overrides, '--fused_loss=false'] : job.overrides;
  const cfg = loadTrainConfig(job.configFile, overrides);
  let timer: PhaseTimer | null = null;
  if (profile) {
    // The Trainer's own calls, wrapped in place: what runs is exactly what training runs.
    timer = new PhaseTimer();
    timer.wrap(OLMo.prototype, 'forward', 'data+prep', 'forward');
    // The fused head runs inside forward(): its time (logits, loss and the three gradient matmuls) is its own phase.
    timer.wrap(OLMo.prototype, 'fusedHeadLoss', 'forward', 'loss: fused head op');
    timer.wrap(Tensor.prototype, 'backward', 'loss', 'backward');
    timer.wrap(Optimizer.prototype, 'clipGradsAndCollectMetrics', 'sync+other', 'clip');
    timer.wrap(AdamW.prototype, 'step', 'sync+other', 'optimizer');
    timer.wrap(LionW.prototype, 'step', 'sync+other', 'optimizer');
  }
  const trainer = new Trainer(cfg, { console: false, numThreads: job.threads, autoResume: false });
  const stamps: number[] = [];
  const losses: number[] = [];
  let peak = NaN;
  let cache: Result['cache'] = null;
  trainer.on('step', (step: number, m: Record<string, number>) => {
    timer?.mark('sync+other');
    if (timer) timer.counting = step >= job.warmup && step < job.warmup + job.steps;
    stamps.push(performance.now());
    losses.push(m['train/CrossEntropyLoss']!);
    if (step === job.warmup + job.steps) {
      peak = vmHwmMb(); // before the final checkpoint's host copies
      const c = cpuCache.stats();
      if (c.enabled) cache = { cachedMb: c.cachedBytes / 2 ** 20, peakTotalMb: c.peakTotalBytes / 2 ** 20, limitMb: c.limitBytes / 2 ** 20 };
    }
  });
  const t0 = performance.now();
  await trainer.fit();
  trainer.close();
  const stepMs = stamps.map((t, i) => t - (i ? stamps[i - 1]! : t0));
  const timed = stamps[stamps.length - 1]! - stamps[job.warmup - 1]!;
  const r: Result = { side, tokensPerSec: (job.steps * job.batchSize * job.seqLen) / (timed / 1000), stepMs, losses, peakRssMb: peak, cache };
  if (timer) {
    r.phasesMs = Object.fromEntries(Object.entries(timer.phases).map(([k, v]) => [k, v / job.steps]));
    r.phaseFaults = Object.fromEntries(Object.entries(timer.faults).map(([k, v]) => [k, v / job.steps]));
  }
  return r;
}

// ------------------------------------------------------------------ driver

interface BenchConfig { file: string; warmup: number; steps: number; overrides: string[]; note?: string }
/**
 * The shapes the targets are set on. Warm-up covers the steps in which the allocators still grow
 * (d512: olmo-ts's caching allocator missed 388 blocks in step 1, 40 in step 2, none from step 3;
 * PyTorch with tuned glibc still page-faulted in step 2).
 * tiny and small train with their configured batches; d512 is
 * small-cpu widened to d_model 512, 8 layers, 512 tokens (vocab 50304), 16 x 512 tokens a step in
 * micro-batches of 4 (no config ships this shape; 4 x 512 keeps a micro-batch at 2048 tokens).
 */
const CONFIGS: Record<string, BenchConfig> = {
  tiny: { file: 'tiny-cpu', warmup: 3, steps: 8, overrides: [] },
  small: { file: 'small-cpu', warmup: 2, steps: 3, overrides: [] },
  d512: {
    file: 'small-cpu', warmup: 2, steps: 3,
    overrides: ['--model.d_model=512', '--model.n_heads=8', '--model.n_layers=8', '--model.max_sequence_length=512', '--global_train_batch_size=16', '--device_train_microbatch_size=4'],
    note: 'small-cpu with d_model 512, 8 layers, 512 tokens, batch 16 x 512 in micro-batches of 4',
  },
};

/** Writes the job of one config: init weights, epoch order, param groups and schedule. */
function makeJob(name: string, bc: BenchConfig, tokenFile: string, dir: string, threads: number, warmup: number, steps: number, extra: string[]): Job {
  const configFile = path.join(ROOT, 'configs', `${bc.file}.yaml`);
  const total = warmup + steps;
  const overrides = [
    `--data.paths=[${tokenFile}]`, `--save_folder=${path.join(dir, 'run')}`, `--max_duration=${total}`,
    '--save_interval=1000000', '--save_num_checkpoints_to_keep=1', '--data.num_workers=0', ...bc.overrides, ...extra,
  ];
  const cfg = loadTrainConfig(configFile, overrides);
  setNumThreads(threads);
  manualSeed(cfg.seed); // as Trainer.setup does before buildModel
  const model = buildModel(cfg);
  model.save(path.join(dir, 'init'));
  const groups = buildParamGroups(model.namedParameters(), cfg.optimizer);
  const c = cfg.model;
  const embeddingSize = c.embedding_size ?? c.vocab_size;
  const flopsPerToken = 6 * (model.numParams(false) + (c.weight_tying ? embeddingSize * c.d_model : 0)) + 12 * c.n_layers * c.d_model * c.max_sequence_length;
  model.dispose();
  const dataset = buildDataset(cfg);
  const indices = buildGlobalIndices({ numInstances: dataset.length, seed: cfg.seed, epoch: cfg.epoch ?? 0, dropLast: cfg.data.drop_last, worldSize: 1 });
  dataset.close();
  const indicesFile = path.join(dir, 'global_indices.u32');
  fs.writeFileSync(indicesFile, Buffer.from(indices.buffer, indices.byteOffset, indices.byteLength));
  const B = cfg.global_train_batch_size, T = cfg.model.max_sequence_length;
  const schedule = [];
  for (let s = 1; s <= total; s++) {
    const v = scheduleAt(cfg, { globalStep: s, tokensSeen: s * B * T, tokensPerBatch: B * T, batchesPerEpoch: Math.floor(dataset.length / B) });
    schedule.push({ lr: v.lr, maxGradNorm: v.maxGradNorm });
  }
  if (cfg.max_grad_norm_ratio !== null) throw new Error('the reference script implements global clipping only');
  const decay = groups.find((g) => g.weightDecay !== 0);
  const job: Job = {
    name, configFile, overrides, tokenFile, indicesFile, initWeights: path.join(dir, 'init', 'model.safetensors'),
    threads, warmup, steps, seed: cfg.seed, batchSize: B, microBatchSize: cfg.device_train_microbatch_size, seqLen: T,
    precision: cfg.precision ?? 'fp32', zLoss: cfg.softmax_auxiliary_loss, model: { ...cfg.model },
    betas: cfg.optimizer.betas as [number, number], eps: 1e-5, weightDecay: cfg.optimizer.weight_decay,
    maxGradNorm: cfg.max_grad_norm, decayNames: decay?.names ?? [], noDecayNames: groups.find((g) => g.weightDecay === 0)?.names ?? [], schedule,
    flopsPerToken,
  };
  fs.writeFileSync(path.join(dir, 'job.json'), JSON.stringify(job));
  return job;
}

/** The environment a side starts with: glibc's malloc settings removed, then the side's own. */
function sideEnv(side: Side): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MALLOC_')) delete env[k];
  delete env.OLMO_TS_CPU_CACHE_MB;
  if (side === 'py-tuned') Object.assign(env, TUNED_MALLOC);
  if (side === 'ts-nocache') env.OLMO_TS_CPU_CACHE_MB = '0';
  return env;
}

function runSide(side: Side, jobFile: string, profile: boolean, perfFile: string | null): Result {
  const py = side === 'py' || side === 'py-tuned';
  let cmd: string[] = py
    ? ['/usr/bin/python3', path.join(__dirname, 'train_ref.py'), jobFile, ...(profile ? ['--profile'] : [])]
    : [process.execPath, '--import', 'tsx', __filename, `--worker=${jobFile}`, `--side=${side}`, ...(profile ? ['--profile'] : [])];
  if (perfFile) cmd = ['perf', 'record', '-F', '499', '-q', '-o', perfFile, '--', ...cmd];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26, env: sideEnv(side) });
  if (r.status !== 0) {
    console.error(`${side} side failed (status ${r.status}):\n${r.stderr}`);
    process.exit(1);
  }
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
  res.side = side;
  return res;
}

/** The hottest symbols of a perf recording, by self time. */
function perfTop(file: string, n = 18): string {
  const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'dso,sym', '--percent-limit', '1'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) return `  (perf report failed: ${r.stderr.trim().split('\n')[0]})`;
  return r.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#')).slice(0, n).map((l) => `  ${l.trim()}`).join('\n');
}

/** GFLOP/s of a bf16 (2048 x 2048) @ (2048 x 2048) matmul on `threads` threads: median of 7 after 3 warm-ups. */
function matmulCeiling(threads: number): number {
  setNumThreads(threads);
  const n = 2048;
  return tidy(() => {
    const a = randn([n, n]).to('bfloat16'), b = randn([n, n]).to('bfloat16');
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      tidy(() => { a.matmul(b).select(0, 0).select(0, 0).item(); }); // SYNC
      if (i >= 3) times.push(performance.now() - t);
    }
    return (2 * n ** 3) / (median(times) / 1000) / 1e9;
  });
}

/** CPU model, core count and the matmul-relevant ISA flags (AMX, AVX-512 BF16). */
function cpuLine(): string {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?';
  const flags = new Set((/flags\s*:\s*(.*)/.exec(info)?.[1] ?? '').split(/\s+/));
  const isa = ['amx_bf16', 'amx_tile', 'avx512_bf16', 'avx512f', 'avx2'].map((f) => `${f} ${flags.has(f) ? 'yes' : 'no'}`).join(', ');
  return `${model}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${isa}`;
}

const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '-');

async function driver(): Promise<void> {
  const configs = arg('configs', 'tiny,small,d512').split(',');
  const sides = arg('sides', 'ts,py,py-tuned,ts-unfused,ts-nocache').split(',') as Side[];
  for (const s of sides) if (!(s in SIDE_LABEL)) throw new Error(`unknown side '${s}' (${Object.keys(SIDE_LABEL).join(', ')})`);
  const threads = Number(arg('threads', String(os.cpus().length)));
  const profile = process.argv.includes('--profile');
  const perf = process.argv.includes('--perf');
  const brown = await prepareBrown({ tokenizer: { identifier: 'gpt2' } });
  const tokenFile = brown.paths[0]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-train-bench-'));
  const pyTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
  console.log(`date: ${new Date().toISOString()}`);
  console.log(`cpu: ${cpuLine()}`);
  const par = buildInfo().parallel.split('\n').filter((l) => /MKL-DNN|oneDNN|parallel backend/.test(l)).map((l) => l.trim()).join(', ');
  console.log(`software: Node ${process.version}, olmo-ts addon on libtorch ${buildInfo().torchVersion} (${par}), /usr/bin/python3 torch ${pyTorch}; ${threads} thread(s) on every side`);
  console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const ceilings: number[] = [];
  const summaries: string[] = [];
  try {
    for (const name of configs) {
      const bc = CONFIGS[name];
      if (!bc) throw new Error(`unknown config '${name}' (${Object.keys(CONFIGS).join(', ')})`);
      const steps = Number(arg('steps', String(bc.steps)));
      const warmup = Number(arg('warmup', String(bc.warmup)));
      const rounds = Number(arg('rounds', profile ? '1' : '3'));
      const extra = [arg('batch', '') && `--global_train_batch_size=${arg('batch', '')}`, arg('micro', '') && `--device_train_microbatch_size=${arg('micro', '')}`].filter(Boolean);
      const jobDir = path.join(dir, name);
      fs.mkdirSync(jobDir);
      const job = makeJob(name, bc, tokenFile, jobDir, threads, warmup, steps, extra);
      const jobFile = path.join(jobDir, 'job.json');
      const results: Record<string, Result[]> = {};
      for (let round = 0; round < rounds; round++) {
        ceilings.push(matmulCeiling(threads));
        // Rotate the order so every side runs early and late under the same background load.
        const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
        for (const side of order) {
          fs.rmSync(path.join(jobDir, 'run'), { recursive: true, force: true });
          const perfFile = perf ? path.join(jobDir, `${side}.perf.data`) : null;
          const r = runSide(side, jobFile, profile, perfFile);
          (results[side] ??= []).push(r);
          console.error(`[${name} round ${round + 1}] ${side}: ${fmt(r.tokensPerSec)} tokens/s, peak RSS ${fmt(r.peakRssMb)} MB, loss ${r.losses[0]!.toFixed(4)} -> ${r.losses[r.losses.length - 1]!.toFixed(4)}`);
          if (perfFile && round === rounds - 1) console.log(`\n${name}-cpu, ${SIDE_LABEL[side]}: hottest symbols (perf, self time)\n${perfTop(perfFile)}`);
        }
      }
      ceilings.push(matmulCeiling(threads));
      const ceiling = median(ceilings);
      const tps = (s: Side) => median(results[s]?.map((r) => r.tokensPerSec) ?? []);
      const rss = (s: Side) => median(results[s]?.map((r) => r.peakRssMb) ?? []);
      const spread = (s: Side) => {
        const v = results[s]?.map((r) => r.tokensPerSec) ?? [];
        return v.length > 1 ? ` (${fmt(Math.min(...v))}-${fmt(Math.max(...v))})` : '';
      };
      const lines = [`\n${name}: ${job.batchSize}x${job.seqLen} tokens a step in micro-batches of ${job.microBatchSize}, ${steps} timed steps after ${warmup}, ${rounds} round(s); ${(job.flopsPerToken / 1e6).toFixed(1)} MFLOP/token${bc.note ? `; ${bc.note}` : ''}`];
      lines.push(`${'side'.padEnd(60)}${'tokens/s'.padStart(10)}${'GFLOP/s'.padStart(9)}${'% ceil'.padStart(8)}${'RSS MB'.padStart(8)}   loss first/last   (tokens/s range)`);
      for (const s of sides) {
        const r0 = results[s]![0]!;
        const gf = (tps(s) * job.flopsPerToken) / 1e9;
        lines.push(`${SIDE_LABEL[s].padEnd(60)}${fmt(tps(s)).padStart(10)}${fmt(gf, 0).padStart(9)}${fmt((100 * gf) / ceiling, 1).padStart(8)}${fmt(rss(s)).padStart(8)}   ${r0.losses[0]!.toFixed(3)}/${r0.losses[r0.losses.length - 1]!.toFixed(3)}${spread(s)}`);
      }
      const ratio = (a: Side, b: Side) => (results[a] && results[b] ? `${(tps(a) / tps(b)).toFixed(2)}x` : '-');
      const rssRatio = (a: Side, b: Side) => (results[a] && results[b] ? `${(rss(a) / rss(b)).toFixed(2)}` : '-');
      lines.push(`ratios: olmo-ts / PyTorch ${ratio('ts', 'py')}, / PyTorch tuned ${ratio('ts', 'py-tuned')}; fused head ${ratio('ts', 'ts-unfused')} over unfused; cache ${ratio('ts', 'ts-nocache')} over no cache`);
      lines.push(`peak RSS: olmo-ts / PyTorch ${rssRatio('ts', 'py')}, / PyTorch tuned ${rssRatio('ts', 'py-tuned')}; cache on / off ${rssRatio('ts', 'ts-nocache')}`);
      const cache = results.ts?.map((r) => r.cache).filter((c) => c) as { cachedMb: number; peakTotalMb: number; limitMb: number }[] | undefined;
      if (cache?.length) lines.push(`caching allocator (olmo-ts): ${fmt(median(cache.map((c) => c.cachedMb)))} MB idle at the end, at most ${fmt(median(cache.map((c) => c.peakTotalMb)))} MB of large blocks held (limit ${fmt(cache[0]!.limitMb)} MB)`);
      lines.push(`bf16 matmul ceiling (2048^3, ${threads} threads, median of this run's measurements): ${fmt(ceiling)} GFLOP/s`);
      if (profile) {
        const keys = [...new Set(sides.flatMap((s) => Object.keys(results[s]![0]!.phasesMs ?? {})))];
        lines.push(`\n${name}: ms per step by phase (mean over ${steps} steps after ${warmup} warm-up; olmo-ts: the real Trainer's calls, wrapped), page faults/step`);
        lines.push(`${'phase'.padEnd(24)}${sides.map((s) => s.padStart(22)).join('')}`);
        for (const k of keys) {
          lines.push(`${k.padEnd(24)}${sides.map((s) => { const r = results[s]![0]!; return `${fmt(r.phasesMs?.[k] ?? NaN, 1)} / ${fmt(r.phaseFaults?.[k] ?? NaN)}`.padStart(22); }).join('')}`);
        }
        lines.push(`${'step (median)'.padEnd(24)}${sides.map((s) => fmt(median(results[s]![0]!.stepMs.slice(warmup)), 1).padStart(22)).join('')}`);
      }
      for (const l of lines) console.log(l);
      summaries.push(...lines);
    }
  } finally {
    if (process.argv.includes('--keep')) console.error(`jobs kept in ${dir} (run one side: --worker=${dir}/<config>/job.json --side=ts)`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('tokens/s and RSS are medians over the interleaved rounds (higher tokens/s is better); GFLOP/s = tokens/s x FLOP/token; % ceil = share of the bf16 matmul ceiling');
}

async function main(): Promise<void> {
  const worker = arg('worker', '');
  if (!worker) return driver();
  const job = JSON.parse(fs.readFileSync(worker, 'utf8')) as Job;
  const r = await runTrainer(job, arg('side', 'ts') as Side, process.argv.includes('--profile'));
  console.log(JSON.stringify(r));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
