// activation_checkpointing in the real Trainer: with dropout on, micro-batches and the optimizer in
// the loop, runs with whole_layer and fine_grained follow the run without checkpointing bitwise
// (losses and final weights), in fp32 and under amp_bf16.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadTrainConfig } from '../../src';
import { collectOverrideArgs } from '../../src/config/overrides';
import { Trainer } from '../../src/train/trainer';
import { removeSandboxes, sandbox } from '../helpers/train-process';

after(removeSandboxes);

async function run(strategy: string, precision: string): Promise<{ losses: number[]; weights: Buffer[] }> {
  const sb = sandbox(`ac-${strategy}`, 16);
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs([
    '--max_duration=3', '--global_train_batch_size=8', '--device_train_microbatch_size=3', `--precision=${precision}`,
    '--model.attention_dropout=0.1', '--model.residual_dropout=0.1', '--model.embedding_dropout=0.1',
    `--activation_checkpointing=${strategy}`, `--save_folder=${sb.run}`, '--save_interval=1000',
  ]));
  const trainer = new Trainer(cfg, { numThreads: 1, console: false });
  const losses: number[] = [];
  trainer.on('step', (_s: number, m: Record<string, number>) => losses.push(m['train/CrossEntropyLoss']!));
  try {
    await trainer.fit();
    const weights = trainer.model.namedParameters().map((p) => {
      const a = p.tensor.toArray();
      return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    });
    return { losses, weights };
  } finally {
    trainer.close();
  }
}

for (const precision of ['fp32', 'amp_bf16']) {
  test(`${precision}: whole_layer and fine_grained train bitwise like no checkpointing (dropout, micro-batches of 3, 3, 2)`, async () => {
    const ref = await run('null', precision);
    assert.equal(ref.losses.length, 3);
    for (const s of ['whole_layer', 'fine_grained']) {
      const r = await run(s, precision);
      assert.deepEqual(r.losses, ref.losses, `${s}: losses`);
      r.weights.forEach((w, i) => assert.ok(w.equals(ref.weights[i]!), `${s}: parameter ${i} after 3 steps`));
    }
  });
}
