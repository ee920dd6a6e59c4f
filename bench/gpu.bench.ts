// GPU training step: olmo-ts vs Python PyTorch on the same GPU in the same run. One step is forward,
// backward and AdamW on an OLMo model under bf16 autocast, with the model and the optimizer on
// CUDA; olmo-ts runs it with the fused LM head + loss and with the unfused head (logits, then the
// loss), Python PyTorch (bench/gpu_ref.py, a child process) at its best in eager mode: bf16
// autocast, fused SDPA, fused AdamW (torch.compile with --compile). Rounds of each side are
// interleaved after a warm-up; tokens/s are medians over the rounds, with a synchronize before every
// clock read. Prints the table and writes OUT/bench.md and OUT/bench.json.
//
//   node --import tsx bench/gpu.bench.ts [--out DIR] [--shapes=1b,small] [--rounds=5] [--steps=4]
//        [--warmup=3] [--budget-s=240] [--compile] [--python=python3]
//
// --device=cpu rehearses the whole driver on a machine without a GPU (use --shapes=tiny): the
// numbers mean nothing there, the code paths are the GPU run's.
//
// Both sides do the same work: the model, the loss and the optimizer driven directly, as
// Trainer.trainStep does for one micro-batch, with no data loader, gradient clipping or metrics on
// either side. bench/gpu-train.bench.ts times olmo-ts's real Trainer on the GPU.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as readline from 'node:readline';
import { OLMo } from '../src/model/olmo';
import { AdamW } from '../src/optim/adamw';
import { buildParamGroups } from '../src/optim/param-groups';
import { autocast } from '../src/tensor/autograd';
import { randint, randn } from '../src/tensor/creation';
import { manualSeed } from '../src/tensor/random';
import { buildInfo, cuda } from '../src/tensor/runtime';
import { dispose, keep, tidy } from '../src/tensor/scope';
import type { Tensor } from '../src/tensor/tensor';
import * as lossModule from '../src/train/loss';

const ROOT = path.resolve(__dirname, '..');
/** Dense bf16 peak of an H100/H200 SXM by NVIDIA's datasheet (no sparsity). */
const DATASHEET_BF16_TFLOPS = 989;

interface Shape {
  name: string;
  model: Record<string, unknown>;
  batch: number;
  seq: number;
}
// OLMo-1B (configs/official/OLMo-1B.yaml) and a GPT-2-small-sized one with the same tokens per step.
const OLMO_1B = {
  d_model: 2048, n_heads: 16, n_layers: 16, mlp_ratio: 8, weight_tying: true, alibi: false, rope: true,
  flash_attention: true, attention_dropout: 0, attention_layer_norm: false, multi_query_attention: false,
  include_bias: false, block_type: 'sequential', layer_norm_type: 'default', layer_norm_with_affine: false,
  bias_for_layer_norm: false, attention_layer_norm_with_affine: false, activation_type: 'swiglu',
  residual_dropout: 0, embedding_dropout: 0, max_sequence_length: 2048, vocab_size: 50280,
  embedding_size: 50304, eos_token_id: 50279, pad_token_id: 1, init_fn: 'mitchell',
};
const SHAPES: Record<string, Shape> = {
  '1b': { name: 'OLMo-1B d2048 L16 h16 seq2048 B4', model: OLMO_1B, batch: 4, seq: 2048 },
  small: { name: 'd768 L12 h12 seq1024 B8', model: { ...OLMO_1B, d_model: 768, n_heads: 12, n_layers: 12, max_sequence_length: 1024 }, batch: 8, seq: 1024 },
  tiny: { name: 'd64 L2 h4 seq64 B2 (rehearsal)', model: { ...OLMO_1B, d_model: 64, n_heads: 4, n_layers: 2, max_sequence_length: 64 }, batch: 2, seq: 64 },
};
const DEV = arg('device', 'cuda') as 'cuda' | 'cpu';
const sync = () => { if (DEV === 'cuda') cuda.synchronize(); }; // SYNC
const OPT = { lr: 4e-4, betas: [0.9, 0.95] as [number, number], eps: 1e-5, wd: 0.1 };

function arg(name: string, dflt: string): string {
  const a = process.argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (!a) return dflt;
  if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
  const i = process.argv.indexOf(a);
  const next = process.argv[i + 1];
  return next && !next.startsWith('--') ? next : 'true';
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};
const gib = (b: number) => (b / 2 ** 30).toFixed(1);

