// The trainer with and without the fused LM head + loss (fused_loss, default on): step 1's CE and
// Z-loss equal OLMo's arithmetic on the same weights and batch, the same run trains to the same
// losses either way within float32 rounding (z-loss, micro-batches), and the trainer logs the
// caching allocator's idle memory (System/CPU Cache) and says how the head runs and what the cache
// may hold in the start-up banner.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { OLMo, cpuCache, loadTrainConfig, manualSeed, tensor, tidy } from '../../src';
import type { TrainConfig } from '../../src/config';
import { collectOverrideArgs } from '../../src/config/overrides';
import { buildDataset, epochIndices } from '../../src/train/build';
import { Trainer } from '../../src/train/trainer';
import { removeSandboxes, sandbox } from '../helpers/train-process';

after(removeSandboxes);

interface Run { cfg: TrainConfig; runDir: string; losses: number[]; z: number[]; metrics: Record<string, number>; banner: Map<string, string> }

async function train(fused: boolean | null): Promise<Run> {
  const sb = sandbox(`fused-${fused}`);
  const over = ['--max_duration=4', '--global_train_batch_size=4', '--device_train_microbatch_size=2', '--softmax_auxiliary_loss=true', `--save_folder=${sb.run}`];
  if (fused !== null) over.push(`--fused_loss=${fused}`);
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs(over));
  const trainer = new Trainer(cfg, { numThreads: 1, console: false });
  const losses: number[] = [], z: number[] = [];
  let metrics: Record<string, number> = {};
  trainer.on('step', (s: number, m: Record<string, number>) => { losses.push(m['train/CrossEntropyLoss']!); z.push(m['train/ZLoss']!); if (s === 1) metrics = m; });
  try {
    await trainer.fit();
  } finally {
    trainer.close();
  }
  return { cfg, runDir: sb.run, losses, z, metrics, banner: new Map(trainer.banner.entries()) };
}

/** Step 1 by OLMo's arithmetic from the initial weights: per micro-batch mean CE and 1e-4·mean(lse²), each / 2 chunks. */
function stepOne(r: Run): { ce: number; z: number } {
  manualSeed(r.cfg.seed); // the trainer seeds before it builds the model
  const model = new OLMo(r.cfg.model);
  const dataset = buildDataset(r.cfg);
  try {
    const rows = [...epochIndices(r.cfg, dataset, 0, r.runDir).subarray(0, 4)].map((i) => dataset.get(i));
    let ce = 0, z = 0;
    for (const lo of [0, 2]) {
      tidy(() => {
        const ids = tensor(Int32Array.from(rows.slice(lo, lo + 2).flatMap((x) => [...x.inputIds])), { shape: [2, 32], dtype: 'int64' });
        const logits = model.forward(ids).logits; // (2, 32, 256) float32
        ce += model.loss(logits, ids).item() / 2;
        z += logits.logsumexp(-1).pow(2).mean().item() * 1e-4 / 2;
      });
    }
    return { ce, z };
  } finally {
    model.dispose();
    dataset.close();
  }
}

test('fused_loss on (default) and off: step 1 follows OLMo, both train alike; memory metrics and banner lines', async () => {
  const fused = await train(null);
  const plain = await train(false);
  assert.equal(fused.losses.length, 4);
  const ref = stepOne(fused);
  assert.ok(Math.abs(fused.losses[0]! - ref.ce) <= 1e-5 * ref.ce, `step 1 CE ${fused.losses[0]}, OLMo's arithmetic ${ref.ce}`);
  assert.ok(Math.abs(fused.z[0]! - ref.z) <= 1e-5 * ref.z, `step 1 Z ${fused.z[0]}, OLMo's arithmetic ${ref.z}`);
  // float32 run: the two heads differ by rounding only (sums in another order), which 4 AdamW steps
  // at lr 1e-2 carry along without growing past ~1e-5 of the loss.
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(fused.losses[i]! - plain.losses[i]!) <= 1e-5 * plain.losses[i]!, `step ${i + 1}: CE ${fused.losses[i]} fused vs ${plain.losses[i]}`);
    assert.ok(Math.abs(fused.z[i]! - plain.z[i]!) <= 1e-5 * plain.z[i]!, `step ${i + 1}: Z ${fused.z[i]} fused vs ${plain.z[i]}`);
  }
  // Step 1 logs the system metrics: the process's peak and the caching allocator's idle memory.
  assert.ok(fused.metrics['System/Peak CPU Memory (MB)']! > 10, 'peak memory is logged');
  if (cpuCache.stats().enabled) assert.ok(fused.metrics['System/CPU Cache (MB)']! >= 0, 'the caching allocator\'s idle memory is logged');
  // The start-up banner says which head runs and what the cache may hold.
  assert.match(fused.banner.get('LM head + loss')!, /^fused, 64-token chunks of a 64-token micro-batch/);
  assert.match(plain.banner.get('LM head + loss')!, /^plain/);
  assert.match(fused.banner.get('CPU cache')!, /holds up to [0-9.]+ GB of freed blocks/);
});
