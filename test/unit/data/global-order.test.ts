// The global data order against numpy: SeedSequence words, PCG64 raw draws and OLMo's shuffled,
// padded/truncated index arrays, from the stored fixture and (when numpy is here) live for many cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PCG64, SeedSequence, randomInterval } from '../../../src/data/numpy-random';
import {
  buildGlobalIndices, globalBatch, loadGlobalIndices, rankIndices, saveGlobalIndices, totalSize,
} from '../../../src/data/global-indices';
import { DataError } from '../../../src/data/errors';
import { FIXTURES, numpyAnswers, numpySkipReason, tmpDir } from './helpers';

interface OrderCase { kind: 'order'; n: number; seed: string; epoch: number; drop_last: boolean; world_size: number }
interface OrderAnswer { len: number; sha256: string; head: number[] }

function order(c: OrderCase): Uint32Array {
  return buildGlobalIndices({ numInstances: c.n, seed: Number(c.seed), epoch: c.epoch, dropLast: c.drop_last, worldSize: c.world_size });
}
function digest(a: Uint32Array): OrderAnswer {
  const sha256 = createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
  return { len: a.length, sha256, head: Array.from(a.subarray(0, 16)) };
}

test('stored numpy fixture: SeedSequence, PCG64 raw draws and global orders match', () => {
  const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'global-order-reference.json'), 'utf8')) as {
    cases: Array<{ kind: string; seed: string; words?: number; count?: number; expected: unknown } & Partial<OrderCase>>;
  };
  let orders = 0;
  for (const c of ref.cases) {
    if (c.kind === 'seedseq') {
      assert.deepEqual(Array.from(new SeedSequence(BigInt(c.seed)).generateState32(c.words!)), c.expected, `seed ${c.seed}`);
    } else if (c.kind === 'raw') {
      const bg = new PCG64(BigInt(c.seed));
      const e = c.expected as { state: string; inc: string; raw: string[] };
      assert.equal(bg.state.state.toString(), e.state, `state for seed ${c.seed}`);
      assert.equal(bg.state.inc.toString(), e.inc, `inc for seed ${c.seed}`);
      assert.deepEqual(Array.from({ length: c.count! }, () => bg.nextUint64().toString()), e.raw);
    } else {
      assert.deepEqual(digest(order(c as OrderCase)), c.expected, JSON.stringify(c));
      orders++;
    }
  }
  assert.ok(orders >= 50, `fixture holds ${orders} order cases`);
});

test('live numpy: global order equals Generator(PCG64(seed+epoch)).shuffle for many (n, seed, epoch)', { skip: numpySkipReason() }, () => {
  // A pseudo-random but fixed spread of cases, including sizes around powers of two (where the
  // rejection mask changes) and seeds above 2^32 (multi-word entropy).
  const cases: OrderCase[] = [];
  const ns = [0, 1, 2, 3, 4, 7, 8, 9, 255, 256, 257, 1023, 4096, 65535, 65536, 65537, 100_003, 1_000_000];
  const seeds = ['0', '1', '7', '6198', '123456789', String(2 ** 31 - 1), String(2 ** 32), String(2 ** 32 + 17), String(2 ** 53 - 1)];
  let k = 0;
  for (const n of ns) {
    for (const seed of seeds) {
      k++;
      if (n >= 100_000 && k % 3 !== 0) continue; // keep the big ones few
      const epoch = k % 4;
      const world = [1, 2, 3, 8][k % 4]!;
      cases.push({ kind: 'order', n, seed, epoch: seed === String(2 ** 53 - 1) ? 0 : epoch, drop_last: k % 2 === 0, world_size: world });
    }
  }
  const expected = numpyAnswers<OrderAnswer>(cases);
  for (let i = 0; i < cases.length; i++) assert.deepEqual(digest(order(cases[i]!)), expected[i], JSON.stringify(cases[i]));
  assert.ok(cases.length > 100);
});

test('live numpy: PCG64 raw streams for bigint seeds (entropy longer than the pool)', { skip: numpySkipReason() }, () => {
  const seeds = [0n, 3n, 2n ** 64n - 1n, 2n ** 96n + 12345n, 2n ** 128n + 1n, 2n ** 200n + 77n];
  const expected = numpyAnswers<{ raw: string[] }>(seeds.map((s) => ({ kind: 'raw', seed: s.toString(), count: 20 })));
  seeds.forEach((s, i) => {
    const bg = new PCG64(s);
    assert.deepEqual(Array.from({ length: 20 }, () => bg.nextUint64().toString()), expected[i]!.raw, `seed ${s}`);
  });
});

