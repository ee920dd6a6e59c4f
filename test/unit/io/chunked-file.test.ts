// Files larger than one Node buffer: with the I/O piece size lowered to a few hundred bytes (the
// OLMO_TS_IO_CHUNK_BYTES test knob), safetensors files and checkpoints are written, hashed and read
// back in many pieces, byte-identical to the one-buffer format; a flipped byte past the first piece
// is caught by the streamed checksum; a tensor too large for one buffer gets a specific error.
// OLMO_TS_TEST_BIG=1 adds a test that writes, hashes and reads back a 5 GiB file.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Tensor, getRngState, keep, randn, tensor, tidy } from '../../../src';
import { MAX_BUFFER_BYTES, chunksBytes, describeChunks, hashFile, ioChunkBytes, ioStats, readAt, resetIoStats, setIoChunkBytes, writeChunksFile } from '../../../src/io/chunked-file';
import { SafetensorsError, readSafetensors, saveSafetensors, serializeSafetensors, serializeSafetensorsChunks } from '../../../src/io/safetensors';
import { CheckpointError, Checkpointer, CheckpointPayload, disposeCheckpoint, loadCheckpoint } from '../../../src/train/checkpoint';
import { realFs } from '../../../src/train/checkpoint-files';

const PIECE = 500; // not a multiple of any element size: pieces split elements
let saved = 0;
let savedEnv: string | undefined;
before(() => {
  saved = setIoChunkBytes(PIECE);
  savedEnv = process.env.OLMO_TS_IO_CHUNK_BYTES;
  process.env.OLMO_TS_IO_CHUNK_BYTES = String(PIECE); // the checkpoint writer thread reads it at start
});
after(() => {
  setIoChunkBytes(saved);
  if (savedEnv === undefined) delete process.env.OLMO_TS_IO_CHUNK_BYTES;
  else process.env.OLMO_TS_IO_CHUNK_BYTES = savedEnv;
});
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-io-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function someTensors(): Map<string, Tensor> {
  return tidy(() => {
    const m = new Map<string, Tensor>([
      ['w', randn([37, 29])], // 4292 bytes: 9 pieces
      ['d', randn([13, 11], { dtype: 'float64' })],
      ['h', randn([7, 51]).to('bfloat16')],
      ['i', tensor([1, -2, 3, 2 ** 40], { dtype: 'int64' })],
      ['b', tensor([true, false, true])],
      ['empty', randn([0, 5])],
    ]);
    for (const t of m.values()) keep(t);
    return m;
  });
}
const free = (m: Map<string, Tensor>) => { for (const t of m.values()) t.dispose(); };

test('safetensors: chunks are never joined; written and read back in pieces of at most the limit, byte-identical', () => {
  assert.equal(ioChunkBytes(), PIECE);
  const src = someTensors();
  const dir = tmpdir();
  const file = path.join(dir, 'x.safetensors');
  try {
    const chunks = serializeSafetensorsChunks(src, { format: 'test' });
    assert.equal(chunks.length, 1 + src.size, 'one chunk for the header, one per tensor');
    const whole = serializeSafetensors(src, { format: 'test' });
    assert.equal(chunksBytes(chunks), whole.byteLength);
    assert.deepEqual(describeChunks(chunks), { bytes: whole.byteLength, sha256: sha(whole) });

    resetIoStats();
    saveSafetensors(file, src, { format: 'test' });
    assert.ok(ioStats.writes >= Math.ceil(whole.byteLength / PIECE), `${ioStats.writes} writes`);
    assert.ok(ioStats.largestWrite <= PIECE && ioStats.largestWrite > 0, `largest write ${ioStats.largestWrite}`);
    assert.ok(fs.readFileSync(file).equals(whole), 'the chunked file is byte-identical to the one-buffer serialisation');
    assert.deepEqual(fs.readdirSync(dir), ['x.safetensors'], 'no temporary file left');

    resetIoStats();
    const { tensors, metadata } = readSafetensors(file);
    assert.ok(ioStats.reads > src.size + 2, `${ioStats.reads} reads`);
    assert.ok(ioStats.largestRead <= PIECE, `largest read ${ioStats.largestRead}`);
    assert.deepEqual(metadata, { format: 'test' });
    assert.deepEqual([...tensors.keys()], [...src.keys()]);
    for (const [k, t] of src) {
      const u = tensors.get(k)!;
      assert.equal(u.dtype, t.dtype, k);
      assert.deepEqual(u.shape, t.shape, k);
      assert.deepEqual(u.toList(), t.toList(), k);
    }
    free(tensors);
    const one = readSafetensors(file, { names: ['i'] });
    assert.deepEqual([...one.tensors.keys()], ['i']);
    free(one.tensors);
    assert.throws(() => readSafetensors(file, { names: ['nope'] }), /x\.safetensors: no tensor named 'nope'/);
  } finally {
    free(src);
  }
});

