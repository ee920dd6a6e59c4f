// MemMapDataset against a numpy rendering of OLMo's reads (per-file truncation, uint16/uint32),
// plus label masks, attention masks, metadata from DataConfig, and the misuse table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MemMapDataset } from '../../../src/data/memmap-dataset';
import { buildMemmapDataset } from '../../../src/data/config';
import { DataError } from '../../../src/data/errors';
import { numpyAnswers, numpySkipReason, tmpDir } from './helpers';

/** Writes `n` pseudo-random tokens (below `vocab`) as a headerless token file. */
function tokenFile(file: string, n: number, dtype: 'uint16' | 'uint32', seed: number, vocab = 50280): Uint32Array {
  const v = new Uint32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; v[i] = x % vocab; }
  const arr = dtype === 'uint16' ? Uint16Array.from(v) : v;
  fs.writeFileSync(file, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
  return v;
}

for (const dtype of ['uint16', 'uint32'] as const) {
  test(`${dtype}: every instance equals numpy's read of OLMo's layout (with per-file truncation)`, { skip: numpySkipReason() }, async () => {
    const dir = tmpDir();
    const T = 16;
    // lengths chosen to leave remainders, and one file shorter than an instance
    const lens = [5 * T + 3, 7, 2 * T, 3 * T + T - 1];
    const paths = lens.map((n, i) => {
      const p = path.join(dir, `f${i}.npy`);
      tokenFile(p, n, dtype, 100 + i, dtype === 'uint32' ? 100278 : 50280);
      return p;
    });
    const ds = new MemMapDataset({ paths, chunkSize: T, memmapDtype: dtype });
    const all = Array.from({ length: ds.length }, (_, i) => i);
    const [ref] = numpyAnswers<{ len: number; instances: number[][] }>([{ kind: 'memmap', paths, chunk_size: T, dtype, indices: all }]);
    assert.equal(ds.length, ref!.len);
    assert.equal(ds.length, 5 + 0 + 2 + 3);
    for (const i of all) {
      assert.deepEqual(Array.from(ds.get(i).inputIds), ref!.instances[i], `instance ${i}`);
      assert.deepEqual(Array.from((await ds.getAsync(i)).inputIds), ref!.instances[i], `async instance ${i}`);
    }
    assert.deepEqual(ds.offsets, [[0, 5], [5, 5], [5, 7], [7, 10]]);
    assert.deepEqual(ds.source(5), { fileIndex: 2, path: paths[2], localIndex: 0, tokenStart: 0, tokenEnd: T });
    assert.deepEqual(ds.get(-1).inputIds, ds.get(9).inputIds);
    assert.throws(() => ds.get(10), /10 is out of bounds for dataset of size 10/);
    ds.close();
    ds.close(); // idempotent
  });
}

test('label masks, attention masks and metadata follow OLMo', () => {
  const dir = tmpDir();
  const T = 8;
  const tokens = path.join(dir, 'a.npy');
  const ids = tokenFile(tokens, 3 * T, 'uint16', 7, 5); // ids 0..4, so pad id 1 appears
  const mask = path.join(dir, 'a.mask.npy');
  const maskBytes = Uint8Array.from({ length: 3 * T }, (_, i) => (i % 3 === 0 ? 1 : 0));
  fs.writeFileSync(mask, maskBytes);
  const ds = new MemMapDataset({ paths: [tokens], chunkSize: T, labelMaskPaths: [mask], generateAttentionMask: true, padTokenId: 1, metadata: [{ path: tokens }] });
  const x = ds.get(1);
  assert.deepEqual(Array.from(x.inputIds), Array.from(ids.subarray(T, 2 * T)));
  assert.deepEqual(Array.from(x.labelMask!), Array.from(maskBytes.subarray(T, 2 * T)));
  assert.deepEqual(Array.from(x.attentionMask!), Array.from(x.inputIds, (v) => (v === 1 ? 0 : 1)));
  assert.ok(x.attentionMask!.includes(0) && x.attentionMask!.includes(1), 'fixture exercises both mask values');
  assert.deepEqual(x.metadata, { path: tokens });
  x.metadata!.path = 'changed';
  assert.deepEqual(ds.get(1).metadata, { path: tokens }, 'metadata is a copy per instance');
  ds.close();
});