test('randomInterval stays within [0, max] and uses the buffered 32-bit halves', () => {
  const a = new PCG64(5), b = new PCG64(5);
  const raw = b.nextUint64();
  // The first two 32-bit draws are the low then the high half of one 64-bit draw.
  assert.equal(a.nextUint32(), Number(raw & 0xffffffffn));
  assert.equal(a.nextUint32(), Number(raw >> 32n));
  for (const max of [1, 2, 3, 100, 2 ** 31, 2 ** 32 - 1]) {
    for (let i = 0; i < 200; i++) {
      const v = randomInterval(a, max);
      assert.ok(v >= 0 && v <= max && Number.isInteger(v));
    }
  }
});

test('drop_last pads by repeating the order from its start, or truncates to a multiple of world size', () => {
  const base = buildGlobalIndices({ numInstances: 10, seed: 3, dropLast: true, worldSize: 1 });
  assert.equal(base.length, 10);
  assert.deepEqual([...base].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const padded = buildGlobalIndices({ numInstances: 10, seed: 3, dropLast: false, worldSize: 4 });
  assert.deepEqual(Array.from(padded), [...base, base[0], base[1]]);
  const truncated = buildGlobalIndices({ numInstances: 10, seed: 3, dropLast: true, worldSize: 4 });
  assert.deepEqual(Array.from(truncated), Array.from(base.subarray(0, 8)));
  // padding longer than the data repeats the whole order
  const tiny = buildGlobalIndices({ numInstances: 2, seed: 3, dropLast: false, worldSize: 5 });
  const t2 = buildGlobalIndices({ numInstances: 2, seed: 3, dropLast: true, worldSize: 1 });
  assert.deepEqual(Array.from(tiny), [t2[0], t2[1], t2[0], t2[1], t2[0]]);
  assert.equal(totalSize(10, 4, true), 8);
  assert.equal(totalSize(10, 4, false), 12);
  assert.equal(totalSize(12, 4, true), 12);
  const unshuffled = buildGlobalIndices({ numInstances: 5, seed: 3, dropLast: false, worldSize: 1, shuffle: false });
  assert.deepEqual(Array.from(unshuffled), [0, 1, 2, 3, 4]);
});

test('rank slices interleave into the global batches; start index resumes', () => {
  const idx = buildGlobalIndices({ numInstances: 103, seed: 11, dropLast: false, worldSize: 4 });
  const B = 8, W = 4, dB = B / W;
  const ranks = [0, 1, 2, 3].map((rank) => rankIndices(idx, { rank, worldSize: W }));
  for (let k = 0; k < 3; k++) {
    const gb = Array.from(globalBatch(idx, k, B));
    const rebuilt: number[] = [];
    for (let j = 0; j < dB; j++) for (let r = 0; r < W; r++) rebuilt.push(ranks[r]![k * dB + j]!);
    assert.deepEqual(rebuilt, gb, `global batch ${k}`);
  }
  const resumed = rankIndices(idx, { rank: 1, worldSize: W, startIndex: 2 * B });
  assert.deepEqual(Array.from(resumed), Array.from(ranks[1]!.subarray(2 * dB)));
  const capped = rankIndices(idx, { rank: 0, worldSize: W, maxExamples: 16 });
  assert.equal(capped.length, 4);
  assert.throws(() => rankIndices(idx, { rank: 0, worldSize: W, startIndex: 6 }), (e: unknown) => e instanceof DataError && /start index 6 is not a multiple of the world size 4/.test(e.message));
  assert.throws(() => rankIndices(idx, { rank: 4, worldSize: W }), /rank 4 is not below world size 4/);
});

test('global_indices.npy: OLMo layout is headerless uint32; npy layout has a header; both load', { skip: numpySkipReason() }, () => {
  const dir = tmpDir();
  const idx = buildGlobalIndices({ numInstances: 1000, seed: 6198, dropLast: false, worldSize: 3 });
  const olmo = path.join(dir, 'a', 'global_indices.npy');
  const npy = path.join(dir, 'b', 'global_indices.npy');
  saveGlobalIndices(olmo, idx);
  saveGlobalIndices(npy, idx, 'npy');
  assert.equal(fs.statSync(olmo).size, idx.length * 4);
  assert.deepEqual(loadGlobalIndices(olmo), idx);
  assert.deepEqual(loadGlobalIndices(npy), idx);
  assert.deepEqual(fs.readdirSync(path.dirname(olmo)), ['global_indices.npy'], 'no temporary file left behind');
  // numpy reads the first as OLMo does (np.memmap, uint32) and the second with np.load
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const py = `import numpy as np,sys\na=np.memmap(sys.argv[1],mode='r',dtype=np.uint32)\nb=np.load(sys.argv[2])\nprint(b.dtype, int((a==b).all()), int(a[:5].sum()))`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, olmo, npy], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), `uint32 1 ${Array.from(idx.subarray(0, 5)).reduce((s, v) => s + v, 0)}`, r.stderr);
});
