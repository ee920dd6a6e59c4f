// Activation checkpointing: peak activation memory and step time for each activation_checkpointing
// strategy, olmo-ts (CheckpointTape) side by side with Python PyTorch (torch.utils.checkpoint,
// non-reentrant, on test/fixtures/model/reference.py's forward) on the same model, weights, tokens
// and libtorch, plus olmo-ts's memory estimate (src/train/memory-plan.ts) for each.
//
//   npm run bench:checkpointing -- [--strategies=none,whole_layer,...] [--seq=2048]
//       [--layers=4] [--d=256] [--heads=4] [--vocab=1024] [--micro=1] [--steps=3] [--warmup=1]
//       [--threads=1] [--precision=fp32|amp_bf16] [--rounds=2]
//
// Rounds run every (side, strategy) again in the same order; the fastest round's median step
// counts (other processes on a shared machine only ever slow a round down).
// Every (side, strategy) runs in its own process. Memory: glibc serves every block over 64 KiB from
// its own mapping (MALLOC_MMAP_THRESHOLD_) and olmo-ts's CPU block cache is off, so freed memory
// leaves the resident set at once on both sides; after the warm-up step (optimizer state exists) and
// with gradients freed, the resident set is the baseline; the kernel's peak counter (VmHWM) is reset
// (/proc/self/clear_refs) and the timed steps run. Activations = peak - baseline - gradients.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ACTIVATION_CHECKPOINTING, ActivationCheckpointingStrategy } from '../src/config/train';
import { ModelConfig, modelConfig, modelConfigToJSON } from '../src/config/model';
import { OLMo } from '../src/model/olmo';
import { loadModelWeights, saveModelWeights } from '../src/model/checkpoint';
import { AdamW } from '../src/optim/adamw';
import { buildParamGroups } from '../src/optim/param-groups';
import { autocast } from '../src/tensor/autograd';
import { tensor } from '../src/tensor/creation';
import { manualSeed } from '../src/tensor/random';
import { setNumThreads, buildInfo } from '../src/tensor/runtime';
import { tidy } from '../src/tensor/scope';
import { nextTokenLoss } from '../src/train/loss';
import { planMemory } from '../src/train/memory-plan';

const ROOT = path.resolve(__dirname, '..');
type Choice = ActivationCheckpointingStrategy | 'none';

/** What both sides read (JSON file). */
interface Job {
  model: Record<string, unknown>;
  strategy: Choice;
  seqLen: number;
  microBatch: number;
  steps: number;
  warmup: number;
  threads: number;
  precision: 'fp32' | 'amp_bf16';
  /** Raw int32 token ids, (warmup + steps) * microBatch rows of seqLen. */
  tokensFile: string;
  initWeights: string;
}

/** One side's result line. */
interface Result {
  side: string;
  losses: number[];
  stepMs: number[];
  /** Forward + loss time of each timed step (ms). */
  forwardMs: number[];
  baselineMb: number;
  peakMb: number;
  gradMb: number;
}

function arg(name: string, dflt: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
}

