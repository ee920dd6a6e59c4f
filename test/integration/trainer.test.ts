// The trainer's step against OLMo's arithmetic computed independently from the same weights and
// batch: micro-batches split as OLMo's split_batch (chunks of device_train_microbatch_size rows,
// the last one smaller), each chunk's mean loss divided by the number of chunks.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { OLMo, loadTrainConfig, manualSeed, tensor, tidy } from '../../src';
import { collectOverrideArgs } from '../../src/config/overrides';
import { buildDataset, epochIndices } from '../../src/train/build';
import { Trainer } from '../../src/train/trainer';
import { removeSandboxes, sandbox } from '../helpers/train-process';

after(removeSandboxes);

test('step 1 loss: uneven micro-batches (6 rows, micro-batch 4 -> chunks of 4 and 2) follow OLMo', async () => {
  const sb = sandbox('micro');
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs(['--max_duration=1', '--global_train_batch_size=6', '--device_train_microbatch_size=4', `--save_folder=${sb.run}`]));
  let loss = NaN;
  const trainer = new Trainer(cfg, { numThreads: 1, console: false });
  trainer.on('step', (_s: number, m: Record<string, number>) => { loss = m['train/CrossEntropyLoss']!; });
  try {
    await trainer.fit();
  } finally {
    trainer.close();
  }
  // The same initial weights (seeded before the model is built) and the first global batch.
  manualSeed(cfg.seed);
  const model = new OLMo(cfg.model);
  const dataset = buildDataset(cfg);
  const first = epochIndices(cfg, dataset, 0, sb.run).subarray(0, 6);
  const rows = [...first].map((i) => dataset.get(i));
  const ce = (lo: number, hi: number) => tidy(() => {
    const ids = tensor(Int32Array.from(rows.slice(lo, hi).flatMap((r) => [...r.inputIds])), { shape: [hi - lo, 32], dtype: 'int64' });
    return model.loss(model.forward(ids).logits, ids).item();
  });
  const expected = (ce(0, 4) + ce(4, 6)) / 2;
  const wholeBatch = ce(0, 6);
  assert.ok(Math.abs(loss - expected) < 1e-6, `trainer loss ${loss}, OLMo's micro-batch arithmetic ${expected}`);
  assert.ok(Math.abs(wholeBatch - expected) > 1e-5, 'the test distinguishes the chunking (whole-batch mean differs)');
  model.dispose();
  dataset.close();
});