/** The Python side: one child process answering JSON lines (bench/gpu_ref.py). */
class PySide {
  private readonly child: ChildProcess;
  private readonly lines: AsyncIterableIterator<string>;
  private readonly dead: Promise<never>;
  stderr = '';
  constructor(python: string) {
    this.child = spawn(python, [path.join(ROOT, 'bench', 'gpu_ref.py'), DEV], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    this.child.stderr!.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    // A Python that cannot start, or dies: calls then fail with its last words instead of waiting
    // forever (the pipe of a process that never started does not end) or crashing the driver.
    this.dead = new Promise((_, reject) => {
      const fail = (why: string) => reject(new Error(`gpu_ref.py ${why}: ${this.stderr.trim().split('\n').slice(-5).join(' | ')}`));
      this.child.on('error', (e) => { this.stderr += `\n${e.message}`; fail('could not run'); });
      this.child.on('exit', (code, sig) => fail(`exited (${code ?? sig})`));
    });
    this.dead.catch(() => undefined);
    this.child.stdin!.on('error', () => undefined);
    this.lines = readline.createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }
  async call(msg: Record<string, unknown>): Promise<Record<string, any>> {
    this.child.stdin!.write(JSON.stringify(msg) + '\n');
    const r = await Promise.race([this.lines.next(), this.dead]);
    if (r.done) throw new Error(`gpu_ref.py exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    const o = JSON.parse(r.value);
    if (o.error) throw new Error(`gpu_ref.py: ${o.error}`);
    return o;
  }
  close(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}

/** bf16 (n x n) @ (n x n) in olmo-ts, TFLOP/s: the matmul ceiling of this GPU measured in this run. */
function tsCeiling(): number {
  const n = DEV === 'cuda' ? 8192 : 256;
  const [a, b] = tidy(() => [keep(randn([n, n], { device: DEV }).bfloat16()), keep(randn([n, n], { device: DEV }).bfloat16())]);
  for (let i = 0; i < 3; i++) tidy(() => a!.matmul(b!));
  sync();
  const reps = 10;
  const t = performance.now();
  for (let i = 0; i < reps; i++) tidy(() => a!.matmul(b!));
  sync();
  const s = (performance.now() - t) / 1000;
  dispose([a!, b!]);
  return (2 * n ** 3 * reps) / s / 1e12;
}

/** olmo-ts's side of one shape: model, optimizer, fixed batch; step(fused) runs one training step. */
class TsSide {
  readonly model: OLMo;
  readonly opt: AdamW;
  private readonly ids: Tensor;
  readonly hasFused: boolean;
  constructor(shape: Shape) {
    manualSeed(0);
    this.model = new OLMo(shape.model, { device: DEV });
    this.model.train();
    this.opt = new AdamW(buildParamGroups(this.model.namedParameters(), { learning_rate: OPT.lr, weight_decay: OPT.wd }), { betas: OPT.betas, eps: OPT.eps });
    this.ids = keep(randint(0, shape.model.vocab_size as number, [shape.batch, shape.seq], { device: DEV }));
    this.hasFused = typeof (lossModule as Record<string, unknown>).microBatchLoss === 'function';
  }
  /** One step; returns the loss (a kept 0-dim tensor: read it after the round, not inside). */
  step(fused: boolean): Tensor {
    const loss = tidy(() => {
      let m: { loss: Tensor; ce: Tensor };
      if (this.hasFused) {
        const mb = (lossModule as any).microBatchLoss as (...a: unknown[]) => { loss: Tensor; ce: Tensor };
        m = mb(this.model, this.ids, this.ids, { attentionMask: null, amp: true, fused, zLoss: false, divisor: 1 });
      } else {
        m = lossModule.nextTokenLoss(autocast(() => this.model.forward(this.ids).logits, { device: DEV }), this.ids, { zLoss: false, divisor: 1 });
      }
      this.model.backward(m.loss, { sumTiedGradients: true });
      return m.ce;
    });
    this.opt.step();
    this.opt.zeroGrad();
    return loss;
  }
  round(fused: boolean, steps: number): { seconds: number; loss: number; peakBytes: number } {
    if (DEV === 'cuda') cuda.resetPeakMemoryStats();
    sync();
    const t = performance.now();
    let last: Tensor | null = null;
    for (let i = 0; i < steps; i++) {
      if (last) last.dispose();
      last = this.step(fused);
    }
    sync();
    const seconds = (performance.now() - t) / 1000;
    const loss = last!.item();
    last!.dispose();
    return { seconds, loss, peakBytes: DEV === 'cuda' ? cuda.memoryStats().peakAllocated : 0 };
  }
  dispose(): void {
    this.opt.zeroGrad();
    this.model.dispose();
    this.ids.dispose();
    this.opt.close();
    if (DEV === 'cuda') cuda.emptyCache();
  }
}

interface SideResult { side: string; tokPerS: number[]; peakBytes: number; firstLoss: number; lastLoss: number; note?: string }

async function main(): Promise<void> {
  const outDir = path.resolve(arg('out', path.join(ROOT, 'bench-gpu-out')));
  const shapes = arg('shapes', '1b,small').split(',');
  const rounds = Number(arg('rounds', '5'));
  const steps = Number(arg('steps', '4'));
  const warmup = Number(arg('warmup', '3'));
  const budget = Number(arg('budget-s', '240'));
  const compile = arg('compile', 'false') === 'true';
  const python = arg('python', process.env.OLMO_TS_PYTHON || 'python3');
  const t0 = performance.now();
  const left = () => budget - (performance.now() - t0) / 1000;
  fs.mkdirSync(outDir, { recursive: true });
  const md: string[] = ['## GPU training step: olmo-ts vs PyTorch', ''];
  const writeOut = (json: unknown) => {
    fs.writeFileSync(path.join(outDir, 'bench.md'), md.join('\n') + '\n');
    fs.writeFileSync(path.join(outDir, 'bench.json'), JSON.stringify(json, null, 1) + '\n');
  };

  const info = buildInfo();
  if (DEV === 'cuda' && (!info.cudaBuild || !cuda.isAvailable())) {
    const why = !info.cudaBuild ? `the addon was built against a CPU-only libtorch ${info.torchVersion}` : 'no GPU is visible';
    md.push(`no CUDA device: ${why}. This benchmark needs an NVIDIA GPU (see scripts/gpu/run.sh); nothing was measured.`);
    console.error(md[md.length - 1]);
    writeOut({ error: md[md.length - 1] });
    process.exitCode = 1;
    return;
  }
  const py = new PySide(python);
  const json: Record<string, unknown> = { date: new Date().toISOString(), torchAddon: info.torchVersion, shapes: {} };
  try {
    const pyCeil = await py.call({ cmd: 'ceiling' }).catch((e) => { console.error(`PyTorch matmul ceiling: ${e}`); return { tflops: NaN }; });
    let tsCeil = NaN;
    try {
      tsCeil = tsCeiling();
    } catch (e) {
      console.error(`olmo-ts matmul ceiling: ${e}`);
    }
    const finite = [pyCeil.tflops, tsCeil].filter(Number.isFinite);
    const ceil = finite.length ? Math.max(...finite) : NaN;
    json.ceilingTflops = { pytorch: pyCeil.tflops, olmoTs: tsCeil };
    md.push(`bf16 ${DEV === 'cuda' ? 8192 : 256}³ matmul measured in this run: ${tsCeil.toFixed(0)} TFLOP/s through olmo-ts, ${pyCeil.tflops.toFixed(0)} through PyTorch; datasheet dense bf16 ${DATASHEET_BF16_TFLOPS}.`);
    md.push('MFU counts 6·N + 12·L·d·s FLOPs per token (N: every matmul weight, the LM head included; causal attention counted in full, as PaLM).');
    md.push(`Rounds: ${warmup} warm-up steps per side, then ${rounds} interleaved rounds of ${steps} steps (order rotated); medians of the rounds.`);
    md.push('');
    md.push('| shape | side | tokens/s | × PyTorch | ms/step | MFU (datasheet) | MFU (measured matmul) | peak CUDA memory GiB | first → last loss |');
    md.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');

    for (const key of shapes) {
      const shape = SHAPES[key];
      if (!shape) throw new Error(`unknown shape '${key}' (known: ${Object.keys(SHAPES).join(', ')})`);
      if (left() < 30) { md.push(`| ${shape.name} | (skipped: time budget spent) | | | | | | | |`); continue; }
      const tokens = shape.batch * shape.seq;
      // A side that fails (an op missing on CUDA, out of memory, a Python error) is reported in the
      // table with its error and left out of later rounds; the other sides go on.
      const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 160);
      const pyInit = await py.call({ cmd: 'init', model: shape.model, batch: shape.batch, seq: shape.seq, ...OPT, compile, seed: 0 }).catch((e) => ({ error: errMsg(e) }) as Record<string, any>);
      const tsT = performance.now();
      let ts: TsSide | null = null;
      let tsError = '';
      try {
        ts = new TsSide(shape);
      } catch (e) {
        tsError = errMsg(e);
      }
      // FLOPs from the config alone (the olmo-ts model may have failed to build)
      const c = { d: shape.model.d_model as number, L: shape.model.n_layers as number, V: shape.model.embedding_size as number, ratio: shape.model.mlp_ratio as number };
      const hidden = c.ratio * c.d; // swiglu: ff_proj d -> hidden, ff_out hidden/2 -> d
      const fromConfig = c.L * (3 * c.d * c.d + c.d * c.d + c.d * hidden + (hidden / 2) * c.d) + c.d * c.V;
      const matmulParams = ts ? ts.model.numParams(false) + c.d * c.V : fromConfig;
      if (matmulParams !== fromConfig) console.error(`note: ${matmulParams} matmul weights in the model, ${fromConfig} from the shape`);
      const flopsPerToken = 6 * matmulParams + 12 * c.L * c.d * shape.seq;
      const tsParams = ts ? ts.model.numParams() : NaN;
      const fused = ts?.hasFused ?? false;
      const sides: { name: string; error: string; run: (n: number) => Promise<{ seconds: number; loss: number; peakBytes: number }> }[] = [
        { name: compile ? 'PyTorch (compiled)' : 'PyTorch eager', error: pyInit.error ?? '', run: (n) => py.call({ cmd: 'round', steps: n }) as Promise<any> },
        { name: 'olmo-ts fused head', error: tsError || (fused ? '' : 'this checkout has no fused head (src/train/loss.ts microBatchLoss)'), run: async (n) => ts!.round(true, n) },
        { name: 'olmo-ts unfused head', error: tsError, run: async (n) => ts!.round(false, n) },
      ];
      const res: SideResult[] = sides.map((s) => ({ side: s.name, tokPerS: [], peakBytes: 0, firstLoss: NaN, lastLoss: NaN, note: s.error || undefined }));
      console.log(`${shape.name}: PyTorch ${pyInit.params ?? '?'} params (init ${pyInit.initS?.toFixed(1) ?? '?'} s), olmo-ts ${tsParams} params (init ${((performance.now() - tsT) / 1000).toFixed(1)} s)`);
      const attempt = async (i: number, n: number) => {
        if (res[i]!.note) return null;
        try {
          return await sides[i]!.run(n);
        } catch (e) {
          res[i]!.note = errMsg(e);
          console.error(`${shape.name}: ${sides[i]!.name} failed: ${res[i]!.note}`);
          return null;
        }
      };
      for (let i = 0; i < sides.length; i++) {
        const w = await attempt(i, warmup);
        if (w) res[i]!.firstLoss = w.loss;
      }
      for (let r = 0; r < rounds && left() > 15; r++) {
        for (let j = 0; j < sides.length; j++) {
          const i = (j + r) % sides.length;
          const m = await attempt(i, steps);
          if (!m) continue;
          res[i]!.tokPerS.push((steps * tokens) / m.seconds);
          res[i]!.peakBytes = Math.max(res[i]!.peakBytes, m.peakBytes);
          res[i]!.lastLoss = m.loss;
        }
      }
      try {
        ts?.dispose();
      } catch (e) {
        console.error(`olmo-ts dispose: ${errMsg(e)}`);
      }
      await py.call({ cmd: 'free' }).catch(() => undefined);
      const base = median(res[0]!.tokPerS);
      for (const s of res) {
        if (!s.tokPerS.length) {
          md.push(`| ${shape.name} | ${s.side} | FAILED: ${(s.note ?? 'no round ran').replace(/\|/g, '/')} | | | | | | |`);
          continue;
        }
        const tps = median(s.tokPerS);
        const tf = (tps * flopsPerToken) / 1e12;
        const ratio = Number.isFinite(base) ? (tps / base).toFixed(2) : '–';
        md.push(`| ${shape.name} | ${s.side}${s.note ? ` (then failed: ${s.note.replace(/\|/g, '/')})` : ''} | ${tps.toFixed(0)} | ${ratio} | ${((tokens / tps) * 1000).toFixed(1)} | ${((100 * tf) / DATASHEET_BF16_TFLOPS).toFixed(1)}% | ${((100 * tf) / ceil).toFixed(1)}% | ${gib(s.peakBytes)} | ${s.firstLoss.toFixed(3)} → ${s.lastLoss.toFixed(3)} |`);
        console.log(`  ${s.side.padEnd(22)} ${tps.toFixed(0).padStart(8)} tok/s  ×${ratio} PyTorch  MFU ${((100 * tf) / DATASHEET_BF16_TFLOPS).toFixed(1)}%  peak ${gib(s.peakBytes)} GiB  rounds ${s.tokPerS.map((x) => x.toFixed(0)).join(' ')}`);
      }
      if (res.some((s) => !s.tokPerS.length)) process.exitCode = 1;
      (json.shapes as Record<string, unknown>)[key] = { shape, flopsPerToken, params: { olmoTs: tsParams, pytorch: pyInit.params }, results: res, pytorch: { torch: pyInit.torch, device: pyInit.device } };
      json.device ??= pyInit.device;
      writeOut(json);
    }
    md.push('');
    md.push(`GPU: ${json.device ?? '?'}; olmo-ts addon on libtorch ${info.torchVersion}. No gradient clipping, metrics or data loading on either side: the model, loss and AdamW driven directly (the real Trainer: bench/gpu-train.bench.ts).`);
  } finally {
    py.close();
    if (py.stderr.trim()) console.error(`gpu_ref.py said (last lines):\n${py.stderr.trim().split('\n').slice(-10).join('\n')}`);
    writeOut(json);
  }
  console.log('\n' + md.join('\n'));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