function status(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ------------------------------------------------------------------ olmo-ts side (child process)

function child(job: Job): Result {
  setNumThreads(job.threads);
  const model = new OLMo(job.model, { initParams: false });
  loadModelWeights(model, job.initWeights);
  model.setActivationCheckpointing(job.strategy === 'none' ? null : job.strategy);
  const opt = new AdamW(buildParamGroups(model.namedParameters(), { learning_rate: 1e-4, weight_decay: 0.1 }), { betas: [0.9, 0.95], eps: 1e-5 });
  for (const g of opt.groups) g.lr = 1e-4;
  const tokens = new Int32Array(fs.readFileSync(job.tokensFile).buffer.slice(0));
  const [b, T] = [job.microBatch, job.seqLen];
  const losses: number[] = [], stepMs: number[] = [], forwardMs: number[] = [];
  let baselineMb = NaN;
  const gradMb = (model.numParams() * 4) / 2 ** 20;
  manualSeed(1);
  for (let s = 0; s < job.warmup + job.steps; s++) {
    if (s === job.warmup) {
      opt.zeroGrad();
      baselineMb = status('VmRSS');
      fs.writeFileSync('/proc/self/clear_refs', '5'); // reset VmHWM
    }
    const t0 = performance.now();
    opt.zeroGrad();
    let tFwd = 0;
    tidy(() => {
      const ids = tensor(tokens.subarray(s * b * T, (s + 1) * b * T), { shape: [b, T], dtype: 'int64' });
      const f0 = performance.now();
      const fwd = () => model.forward(ids).logits;
      const m = tidy(() => nextTokenLoss(job.precision === 'amp_bf16' ? autocast(fwd) : fwd(), ids, { zLoss: false, divisor: 1 }));
      tFwd = performance.now() - f0;
      model.backward(m.loss);
      losses.push(m.ce.item());
    });
    opt.step();
    if (s >= job.warmup) {
      stepMs.push(performance.now() - t0);
      forwardMs.push(tFwd);
    }
  }
  const peakMb = status('VmHWM');
  opt.close();
  model.dispose();
  return { side: 'olmo-ts', losses, stepMs, forwardMs, baselineMb, peakMb, gradMb };
}

// ------------------------------------------------------------------ driver

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Result {
  const r = spawnSync(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as Result;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function main(): void {
  const strategies = arg('strategies', ['none', ...ACTIVATION_CHECKPOINTING].join(',')).split(',') as Choice[];
  const seq = Number(arg('seq', '2048'));
  const micro = Number(arg('micro', '1'));
  const steps = Number(arg('steps', '3'));
  const warmup = Number(arg('warmup', '1'));
  const threads = Number(arg('threads', '1'));
  const precision = arg('precision', 'fp32') as Job['precision'];
  const cfg: ModelConfig = modelConfig({
    d_model: Number(arg('d', '256')), n_heads: Number(arg('heads', '4')), n_layers: Number(arg('layers', '4')), mlp_ratio: 4,
    vocab_size: Number(arg('vocab', '1024')), embedding_size: Number(arg('vocab', '1024')), max_sequence_length: seq,
    rope: true, weight_tying: false, include_bias: false, layer_norm_type: 'default', activation_type: 'swiglu',
    attention_dropout: 0, residual_dropout: 0, embedding_dropout: 0, eos_token_id: 0, pad_token_id: 1,
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ckpt-bench-'));
  try {
    manualSeed(7);
    const m = new OLMo(cfg);
    const weights = path.join(dir, 'init.safetensors');
    saveModelWeights(m, weights);
    const nParams = m.numParams();
    m.dispose();
    const tokens = new Int32Array((warmup + steps) * micro * seq);
    let x = 12345;
    for (let i = 0; i < tokens.length; i++) tokens[i] = (x = (x * 1103515245 + 12345) % 2 ** 31) % cfg.vocab_size;
    const tokensFile = path.join(dir, 'tokens.i32');
    fs.writeFileSync(tokensFile, tokens);
    const env = { MALLOC_MMAP_THRESHOLD_: '65536', OLMO_TS_CPU_CACHE_MB: '0' };
    console.log(`olmo-ts activation checkpointing benchmark: libtorch ${buildInfo().torchVersion}, ${os.cpus()[0]?.model}, ${threads} thread(s)`);
    console.log(`model: ${cfg.n_layers} sequential blocks, d_model ${cfg.d_model}, ${cfg.n_heads} heads, swiglu, RoPE, vocab ${cfg.vocab_size}, ${(nParams / 1e6).toFixed(1)}M params; ` +
      `micro-batch ${micro} x ${seq} tokens, ${precision}, AdamW; ${warmup} warm-up + ${steps} timed steps (median)\n`);
    const rounds = Number(arg('rounds', '2'));
    const best = (a: Result | undefined, b: Result): Result => (!a || median(b.stepMs) < median(a.stepMs) ? b : a);
    const bySide = new Map<Choice, { ts?: Result; py?: Result }>();
    for (let r = 0; r < rounds; r++) {
      for (const s of strategies) {
        const job: Job = { model: modelConfigToJSON(cfg), strategy: s, seqLen: seq, microBatch: micro, steps, warmup, threads, precision, tokensFile, initWeights: weights };
        const jobFile = path.join(dir, `job-${s}.json`);
        fs.writeFileSync(jobFile, JSON.stringify(job));
        const ts = run(process.execPath, ['--import', 'tsx', __filename, '--child', jobFile], env);
        const py = run('/usr/bin/python3', [path.join(ROOT, 'bench', 'checkpointing_ref.py'), jobFile], env);
        const cur = bySide.get(s) ?? {};
        bySide.set(s, { ts: best(cur.ts, ts), py: best(cur.py, py) });
        process.stderr.write(`  round ${r + 1}: ${s} done\n`);
      }
    }
    const rows = strategies.map((s) => ({ s, ts: bySide.get(s)!.ts!, py: bySide.get(s)!.py! }));
    const act = (r: Result) => r.peakMb - r.baselineMb - r.gradMb;
    const none = rows.find((r) => r.s === 'none');
    const head = `${'strategy'.padEnd(14)} ${'step ms ts'.padStart(10)} ${'py'.padStart(7)} ${'ratio'.padStart(6)}  ${'x none ts'.padStart(9)} ${'py'.padStart(5)}  ` +
      `${'act MB ts'.padStart(9)} ${'py'.padStart(7)} ${'est'.padStart(7)}  ${'x none ts'.padStart(9)} ${'py'.padStart(5)}  ${'extra/fwd'.padStart(9)}  loss ts/py`;
    console.log(head);
    for (const { s, ts, py } of rows) {
      const tsMs = median(ts.stepMs), pyMs = median(py.stepMs);
      const est = planMemory({ model: cfg, microBatchSize: micro, seqLen: seq, precision, optimizer: 'adamw', activationCheckpointing: s === 'none' ? null : s }).perDevice.activations / 2 ** 20;
      const relT = none ? [tsMs / median(none.ts.stepMs), pyMs / median(none.py.stepMs)] : [NaN, NaN];
      const relM = none ? [act(ts) / act(none.ts), act(py) / act(none.py)] : [NaN, NaN];
      // The time checkpointing adds, in units of one forward (+ loss) of the run without it.
      const extra = none ? (tsMs - median(none.ts.stepMs)) / median(none.ts.forwardMs) : NaN;
      console.log(`${s.padEnd(14)} ${tsMs.toFixed(0).padStart(10)} ${pyMs.toFixed(0).padStart(7)} ${(tsMs / pyMs).toFixed(2).padStart(6)}  ` +
        `${relT[0]!.toFixed(2).padStart(9)} ${relT[1]!.toFixed(2).padStart(5)}  ${act(ts).toFixed(0).padStart(9)} ${act(py).toFixed(0).padStart(7)} ${est.toFixed(0).padStart(7)}  ` +
        `${relM[0]!.toFixed(2).padStart(9)} ${relM[1]!.toFixed(2).padStart(5)}  ${extra.toFixed(2).padStart(9)}  ${ts.losses[0]!.toFixed(4)}/${py.losses[0]!.toFixed(4)}`);
    }
    if (none) console.log(`\nforward + loss of the run without checkpointing: ${median(none.ts.forwardMs).toFixed(0)} ms (olmo-ts), ${median(none.py.forwardMs).toFixed(0)} ms (PyTorch); baseline RSS ${none.ts.baselineMb.toFixed(0)} / ${none.py.baselineMb.toFixed(0)} MB; gradients ${none.ts.gradMb.toFixed(0)} MB`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--child')) {
  const job = JSON.parse(fs.readFileSync(process.argv[process.argv.indexOf('--child') + 1]!, 'utf8')) as Job;
  console.log(JSON.stringify(child(job)));
} else {
  main();
}
