// batch_size_warmup in the real Trainer: a batch that doubles twice covers every instance exactly
// once per epoch, in OLMo's global order; each step trains on exactly what inspect-data reports
// for it; micro-batch counts follow the batch size; metrics log it; resuming across a doubling is
// bitwise exact.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { OLMo, loadTrainConfig } from '../../src';
import { collectOverrideArgs } from '../../src/config/overrides';
import { inspectBatches } from '../../src/data/inspect';
import { buildDataset } from '../../src/train/build';
import { Trainer } from '../../src/train/trainer';
import { removeSandboxes, sandbox } from '../helpers/train-process';

after(removeSandboxes);

// 48 instances of 32 tokens; batches 4, 4, 8, 16, 16 fill epoch 0 exactly, then 16, 16, 16.
const WARMUP = ['--global_train_batch_size=16', '--device_train_microbatch_size=4', '--batch_size_warmup.start=4', '--batch_size_warmup.doubling_interval=256T',
  '--scheduler.units=tokens', '--scheduler.t_warmup=256', '--max_duration=2ep', '--save_interval=1000'];

interface Seen { rows: number[][]; forwards: number }

/** Runs fit() recording, per step, the token rows the model was given and its number of forward passes. */
async function fitRecording(trainer: Trainer): Promise<{ steps: Seen[]; metrics: Array<Record<string, number>>; weights: Buffer[] }> {
  const steps: Seen[] = [];
  const metrics: Array<Record<string, number>> = [];
  let cur: Seen = { rows: [], forwards: 0 };
  const forward = OLMo.prototype.forward;
  OLMo.prototype.forward = function (this: OLMo, ids, opts) {
    if (ids) {
      const a = ids.toArray() as BigInt64Array;
      const [b, t] = ids.shape as [number, number];
      for (let r = 0; r < b; r++) cur.rows.push(Array.from(a.subarray(r * t, (r + 1) * t), Number));
    }
    cur.forwards++;
    return forward.call(this, ids, opts);
  };
  trainer.on('step', (_s: number, m: Record<string, number>) => {
    steps.push(cur);
    metrics.push(m);
    cur = { rows: [], forwards: 0 };
  });
  try {
    await trainer.fit();
    const weights = trainer.model.namedParameters().map((p) => {
      const a = p.tensor.toArray();
      return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    });
    return { steps, metrics, weights };
  } finally {
    OLMo.prototype.forward = forward;
    trainer.close();
  }
}

test('a batch that doubles twice covers each instance exactly once per epoch; inspect-data shows what each step trained on', async () => {
  const sb = sandbox('bsw', 12);
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs([...WARMUP, `--save_folder=${sb.run}`]));
  const { steps, metrics } = await fitRecording(new Trainer(cfg, { numThreads: 1, console: false }));
  assert.deepEqual(steps.map((s) => s.rows.length), [4, 4, 8, 16, 16, 16, 16, 16], 'global batch per step');
  assert.deepEqual(metrics.map((m) => m['train/GlobalBatchSize']), [4, 4, 8, 16, 16, 16, 16, 16], 'the batch size is logged');
  assert.deepEqual(steps.map((s) => s.forwards), [1, 1, 2, 4, 4, 4, 4, 4], 'micro-batches of 4 rows: their count follows the batch');
  assert.deepEqual(metrics.map((m) => m['throughput/total_tokens']), [4, 8, 16, 32, 48, 64, 80, 96].map((n) => n * 32));

  // What inspect-data says each step trained on is exactly what the model was given.
  // The tiny model's ids are not GPT-2's special tokens; the tokenizer only decodes the text.
  const inspected = await inspectBatches({ runDir: sb.run, steps: steps.map((_, i) => i + 1), tokenizer: 'gpt2', eosTokenId: 50256, padTokenId: 50256 });
  const ds = buildDataset(cfg);
  try {
    const perEpoch = [new Map<number, number>(), new Map<number, number>()];
    steps.forEach((s, i) => {
      const rows = inspected.filter((x) => x.step === i + 1).sort((a, b) => a.example - b.example);
      assert.equal(rows.length, s.rows.length, `step ${i + 1}: instance count`);
      rows.forEach((x, r) => {
        assert.deepEqual(Array.from(ds.get(x.index).inputIds, Number), s.rows[r], `step ${i + 1} row ${r}: instance ${x.index}`);
        const seen = perEpoch[i < 5 ? 0 : 1]!;
        seen.set(x.index, (seen.get(x.index) ?? 0) + 1);
      });
    });
    for (const [e, seen] of perEpoch.entries()) {
      assert.equal(seen.size, 48, `epoch ${e} covers all 48 instances`);
      assert.ok([...seen.values()].every((n) => n === 1), `epoch ${e}: each instance once`);
    }
  } finally {
    ds.close();
  }
});

test('resume across a doubling is bitwise exact (losses and weights)', async () => {
  const straight = sandbox('bsw-a', 12);
  const a = await fitRecording(new Trainer(loadTrainConfig(straight.config, collectOverrideArgs([...WARMUP, `--save_folder=${straight.run}`])), { numThreads: 1, console: false }));
  const split = sandbox('bsw-b', 12);
  // Stop after step 3 (batch 8, just past the first doubling, before the second).
  const first = await fitRecording(new Trainer(loadTrainConfig(split.config, collectOverrideArgs([...WARMUP, `--save_folder=${split.run}`, '--stop_at=3'])), { numThreads: 1, console: false }));
  assert.equal(first.steps.length, 3);
  const rest = await fitRecording(new Trainer(loadTrainConfig(split.config, collectOverrideArgs([...WARMUP, `--save_folder=${split.run}`])), { numThreads: 1, console: false }));
  assert.deepEqual(rest.steps.map((s) => s.rows.length), [16, 16, 16, 16, 16], 'the resumed run continues with the next batch sizes');
  const losses = (m: Array<Record<string, number>>) => m.map((x) => x['train/CrossEntropyLoss']);
  assert.deepEqual([...losses(first.metrics), ...losses(rest.metrics)], losses(a.metrics), 'losses, bitwise');
  assert.deepEqual(rest.steps.map((s) => s.rows), a.steps.slice(3).map((s) => s.rows), 'the same instances');
  assert.equal(rest.weights.length, a.weights.length);
  rest.weights.forEach((w, i) => assert.ok(w.equals(a.weights[i]!), `parameter ${i} differs after the resume`));
});
