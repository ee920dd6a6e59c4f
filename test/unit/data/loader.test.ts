// The loader: per-rank batches that interleave into OLMo's global batches, identical with and
// without worker threads, resume from a start index, drop_last, read-ahead and wait accounting;
// and the collator's padding and tensor hand-off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MemMapDataset } from '../../../src/data/memmap-dataset';
import { buildGlobalIndices, globalBatch } from '../../../src/data/global-indices';
import { DataLoader, LoaderBatch } from '../../../src/data/loader';
import { collate, toTensors } from '../../../src/data/collator';
import { tmpDir } from './helpers';

const T = 8;
function dataset(): MemMapDataset {
  const dir = tmpDir();
  const paths = [37, 20, 50].map((n, f) => {
    const p = path.join(dir, `f${f}.npy`);
    // token value encodes (file, position) so every instance is distinct and checkable
    fs.writeFileSync(p, Buffer.from(Uint16Array.from({ length: n * T + 3 }, (_, i) => (f * 20000 + i) % 65536).buffer));
    return p;
  });
  return new MemMapDataset({ paths, chunkSize: T, generateAttentionMask: true, padTokenId: 1 });
}

async function drain(l: DataLoader): Promise<LoaderBatch[]> {
  const out: LoaderBatch[] = [];
  for await (const b of l) out.push(b);
  await l.close();
  return out;
}

test('two ranks interleave into global batches; rows hold the right instances', async () => {
  const ds = dataset();
  assert.equal(ds.length, 107);
  const idx = buildGlobalIndices({ numInstances: ds.length, seed: 6198, dropLast: false, worldSize: 2 });
  const B = 6;
  const ranks = await Promise.all([0, 1].map((rank) => drain(new DataLoader({ dataset: ds, globalIndices: idx, globalBatchSize: B, rank, worldSize: 2, padTokenId: 1 }))));
  assert.equal(ranks[0]!.length, Math.ceil(54 / 3));
  for (let k = 0; k < 5; k++) {
    const expected = Array.from(globalBatch(idx, k, B));
    const got: number[] = [];
    for (let j = 0; j < 3; j++) for (const r of [0, 1]) got.push(ranks[r]![k]!.index[j]!);
    assert.deepEqual(got, expected, `global batch ${k}`);
    const b = ranks[1]![k]!;
    assert.deepEqual(b.shape, [3, T]);
    for (let row = 0; row < 3; row++) {
      assert.deepEqual(Array.from(b.inputIds.subarray(row * T, (row + 1) * T)), Array.from(ds.get(b.index[row]!).inputIds));
    }
    assert.equal(b.batchIndex, k);
    assert.equal(b.attentionMask!.length, 3 * T);
  }
  ds.close();
});

test('worker threads give the same batches as async reads; resume starts mid-epoch', async () => {
  const ds = dataset();
  const idx = buildGlobalIndices({ numInstances: ds.length, seed: 1, epoch: 2, dropLast: true, worldSize: 1 });
  const base = { dataset: ds, globalIndices: idx, globalBatchSize: 4, padTokenId: 1 };
  const inline = await drain(new DataLoader(base));
  const threaded = await drain(new DataLoader({ ...base, numWorkers: 2, prefetchFactor: 2 }));
  assert.equal(inline.length, Math.ceil(107 / 4));
  assert.deepEqual(threaded.map((b) => Array.from(b.inputIds)), inline.map((b) => Array.from(b.inputIds)));
  assert.deepEqual(threaded.map((b) => b.metadata), inline.map((b) => b.metadata));
  const resumed = await drain(new DataLoader({ ...base, startIndex: 5 * 4 }));
  assert.deepEqual(resumed.map((b) => b.batchIndex), inline.slice(5).map((b) => b.batchIndex));
  assert.deepEqual(resumed.map((b) => Array.from(b.index)), inline.slice(5).map((b) => Array.from(b.index)));
  const dropped = await drain(new DataLoader({ ...base, dropLast: true }));
  assert.equal(dropped.length, Math.floor(107 / 4));
  assert.equal(inline[inline.length - 1]!.shape[0], 107 % 4, 'without drop_last the last batch is smaller');
  ds.close();
});

test('the loader reads ahead while the caller holds a batch, and accounts its waiting', async () => {
  const ds = dataset();
  const idx = buildGlobalIndices({ numInstances: ds.length, seed: 3, dropLast: false, worldSize: 1 });
  const l = new DataLoader({ dataset: ds, globalIndices: idx, globalBatchSize: 2, padTokenId: 1, prefetchFactor: 3 });
  let reads = 0;
  const orig = ds.getAsync.bind(ds);
  ds.getAsync = (i: number) => { reads++; return orig(i); };
  const it = l[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.done, false);
  // batch 0 consumed, batches 1..3 requested before the caller got batch 0
  assert.equal(reads, 4 * 2);
  await new Promise((r) => setTimeout(r, 30)); // "training" while the next reads finish
  const t0 = l.waitMs;
  await it.next();
  assert.ok(l.lastWaitMs >= 0 && l.lastWaitMs < 25, `batch already read, waited ${l.lastWaitMs} ms`);
  assert.ok(l.waitMs >= t0);
  await it.return?.(undefined);
  await l.close();
  ds.close();
});