test('DataConfig: paths give {path}, datasets give sorted {label}; folders and globs expand', () => {
  const dir = tmpDir();
  const T = 4;
  const mk = (name: string, n: number): string => { const p = path.join(dir, name); tokenFile(p, n * T, 'uint16', n); return p; };
  const a = mk('a.npy', 2), b = mk('b.npy', 3), c = mk('c.npy', 1);
  const byPaths = buildMemmapDataset({ paths: [b, a] }, { maxSequenceLength: T });
  assert.equal(byPaths.length, 5);
  assert.deepEqual(byPaths.get(0).metadata, { path: b });
  assert.deepEqual(byPaths.get(4).metadata, { path: a });
  const byLabel = buildMemmapDataset({ datasets: { zeta: [c], alpha: [b, a] } }, { maxSequenceLength: T });
  assert.deepEqual(byLabel.paths, [b, a, c]);
  assert.deepEqual(byLabel.get(5).metadata, { label: 'zeta' });
  assert.deepEqual(byLabel.get(0).metadata, { label: 'alpha' });
  const globbed = buildMemmapDataset({ paths: [path.join(dir, '*.npy')] }, { maxSequenceLength: T, includeInstanceMetadata: false });
  assert.deepEqual(globbed.paths, [a, b, c]);
  assert.equal(globbed.get(0).metadata, undefined);
  // A folder is prepare-data output, listed by its manifest; a plain folder of .npy files is refused
  // (name its files or a glob), so an unfinished prepare-data folder is never taken as data.
  assert.throws(() => buildMemmapDataset({ paths: [dir] }, { maxSequenceLength: T }), /folder .* has no manifest\.json, so it is not prepare-data output; name its token files instead \(a list, or a glob such as ".*\*\.npy"\)/);
});

test('misuse: each bad dataset or config gets a specific error naming the key or file', () => {
  const dir = tmpDir();
  const ok = path.join(dir, 'ok.npy');
  tokenFile(ok, 64, 'uint16', 1);
  const shortMask = path.join(dir, 'short.mask');
  fs.writeFileSync(shortMask, new Uint8Array(16));
  const missing = path.join(dir, 'missing.npy');
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['no paths', () => new MemMapDataset({ paths: [], chunkSize: 8 }), /data\.paths: at least one path is required/],
    ['bad chunk', () => new MemMapDataset({ paths: [ok], chunkSize: 0 }), /model\.max_sequence_length: expected a positive integer, got 0/],
    ['bad dtype', () => new MemMapDataset({ paths: [ok], chunkSize: 8, memmapDtype: 'int8' as never }), /data\.memmap_dtype: expected one of uint8, uint16, uint32, uint64, got "int8"/],
    ['mask without pad', () => new MemMapDataset({ paths: [ok], chunkSize: 8, generateAttentionMask: true }), /'pad_token_id' is required for 'generate_attention_mask'/],
    ['mask count', () => new MemMapDataset({ paths: [ok], chunkSize: 8, labelMaskPaths: [] }), /data\.label_mask_paths: there must be as many label_mask_paths \(0\) as paths \(1\)/],
    ['mask size', () => new MemMapDataset({ paths: [ok], chunkSize: 8, labelMaskPaths: [shortMask] }).length, /masking file '.*short\.mask' should be the same size as '.*ok\.npy' \(2 vs 8 instances\)/],
    ['missing token file', () => new MemMapDataset({ paths: [ok, missing], chunkSize: 8 }).length, /missing\.npy: cannot read token file: ENOENT/],
    ['config: missing path', () => buildMemmapDataset({ paths: [ok, missing] }, { maxSequenceLength: 8 }), /data\.paths\[1\]: token file ".*missing\.npy" not found/],
    ['config: neither', () => buildMemmapDataset({}, { maxSequenceLength: 8 }), /data: one of data\.paths or data\.datasets is required/],
    ['config: both', () => buildMemmapDataset({ paths: [ok], datasets: { x: [ok] } }, { maxSequenceLength: 8 }), /data\.paths: paths is mutually exclusive with datasets/],
    ['config: pad direction', () => buildMemmapDataset({ paths: [ok], pad_direction: 'up' as never }, { maxSequenceLength: 8 }), /data\.pad_direction: expected right or left, got "up"/],
    ['config: empty glob', () => buildMemmapDataset({ paths: [path.join(dir, 'nothing-*.npy')] }, { maxSequenceLength: 8 }), /data\.paths\[0\]: no token files match/],
  ];
  for (const [name, fn, re] of cases) {
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof DataError, `${name}: expected DataError, got ${String(e)}`);
      assert.match(e.message, re, name);
      return true;
    });
  }
});

test('reads stay positioned: a 5 GiB sparse token file opens and reads its last instance', (t) => {
  const dir = tmpDir();
  const big = path.join(dir, 'big.npy');
  const fd = fs.openSync(big, 'w');
  const T = 2048, bytes = 5 * 1024 ** 3; // beyond Node's largest Buffer: a whole-file read could not work
  try {
    fs.ftruncateSync(fd, bytes);
    fs.writeSync(fd, Buffer.from(Uint16Array.from([7, 8, 9]).buffer), 0, 6, bytes - 2 * T);
  } catch (e) {
    fs.closeSync(fd);
    t.skip(`cannot make a sparse file here: ${(e as Error).message}`);
    return;
  }
  fs.closeSync(fd);
  const ds = new MemMapDataset({ paths: [big], chunkSize: T });
  assert.equal(ds.length, bytes / (2 * T));
  const last = ds.get(ds.length - 1).inputIds;
  assert.deepEqual(Array.from(last.subarray(0, 4)), [7, 8, 9, 0]);
  ds.close();
});
