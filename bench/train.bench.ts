// Training throughput: olmo-ts's Trainer vs the same OLMo model, data, batch, precision, optimizer,
// schedule and threads trained by plain PyTorch eager (bench/train_ref.py) on the same libtorch.
// Each side runs in its own process; prints tokens/s, the ratio and peak RSS (VmHWM) per config.
//
//   npm run bench:train [-- --configs=tiny,small --steps=N --warmup=W --rounds=R --batch=B --threads=T --profile --keep]
//
// --profile times the phases of one step (data, forward, loss, backward, clip, optimizer) on both
// sides instead of running the Trainer (olmo-ts's phases through a copy of Trainer.trainStep).
// --keep leaves the job files (init weights, order, job.json) in the temp folder for perf runs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadTrainConfig } from '../src/config';
import type { TrainConfig } from '../src/config';
import { deriveBatchSizes } from '../src/config/train';
import { prepareBrown } from '../src/data/brown';
import { DataLoader } from '../src/data/loader';
import { buildGlobalIndices } from '../src/data/global-indices';
import { buildParamGroups } from '../src/optim/param-groups';
import { scheduleAt } from '../src/optim/scheduler';
import { autocast } from '../src/tensor/autograd';
import { scalar, tensor } from '../src/tensor/creation';
import { manualSeed } from '../src/tensor/random';
import { setNumThreads } from '../src/tensor/runtime';
import { keep, tidy } from '../src/tensor/scope';
import type { Tensor } from '../src/tensor/tensor';
import { buildDataset, buildModel, buildOptimizer } from '../src/train/build';
import { nextTokenLoss } from '../src/train/loss';
import { Trainer } from '../src/train/trainer';

const ROOT = path.resolve(__dirname, '..');

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
}

/** One side's result line. */
interface Result {
  side: string;
  tokensPerSec: number;
  stepMs: number[];
  losses: number[];
  peakRssMb: number;
  phasesMs?: Record<string, number>;
  /** Minor page faults per step by phase (fresh pages the allocator had to get from the kernel). */
  phaseFaults?: Record<string, number>;
}

function arg(name: string, dflt: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
}

function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ------------------------------------------------------------------ olmo-ts side (child process)

/** Runs the real Trainer for warmup+steps steps; timing from the 'step' events. */
async function runTrainer(job: Job): Promise<Result> {
  const cfg = loadTrainConfig(job.configFile, job.overrides);
  const trainer = new Trainer(cfg, { console: false, numThreads: job.threads, autoResume: false });
  const stamps: number[] = [];
  const losses: number[] = [];
  let peak = NaN;
  trainer.on('step', (step: number, m: Record<string, number>) => {
    stamps.push(performance.now());
    losses.push(m['train/CrossEntropyLoss']!);
    if (step === job.warmup + job.steps) peak = vmHwmMb(); // before the final checkpoint's host copies
  });
  const t0 = performance.now();
  await trainer.fit();
  trainer.close();
  const stepMs = stamps.map((t, i) => t - (i ? stamps[i - 1]! : t0));
  const timed = stamps[stamps.length - 1]! - stamps[job.warmup - 1]!;
  return { side: 'olmo-ts', tokensPerSec: (job.steps * job.batchSize * job.seqLen) / (timed / 1000), stepMs, losses, peakRssMb: peak };
}

