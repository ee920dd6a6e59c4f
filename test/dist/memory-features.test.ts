// Batch-size warmup and activation checkpointing in data-parallel runs (`olmo-ts launch`, Gloo, CPU):
// two ranks with a doubling batch and whole_layer checkpointing train the same global batches to the
// same losses as one process without checkpointing, and each rank takes batch[rank::2] of the
// growing global batch.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { BatchSizeSchedule } from '../../src/data/batch-schedule';
import { loadGlobalIndices } from '../../src/data/global-indices';
import { CLI, ROOT, assertDistFresh, readLosses, readRecords, removeSandboxes, sandbox } from '../helpers/train-process';

before(assertDistFresh);
after(removeSandboxes);

function launch(nproc: number, config: string, args: string[]): void {
  const r = spawnSync(process.execPath, [CLI, 'launch', '--nproc-per-node', String(nproc), '--', 'train', config, '--quiet', ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 240_000,
  });
  assert.equal(r.status, 0, (r.stdout + r.stderr).slice(-4000));
}

test('two ranks, doubling batch, whole_layer: the losses of one process without checkpointing; rank r trains batch[r::2]', () => {
  const sb = sandbox('ddp-bsw', 40);
  const warm = ['--max_duration=5', '--global_train_batch_size=16', '--batch_size_warmup.start=4', '--batch_size_warmup.doubling_interval=256T',
    '--scheduler.units=tokens', '--scheduler.t_warmup=256', '--fsdp.sharding_strategy=NO_SHARD'];
  const one = path.join(sb.dir, 'ws1'), two = path.join(sb.dir, 'ws2');
  launch(1, sb.config, [...warm, `--save_folder=${one}`]);
  launch(2, sb.config, [...warm, `--save_folder=${two}`, '--activation_checkpointing=whole_layer', '--device_train_microbatch_size=2']);
  const a = readLosses(one), b = readLosses(two);
  assert.deepEqual([...b.keys()], [1, 2, 3, 4, 5]);
  for (const [s, l] of a) assert.ok(Math.abs(l - b.get(s)!) <= 5e-6, `step ${s}: ${l} vs ${b.get(s)}`);
  assert.deepEqual(readRecords(two).filter((r) => 'train/GlobalBatchSize' in r).map((r) => r['train/GlobalBatchSize']), [4, 4, 8, 16, 16]);

  const order = loadGlobalIndices(path.join(two, 'train_data', 'global_indices.npy'));
  const sched = new BatchSizeSchedule([{ tokens: 0, size: 4 }, { tokens: 256, size: 8 }, { tokens: 512, size: 16 }], 32, { divisor: 2 });
  const logged = [0, 1].map((r) => fs.readFileSync(path.join(two, 'data-indices', `rank${r}.tsv`), 'utf8').trim().split('\n').map((l) => l.split('\t').map(Number)));
  for (let s = 1; s <= 5; s++) {
    const loc = sched.locate(s, order.length);
    const batch = Array.from(order.subarray(loc.start, loc.start + loc.size));
    for (const r of [0, 1]) assert.deepEqual(logged[r]![s - 1]!.slice(1), batch.filter((_, i) => i % 2 === r), `step ${s} rank ${r}`);
  }
});

test('FSDP (world size 2) with whole-block checkpointing of block units equals one process without sharding; other layouts are refused', async () => {
  const { okResults, runDistributed } = await import('../helpers/distributed');
  const sb = sandbox('fsdp-ckpt', 100);
  const combos = [
    { name: 'full-by_block-whole', overrides: ['--fsdp.sharding_strategy=FULL_SHARD', '--fsdp.wrapping_strategy=by_block', '--activation_checkpointing=whole_layer', '--device_train_microbatch_size=1'] },
    { name: 'hybrid-by_block-three_in_four', overrides: ['--fsdp.sharding_strategy=HYBRID_SHARD', '--fsdp.wrapping_strategy=by_block', '--activation_checkpointing=three_in_four'] },
    { name: 'full-one_in_two-one_in_two', overrides: ['--fsdp.sharding_strategy=FULL_SHARD', '--fsdp.wrapping_strategy=one_in_two', '--activation_checkpointing=one_in_two', '--model.weight_tying=false'] },
  ];
  const [r0] = okResults(await runDistributed<Record<string, { loss: number; weight: number; maxWeight: number }>>(
    path.join(__dirname, 'fsdp-train.rank.ts'), 'grid', { worldSize: 2, env: () => ({ LOCAL_WORLD_SIZE: '1', LOCAL_RANK: '0' }), timeoutMs: 600_000 }, { config: sb.config, dir: sb.dir, combos }));
  assert.equal(Object.keys(r0!).length, combos.length);
  // As fsdp.test.ts: only the order of the gradient sums differs from one process.
  for (const [name, r] of Object.entries(r0!)) {
    assert.ok(r.loss <= 5e-6, `${name}: losses differ from one process by ${r.loss}`);
    assert.ok(r.weight <= 1e-5, `${name}: weights differ from one process by ${r.weight}`);
  }
  // A recompute whose backward FSDP would see in several passes is refused before training.
  const { Trainer } = await import('../../src/train/trainer');
  const { loadTrainConfig } = await import('../../src/config');
  for (const [over, re] of [
    [['--activation_checkpointing=fine_grained', '--fsdp.wrapping_strategy=by_block'], /activation_checkpointing: got "fine_grained" with fsdp\.sharding_strategy FULL_SHARD .*fine_grained recomputes parts of a block/],
    [['--activation_checkpointing=whole_layer', '--fsdp.wrapping_strategy=null'], /block 0 is recomputed but is not an FSDP unit of its own \(use fsdp\.wrapping_strategy: by_block\)/],
  ] as const) {
    const cfg = loadTrainConfig(sb.config, [`--save_folder=${path.join(sb.dir, 'refused')}`, '--max_duration=1', ...over]);
    const t = new Trainer(cfg, { console: false, numThreads: 1, fsdp: true });
    await assert.rejects(t.fit(), re);
    t.close();
  }
});