test('safetensors files: bad files get specific errors from positioned reads', () => {
  const dir = tmpdir();
  const src = someTensors();
  const good = serializeSafetensors(src);
  free(src);
  const cases: [string, Uint8Array, RegExp][] = [
    ['short.safetensors', Buffer.alloc(4), /short\.safetensors: too short \(4 bytes\)/],
    ['cut.safetensors', good.subarray(0, 20), /cut\.safetensors: header length \d+ does not fit a 20-byte file/],
    ['trunc.safetensors', good.subarray(0, good.byteLength - 3), /trunc\.safetensors: tensor '\w+' data .* lies outside/],
  ];
  for (const [name, bytes, re] of cases) {
    fs.writeFileSync(path.join(dir, name), bytes);
    assert.throws(() => readSafetensors(path.join(dir, name)), (e: unknown) => e instanceof SafetensorsError && re.test((e as Error).message), String(re));
  }
  assert.throws(() => readSafetensors(path.join(dir, 'absent.safetensors')), /absent\.safetensors: cannot be opened/);
});

test('a tensor larger than one Node buffer: a specific error naming the file and tensor (sparse file)', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'huge.safetensors');
  const n = MAX_BUFFER_BYTES + 8;
  const json = Buffer.from(JSON.stringify({ small: { dtype: 'U8', shape: [8], data_offsets: [0, 8] }, huge: { dtype: 'U8', shape: [n], data_offsets: [8, 8 + n] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json]));
  fs.truncateSync(file, 8 + json.length + 8 + n); // sparse: no disk blocks behind the zeros
  try {
    const small = readSafetensors(file, { names: ['small'] });
    assert.deepEqual(small.tensors.get('small')!.toList(), [0, 0, 0, 0, 0, 0, 0, 0]);
    free(small.tensors);
    assert.throws(() => readSafetensors(file), (e: unknown) => e instanceof SafetensorsError && /huge\.safetensors: tensor 'huge' \(uint8 \[\d+\]\) has \d+ bytes, more than one Node buffer can hold/.test((e as Error).message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('positioned reads and streamed hashes agree with whole-buffer ones; a short file is an error', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'bytes');
  const a = new Uint8Array(1234).map((_, i) => (i * 7) & 255);
  const b = new Uint8Array(777).map((_, i) => (i * 13 + 5) & 255);
  resetIoStats();
  realFs.writeFile(file, [a, new Uint8Array(0), b]);
  assert.equal(ioStats.writes, Math.ceil(1234 / PIECE) + Math.ceil(777 / PIECE));
  const all = Buffer.concat([a, b]);
  resetIoStats();
  assert.deepEqual(await hashFile(file), { bytes: all.byteLength, sha256: sha(all) });
  assert.equal(ioStats.hashUpdates, Math.ceil(all.byteLength / PIECE));
  const fd = fs.openSync(file, 'r');
  try {
    assert.ok(Buffer.from(readAt(fd, 1000, 1011, 'bytes')).equals(all.subarray(1000, 2011)));
    assert.throws(() => readAt(fd, 1500, 600, 'bytes'), /bytes: the file ends at byte 2011/);
  } finally {
    fs.closeSync(fd);
  }
  assert.throws(() => writeChunksFile(file, [a]), /EEXIST/, 'never overwrites');
  assert.throws(() => setIoChunkBytes(0), RangeError);
});

function payload(step: number): CheckpointPayload {
  return {
    model: someTensors(),
    optimizer: { tensors: { exp_avg: { w: keep(tidy(() => randn([37, 29]))) } }, values: { step: { w: step }, grad_norm_exp_avg: {}, groups: [{ lr: 1e-3, initial_lr: 1e-3, weight_decay: 0 }] } },
    trainer: { global_step: step, global_train_examples_seen_this_epoch: step, global_train_tokens_seen: step * 8, epoch: 0, rng: { cpu: Buffer.from(getRngState()).toString('base64') } },
    configYaml: 'run_name: big\n',
  };
}
const freePayload = (p: CheckpointPayload) => { free(p.model); for (const byName of Object.values(p.optimizer.tensors)) for (const t of Object.values(byName)) t.dispose(); };

for (const where of ['the writer thread', 'this thread'] as const) {
  test(`checkpoint written by ${where} in pieces: manifest sizes and SHA-256 match the files, round trip exact`, async () => {
    const dir = tmpdir();
    const p = payload(3);
    const ck = new Checkpointer(dir, where === 'this thread' ? { fs: realFs } : {});
    try {
      resetIoStats();
      const out = await ck.save(3, p);
      if (where === 'this thread') assert.ok(ioStats.writes > 20 && ioStats.largestWrite <= PIECE, `${ioStats.writes} writes, largest ${ioStats.largestWrite}`);
      const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      for (const [f, e] of Object.entries(m.files as Record<string, { bytes: number; sha256: string }>)) {
        const bytes = fs.readFileSync(path.join(out, f));
        assert.deepEqual(e, { bytes: bytes.byteLength, sha256: sha(bytes) }, f);
      }
      resetIoStats();
      const back = await loadCheckpoint(out);
      assert.ok(ioStats.largestRead <= PIECE && ioStats.hashUpdates > 10, `largest read ${ioStats.largestRead}, ${ioStats.hashUpdates} hash updates`);
      for (const [k, t] of p.model) assert.deepEqual(back.model.get(k)!.toList(), t.toList(), k);
      assert.deepEqual(back.optimizer.tensors.exp_avg!.w!.toList(), p.optimizer.tensors.exp_avg!.w!.toList());
      assert.equal(back.trainer.global_step, 3);
      assert.equal(back.configYaml, 'run_name: big\n');
      disposeCheckpoint(back);
    } finally {
      await ck.close();
      freePayload(p);
    }
  });
}

test('a byte flipped past the first piece of a checkpoint file is caught by the streamed SHA-256', async () => {
  const dir = tmpdir();
  const p = payload(4);
  const ck = new Checkpointer(dir);
  try {
    const out = await ck.save(4, p);
    const f = path.join(out, 'model.safetensors');
    const bytes = fs.readFileSync(f);
    assert.ok(bytes.byteLength > 4 * PIECE);
    bytes[bytes.byteLength - PIECE - 3] ^= 0x40; // in a late piece, same size
    fs.writeFileSync(f, bytes);
    await assert.rejects(loadCheckpoint(out), (e: unknown) => e instanceof CheckpointError && /model\.safetensors is corrupted: its SHA-256 does not match/.test((e as Error).message));
  } finally {
    await ck.close();
    freePayload(p);
  }
});

if (process.env.OLMO_TS_TEST_BIG === '1') {
  test('OLMO_TS_TEST_BIG: a 5 GiB safetensors file is written from chunks, hashed and read back at offsets past 4 GiB', async () => {
    const prev = setIoChunkBytes(64 * 1024 * 1024);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-big-'));
    const file = path.join(dir, 'big.safetensors');
    try {
      const GiB = 1024 * 1024 * 1024;
      const block = new Uint8Array(GiB);
      for (let i = 0; i < GiB; i += 4096) block[i] = (i / 4096) & 255;
      const header: Record<string, unknown> = {};
      for (let k = 0; k < 5; k++) header[`t${k}`] = { dtype: 'U8', shape: [GiB], data_offsets: [k * GiB, (k + 1) * GiB] };
      const json = Buffer.from(JSON.stringify(header));
      const head = Buffer.alloc(8 + json.length);
      head.writeBigUInt64LE(BigInt(json.length));
      json.copy(head, 8);
      const chunks = [head, block, block, block, block, block];
      const want = describeChunks(chunks);
      writeChunksFile(file, chunks);
      assert.equal(fs.statSync(file).size, want.bytes);
      assert.ok(want.bytes > 4 * GiB);
      assert.deepEqual(await hashFile(file), want);
      const { tensors } = readSafetensors(file, { names: ['t4'] });
      const t = tensors.get('t4')!;
      assert.deepEqual(t.shape, [GiB]);
      const back = t.toArray() as Uint8Array;
      assert.equal(Buffer.compare(Buffer.from(back.buffer, back.byteOffset, back.byteLength), Buffer.from(block.buffer)), 0);
      free(tensors);
    } finally {
      setIoChunkBytes(prev);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