/** Trainer.trainStep's work (no attention/label masks, as Brown has none), phase by phase (data → optimizer), with a clock and page-fault count between phases. */
async function runProfile(job: Job): Promise<Result> {
  const cfg: TrainConfig = loadTrainConfig(job.configFile, job.overrides);
  setNumThreads(job.threads);
  manualSeed(cfg.seed);
  const model = buildModel(cfg);
  const optimizer = buildOptimizer(cfg, model);
  const dataset = buildDataset(cfg);
  const indices = new Uint32Array(fs.readFileSync(job.indicesFile).buffer.slice(0));
  const loader = new DataLoader({ dataset, globalIndices: indices, globalBatchSize: job.batchSize, dropLast: true, padTokenId: cfg.model.pad_token_id });
  const { microBatches } = deriveBatchSizes(cfg, 1);
  const phases: Record<string, number> = {};
  const faults: Record<string, number> = {};
  const total = job.warmup + job.steps;
  let t = performance.now();
  let flt = process.resourceUsage().minorPageFault;
  const mark = (name: string, step: number) => {
    const now = performance.now();
    const f = process.resourceUsage().minorPageFault;
    if (step > job.warmup) {
      phases[name] = (phases[name] ?? 0) + now - t;
      faults[name] = (faults[name] ?? 0) + f - flt;
    }
    t = now;
    flt = f;
  };
  const losses: number[] = [];
  const stepMs: number[] = [];
  let step = 0;
  for await (const batch of loader) {
    if (++step > total) break;
    const tStep = (t = performance.now());
    const [B, T] = batch.shape as [number, number];
    const rowsPer = Math.ceil(B / microBatches);
    optimizer.zeroGrad();
    const ce = tidy(() => {
      let ceSum: Tensor = scalar(0);
      let zSum: Tensor | null = job.zLoss ? scalar(0) : null;
      for (let r0 = 0; r0 < B; r0 += rowsPer) {
        const rows = Math.min(rowsPer, B - r0);
        tidy(() => {
          const ids = tensor(batch.inputIds.subarray(r0 * T, (r0 + rows) * T), { shape: [rows, T], dtype: 'int64' }); // (b, T)
          mark('data', step);
          const m = tidy(() => {
            const fwd = () => model.forward(ids).logits; // (b, T, V), bf16 under autocast
            const logits = job.precision === 'amp_bf16' ? autocast(fwd) : fwd();
            mark('forward', step);
            return nextTokenLoss(logits, ids, { zLoss: zSum !== null, divisor: microBatches });
          });
          if (zSum) zSum = keep(zSum.add(m.z!));
          mark('loss', step);
          m.loss.backward();
          ceSum = keep(ceSum.add(m.ce));
          mark('backward', step);
        });
        mark('dispose', step);
      }
      const v = ceSum.item(); // SYNC
      zSum?.item();
      return v;
    });
    mark('loss', step);
    const sched = job.schedule[step - 1]!;
    optimizer.clipGradsAndCollectMetrics(step); // with the previous step's threshold, as the Trainer
    mark('clip', step);
    for (const g of optimizer.groups) { g.lr = sched.lr; g.maxGradNorm = sched.maxGradNorm; }
    optimizer.step();
    mark('optimizer', step);
    losses.push(ce);
    stepMs.push(performance.now() - tStep);
  }
  await loader.close();
  optimizer.close();
  model.dispose();
  dataset.close();
  const timed = stepMs.slice(job.warmup).reduce((a, b) => a + b, 0);
  for (const k of Object.keys(phases)) { phases[k]! /= job.steps; faults[k]! /= job.steps; }
  return { side: 'olmo-ts', tokensPerSec: (job.steps * job.batchSize * job.seqLen) / (timed / 1000), stepMs, losses, peakRssMb: vmHwmMb(), phasesMs: phases, phaseFaults: faults };
}

// ------------------------------------------------------------------ driver

/** Writes the job of one config: init weights, epoch order, param groups and schedule. */
function makeJob(name: string, tokenFile: string, dir: string, threads: number, warmup: number, steps: number, extra: string[]): Job {
  const configFile = path.join(ROOT, 'configs', `${name}-cpu.yaml`);
  const total = warmup + steps;
  const overrides = [
    `--data.paths=[${tokenFile}]`, `--save_folder=${path.join(dir, 'run')}`, `--max_duration=${total}`,
    '--save_interval=1000000', '--save_num_checkpoints_to_keep=1', '--data.num_workers=0', ...extra,
  ];
  const cfg = loadTrainConfig(configFile, overrides);
  setNumThreads(threads);
  manualSeed(cfg.seed); // as Trainer.setup does before buildModel
  const model = buildModel(cfg);
  model.save(path.join(dir, 'init'));
  const groups = buildParamGroups(model.namedParameters(), cfg.optimizer);
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
  };
  fs.writeFileSync(path.join(dir, 'job.json'), JSON.stringify(job));
  return job;
}

