// The real Trainer on one GPU: OLMo-1B's model section (configs/official/OLMo-1B.yaml: d2048, L16,
// seq 2048, vocab 50304) under amp_bf16 with AdamW, on random tokens, unsharded and as FSDP
// FULL_SHARD at world size 1 (issue 11 asks for the two side by side), with the fused LM head and
// without it where the config has the key. Prints the median tokens/s over the steps after the
// warm-up, MFU as the trainer computes it, and the GPU's peak allocated memory. Python PyTorch on
// the same shape is in bench/gpu.bench.ts (the model and optimizer driven directly).
//
//   node --import tsx bench/gpu-train.bench.ts [--steps 12] [--warmup 4] [--micro 4] [--batch 8] [--layers 16] [--out FILE.md] [--dry]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTrainConfig, parseTrainConfig } from '../src/config';
import { cuda } from '../src/tensor/runtime';
import { Trainer } from '../src/train/trainer';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const outIdx = process.argv.indexOf('--out');
const outFile = outIdx > 0 ? process.argv[outIdx + 1] : null;
const steps = arg('steps', 12), warmup = arg('warmup', 4), micro = arg('micro', 4), batch = arg('batch', 8), layers = arg('layers', 16);

// --dry: a tiny shape on the CPU, to check this script on a machine without a GPU.
const dry = process.argv.includes('--dry');
if (!dry && !cuda.isAvailable()) {
  console.error('gpu-train bench: no CUDA device (this machine or this addon has none)');
  process.exit(2);
}
const name = dry ? 'CPU (dry run)' : cuda.deviceName(0);
const official = loadTrainConfig(path.join(__dirname, '..', 'configs', 'official', 'OLMo-1B.yaml'), []);
if (dry) Object.assign(official.model, { d_model: 64, n_heads: 2, max_sequence_length: 64 });
const T = official.model.max_sequence_length;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-gpu-train-'));
const data = path.join(dir, 'tok.npy');
{
  const n = (steps + 2) * batch * T;
  const a = new Uint16Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = (s >>> 16) % official.model.vocab_size; }
  fs.writeFileSync(data, Buffer.from(a.buffer));
}

interface Row { label: string; tokPerS: number; mfu: number; peakMiB: number; stepMs: number }
async function one(label: string, over: Record<string, unknown>, fsdp: boolean): Promise<Row | null> {
  const raw = {
    run_name: 'gpu-bench', seed: 6198,
    model: { ...official.model, n_layers: layers, init_device: dry ? 'cpu' : 'cuda' },
    optimizer: { name: 'adamw', learning_rate: 4e-4, weight_decay: 0.1, betas: [0.9, 0.95] },
    scheduler: { name: 'cosine_with_warmup', t_warmup: 100 },
    precision: 'amp_bf16', max_grad_norm: 1.0,
    global_train_batch_size: batch, device_train_microbatch_size: micro,
    max_duration: steps, save_folder: path.join(dir, label.replace(/\W+/g, '-')), save_overwrite: true, save_interval: 100000,
    console_log_interval: 1, data: { paths: [data] },
    ...over,
  };
  const cfg = parseTrainConfig(raw);
  const tps: number[] = [], mfu: number[] = [];
  if (!dry) cuda.resetPeakMemoryStats(0);
  const trainer = new Trainer(cfg, { console: false, fsdp, finalCheckpoint: false }); // nothing saved: the steps are timed
  trainer.on('step', (s: number, m: Record<string, number>) => {
    if (s > warmup) { tps.push(m['throughput/device/tokens_per_second']!); mfu.push(m['throughput/device/mfu_percent'] ?? NaN); }
  });
  try {
    await trainer.fit();
  } catch (e) {
    console.log(`${label}: failed: ${(e as Error).message}`);
    return null;
  } finally {
    trainer.close();
    if (!dry) cuda.emptyCache();
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const r = { label, tokPerS: med(tps), mfu: med(mfu), peakMiB: dry ? NaN : cuda.memoryStats(0).peakAllocated / 2 ** 20, stepMs: (1000 * batch * T) / med(tps) };
  console.log(`${label}: ${r.tokPerS.toFixed(0)} tok/s, ${r.stepMs.toFixed(0)} ms/step, MFU ${r.mfu.toFixed(1)}%, peak ${r.peakMiB.toFixed(0)} MiB`);
  return r;
}

async function main(): Promise<void> {
  console.log(`gpu-train bench on ${name}: OLMo-1B model section with ${layers} layers, batch ${batch} x ${T} (micro-batch ${micro}), amp_bf16, AdamW, ${steps} steps (median after ${warmup})`);
  const fusedKey = 'fused_loss' in parseTrainConfig({}) ? true : false;
  const rows: (Row | null)[] = [];
  rows.push(await one('unsharded', {}, false));
  if (fusedKey) rows.push(await one('unsharded, unfused head', { fused_loss: false }, false));
  rows.push(await one('FSDP FULL_SHARD ws1', {}, true));
  const base = rows[0];
  const lines = [
    `GPU: ${name}; ${new Date().toISOString().slice(0, 10)}; OLMo-1B shape (${layers} layers), batch ${batch} x ${T}, micro-batch ${micro}, amp_bf16`,
    '',
    '| run | tokens/s | ms/step | MFU % | peak GPU MiB | vs unsharded |',
    '|---|---|---|---|---|---|',
    ...rows.filter((r): r is Row => r !== null).map((r) => `| ${r.label} | ${r.tokPerS.toFixed(0)} | ${r.stepMs.toFixed(0)} | ${r.mfu.toFixed(1)} | ${r.peakMiB.toFixed(0)} | ${base ? (r.tokPerS / base.tokPerS).toFixed(2) : '-'} |`),
  ];
  console.log(lines.join('\n'));
  if (outFile) fs.writeFileSync(outFile, lines.join('\n') + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
}
main().catch((e) => { console.error(e); process.exit(1); });
