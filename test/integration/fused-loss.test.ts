// The trainer with and without the fused LM head + loss (fused_loss, default on): the same run
// trains to the same losses within float32 rounding, with z-loss and micro-batches, logs the
// process's memory (System/Peak RSS, System/CPU Cache) and says both in the start-up banner.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { cpuCache, loadTrainConfig } from '../../src';
import { collectOverrideArgs } from '../../src/config/overrides';
import { Trainer } from '../../src/train/trainer';
import { removeSandboxes, sandbox } from '../helpers/train-process';

after(removeSandboxes);

async function train(fused: boolean | null): Promise<{ losses: number[]; z: number[]; metrics: Record<string, number>; banner: Map<string, string> }> {
  const sb = sandbox(`fused-${fused}`);
  const over = ['--max_duration=4', '--global_train_batch_size=4', '--device_train_microbatch_size=2', '--softmax_auxiliary_loss=true', `--save_folder=${sb.run}`];
  if (fused !== null) over.push(`--fused_loss=${fused}`);
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs(over));
  const trainer = new Trainer(cfg, { numThreads: 1, console: false });
  const losses: number[] = [], z: number[] = [];
  let metrics: Record<string, number> = {};
  trainer.on('step', (_s: number, m: Record<string, number>) => { losses.push(m['train/CrossEntropyLoss']!); z.push(m['train/ZLoss']!); metrics = m; });
  try {
    await trainer.fit();
  } finally {
    trainer.close();
  }
  return { losses, z, metrics, banner: new Map(trainer.banner.entries()) };
}

test('fused_loss on (default) and off train alike; memory metrics are logged', async () => {
  const fused = await train(null);
  const plain = await train(false);
  assert.equal(fused.losses.length, 4);
  // float32 run: the two heads differ by rounding only (sums in another order), which 4 AdamW steps
  // at lr 1e-2 carry along without growing past ~1e-5 of the loss.
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(fused.losses[i]! - plain.losses[i]!) <= 1e-5 * plain.losses[i]!, `step ${i + 1}: CE ${fused.losses[i]} fused vs ${plain.losses[i]}`);
    assert.ok(Math.abs(fused.z[i]! - plain.z[i]!) <= 1e-5 * plain.z[i]!, `step ${i + 1}: Z ${fused.z[i]} fused vs ${plain.z[i]}`);
  }
  assert.ok(fused.metrics['System/Peak RSS (MB)']! > 10, 'peak RSS is logged');
  if (cpuCache.stats().enabled) assert.ok(fused.metrics['System/CPU Cache (MB)']! >= 0, 'the caching allocator\'s idle memory is logged');
  // The start-up banner says which head runs and what the cache may hold.
  assert.match(fused.banner.get('LM head + loss')!, /^fused, 64-token chunks of a 64-token micro-batch/);
  assert.match(plain.banner.get('LM head + loss')!, /^plain/);
  assert.match(fused.banner.get('CPU cache')!, /holds up to [0-9.]+ GB of freed blocks/);
});