function runSide(side: 'olmo-ts' | 'pytorch', jobFile: string, profile: boolean): Result {
  const cmd = side === 'pytorch'
    ? ['/usr/bin/python3', [path.join(__dirname, 'train_ref.py'), jobFile, ...(profile ? ['--profile'] : [])]] as const
    : [process.execPath, ['--import', 'tsx', __filename, `--worker=${jobFile}`, ...(profile ? ['--profile'] : [])]] as const;
  const r = spawnSync(cmd[0], cmd[1], { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    console.error(`${side} side failed (status ${r.status}):\n${r.stderr}`);
    process.exit(1);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const fmt = (v: number, d = 0) => v.toFixed(d);

/**
 * Per-config defaults that keep one `npm run bench:train` around 3 minutes on 2 cores at 1 thread.
 * small-cpu's own batch (32 = 4 micro-batches of 8 x 256 tokens) takes ~35 s a step there, so its
 * default is one micro-batch (--batch=8); pass --batch=32 for the configured batch.
 */
const DEFAULTS: Record<string, { warmup: number; steps: number; rounds: number; batch?: number }> = {
  tiny: { warmup: 2, steps: 8, rounds: 2 },
  small: { warmup: 1, steps: 3, rounds: 1, batch: 8 },
};

async function driver(): Promise<void> {
  const configs = arg('configs', 'tiny,small').split(',');
  const threads = Number(arg('threads', '1'));
  const profile = process.argv.includes('--profile');
  const brown = await prepareBrown({ tokenizer: { identifier: 'gpt2' } });
  const tokenFile = brown.paths[0]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-train-bench-'));
  const rows: string[] = [];
  try {
    for (const name of configs) {
      const d = DEFAULTS[name] ?? DEFAULTS.tiny!;
      const steps = Number(arg('steps', String(d.steps)));
      const warmup = Number(arg('warmup', String(d.warmup)));
      const rounds = Number(arg('rounds', String(d.rounds)));
      const batch = arg('batch', d.batch ? String(d.batch) : '');
      const jobDir = path.join(dir, name);
      fs.mkdirSync(jobDir);
      const job = makeJob(name, tokenFile, jobDir, threads, warmup, steps, batch ? [`--global_train_batch_size=${batch}`] : []);
      const jobFile = path.join(jobDir, 'job.json');
      const best: Record<string, Result> = {};
      for (let round = 0; round < rounds; round++) {
        // Alternate which side goes first so both see the same background load on average.
        const order: ('olmo-ts' | 'pytorch')[] = round % 2 ? ['pytorch', 'olmo-ts'] : ['olmo-ts', 'pytorch'];
        for (const side of order) {
          fs.rmSync(path.join(jobDir, 'run'), { recursive: true, force: true });
          const r = runSide(side, jobFile, profile);
          console.error(`[${name} round ${round + 1}] ${side}: ${fmt(r.tokensPerSec)} tokens/s, peak RSS ${fmt(r.peakRssMb)} MB, loss ${r.losses[0]!.toFixed(4)} -> ${r.losses[r.losses.length - 1]!.toFixed(4)}`);
          if (!best[side] || r.tokensPerSec > best[side]!.tokensPerSec) best[side] = r;
        }
      }
      const o = best['olmo-ts']!, p = best['pytorch']!;
      rows.push(
        `${`${name}-cpu`.padEnd(10)}${`${job.batchSize}x${job.seqLen}/${job.microBatchSize}`.padStart(10)}${String(steps).padStart(6)}` +
        `${fmt(o.tokensPerSec).padStart(10)}${fmt(p.tokensPerSec).padStart(10)}${(o.tokensPerSec / p.tokensPerSec).toFixed(2).padStart(7)}` +
        `${fmt(o.peakRssMb).padStart(9)}${fmt(p.peakRssMb).padStart(9)}` +
        `   ${o.losses[0]!.toFixed(3)}/${p.losses[0]!.toFixed(3)}  ${o.losses[o.losses.length - 1]!.toFixed(3)}/${p.losses[p.losses.length - 1]!.toFixed(3)}`,
      );
      if (profile) {
        console.log(`\n${name}-cpu: ms per step by phase (mean over ${steps} steps after ${warmup} warm-up)`);
        console.log(`${'phase'.padEnd(12)}${'olmo-ts'.padStart(10)}${'PyTorch'.padStart(10)}   page faults/step (ts/py)`);
        const keys = [...new Set([...Object.keys(o.phasesMs ?? {}), ...Object.keys(p.phasesMs ?? {})])];
        for (const k of keys) {
          console.log(`${k.padEnd(12)}${fmt(o.phasesMs?.[k] ?? 0, 1).padStart(10)}${fmt(p.phasesMs?.[k] ?? 0, 1).padStart(10)}   ${fmt(o.phaseFaults?.[k] ?? 0)}/${fmt(p.phaseFaults?.[k] ?? 0)}`);
        }
      }
    }
  } finally {
    if (process.argv.includes('--keep')) console.error(`jobs kept in ${dir} (run one side: --worker=${dir}/<config>/job.json)`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nolmo-ts Trainer vs Python PyTorch eager — same libtorch, ${threads} thread(s), amp_bf16, AdamW; best of the interleaved rounds${profile ? ' (profile loops, not the Trainer)' : ''}\n`);
  console.log(`${'config'.padEnd(10)}${'batch'.padStart(10)}${'steps'.padStart(6)}${'olmo-ts'.padStart(10)}${'PyTorch'.padStart(10)}${'ratio'.padStart(7)}${'RSS ts'.padStart(9)}${'RSS py'.padStart(9)}   loss first/last (ts/py)`);
  for (const r of rows) console.log(r);
  console.log('\ntokens/s (higher is better); ratio = olmo-ts / PyTorch (>= 1: olmo-ts is as fast or faster); RSS = peak (VmHWM) in MB');
}

async function main(): Promise<void> {
  const worker = arg('worker', '');
  if (!worker) return driver();
  const job = JSON.parse(fs.readFileSync(worker, 'utf8')) as Job;
  const r = process.argv.includes('--profile') ? await runProfile(job) : await runTrainer(job);
  console.log(JSON.stringify(r));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
