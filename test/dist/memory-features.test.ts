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