test('collator pads right or left with the pad id and zero masks, as OLMo', () => {
  const items = [
    { inputIds: Int32Array.from([5, 6, 7]), labelMask: Uint8Array.from([1, 1, 0]), attentionMask: Uint8Array.from([1, 1, 1]), index: 3, metadata: { path: 'a' } },
    { inputIds: Int32Array.from([8]), labelMask: Uint8Array.from([1]), attentionMask: Uint8Array.from([1]), index: 9, metadata: { path: 'b' } },
  ];
  const right = collate(items, { padTokenId: 1 });
  assert.deepEqual(right.shape, [2, 3]);
  assert.deepEqual(Array.from(right.inputIds), [5, 6, 7, 8, 1, 1]);
  assert.deepEqual(Array.from(right.labelMask!), [1, 1, 0, 1, 0, 0]);
  assert.deepEqual(Array.from(right.attentionMask!), [1, 1, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(right.index), [3, 9]);
  assert.deepEqual(right.metadata, [{ path: 'a' }, { path: 'b' }]);
  const left = collate(items, { padTokenId: 0, padDirection: 'left' });
  assert.deepEqual(Array.from(left.inputIds), [5, 6, 7, 0, 0, 8]);
  assert.deepEqual(Array.from(left.attentionMask!), [1, 1, 1, 0, 0, 1]);
  assert.throws(() => collate([], { padTokenId: 0 }), /at least one instance/);
});

let nativeSkip: string | undefined;
try {
  require('../../../src/index');
} catch (e) {
  nativeSkip = `native addon not loadable (${(e as Error).message.split('\n')[0]}) - tensor hand-off skipped`;
}

test('toTensors hands a batch to int64/float/bool tensors', { skip: nativeSkip }, () => {
  const b = collate([{ inputIds: Int32Array.from([50279, 2, 3]), labelMask: Uint8Array.from([1, 0, 1]), attentionMask: Uint8Array.from([1, 1, 0]), index: 7 }], { padTokenId: 1 });
  const t = toTensors(b);
  assert.deepEqual(t.input_ids.shape, [1, 3]);
  assert.equal(t.input_ids.dtype, 'int64');
  assert.deepEqual(Array.from(t.input_ids.toArray() as ArrayLike<number | bigint>, Number), [50279, 2, 3]);
  assert.equal(t.label_mask!.dtype, 'bool');
  assert.equal(t.attention_mask!.dtype, 'float32');
  assert.deepEqual(Array.from(t.index.toArray() as ArrayLike<number | bigint>, Number), [7]);
  for (const x of [t.input_ids, t.index, t.label_mask!, t.attention_mask!]) x.dispose();
});

test('a batch plan (batch_size_warmup) gives global batches of changing size; each rank takes batch[rank::2]', async () => {
  const ds = dataset();
  const idx = buildGlobalIndices({ numInstances: ds.length, seed: 3, dropLast: false, worldSize: 2 });
  const plan = { starts: [10, 12, 16, 24], sizes: [2, 4, 8, 8] }; // resumed at 10
  const ranks = await Promise.all([0, 1].map((rank) => drain(new DataLoader({ dataset: ds, globalIndices: idx, globalBatchSize: 8, rank, worldSize: 2, startIndex: 10, plan, padTokenId: 1 }))));
  for (const [j, start] of plan.starts.entries()) {
    const global = Array.from(idx.subarray(start, start + plan.sizes[j]!));
    for (const r of [0, 1]) assert.deepEqual(Array.from(ranks[r]![j]!.index), global.filter((_, i) => i % 2 === r), `batch ${j} rank ${r}`);
  }
  assert.equal(ranks[0]!.length, 4);
  assert.throws(() => new DataLoader({ dataset: ds, globalIndices: idx, globalBatchSize: 8, worldSize: 2, startIndex: 10, plan: { starts: [10, 13], sizes: [2, 4] }, padTokenId: 1 }),
    /batch plan entry 1 \(start 13, size 4\) does not continue at 12/);
  assert.throws(() => new DataLoader({ dataset: ds, globalIndices: idx, globalBatchSize: 8, worldSize: 2, plan: { starts: [0], sizes: [3] }, padTokenId: 1 }), /in multiples of the world size 2/);
  ds.close();
});
