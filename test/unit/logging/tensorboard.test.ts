// TensorBoard event files: CRC32C against published vectors, then the written file decoded by an
// independent TFRecord/protobuf decoder in this test (bitwise CRC, hand-rolled wire parser), and by
// real Python readers: TensorBoard's own loaders when importable, else Google's protobuf runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FILE_VERSION, TensorBoardWriter, eventFileName } from '../../../src/train/logging/tensorboard';
import { crc32c, frameRecord, maskCrc } from '../../../src/train/logging/tfrecord';
import { syntheticMetrics, tempDir } from './helpers';

// --- an independent decoder -------------------------------------------------------------------

/** Bit-at-a-time CRC32C: slow and obviously right, unlike the table-driven one under test. */
function crcBitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
const masked = (c: number) => (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;

type Field = { no: number; wire: number; v: bigint | Buffer };
function parseProto(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let r = 0n, shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3, wire = key & 7;
    if (wire === 0) out.push({ no, wire, v: varint() });
    else if (wire === 1) { out.push({ no, wire, v: buf.subarray(i, i + 8) }); i += 8; }
    else if (wire === 5) { out.push({ no, wire, v: buf.subarray(i, i + 4) }); i += 4; }
    else if (wire === 2) { const n = Number(varint()); out.push({ no, wire, v: buf.subarray(i, i + n) }); i += n; }
    else throw new Error(`unexpected wire type ${wire}`);
  }
  assert.equal(i, buf.length, 'message ends exactly at its length');
  return out;
}

interface DecodedEvent { wallTime: number; step: number; fileVersion?: string; values?: Record<string, number> }
function decodeEventFile(file: Buffer): DecodedEvent[] {
  const events: DecodedEvent[] = [];
  let pos = 0;
  while (pos < file.length) {
    const len = Number(file.readBigUInt64LE(pos));
    assert.equal(file.readUInt32LE(pos + 8), masked(crcBitwise(file.subarray(pos, pos + 8))), 'length CRC');
    const body = file.subarray(pos + 12, pos + 12 + len);
    assert.equal(file.readUInt32LE(pos + 12 + len), masked(crcBitwise(body)), 'data CRC');
    pos += 16 + len;
    const ev: DecodedEvent = { wallTime: NaN, step: 0 };
    for (const f of parseProto(body)) {
      if (f.no === 1 && f.wire === 1) ev.wallTime = (f.v as Buffer).readDoubleLE(0);
      else if (f.no === 2 && f.wire === 0) ev.step = Number(f.v);
      else if (f.no === 3 && f.wire === 2) ev.fileVersion = (f.v as Buffer).toString('utf8');
      else if (f.no === 5 && f.wire === 2) {
        ev.values = {};
        for (const vf of parseProto(f.v as Buffer)) {
          assert.equal(vf.no, 1, 'Summary.value');
          let tag = '', val = NaN;
          for (const x of parseProto(vf.v as Buffer)) {
            if (x.no === 1) tag = (x.v as Buffer).toString('utf8');
            else if (x.no === 2 && x.wire === 5) val = (x.v as Buffer).readFloatLE(0);
            else assert.fail(`unexpected Summary.Value field ${x.no}`);
          }
          ev.values[tag] = val;
        }
      } else assert.fail(`unexpected Event field ${f.no}/${f.wire}`);
    }
    events.push(ev);
  }
  return events;
}

// --- tests ------------------------------------------------------------------------------------

test('crc32c matches published CRC-32C vectors (RFC 3720 B.4, "123456789")', () => {
  const asc = Uint8Array.from({ length: 32 }, (_, i) => i);
  const vectors: Array<[Uint8Array, number]> = [
    [Buffer.from('123456789'), 0xe3069283],
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [asc, 0x46dd794e],
    [asc.slice().reverse(), 0x113fdb5c],
    [new Uint8Array(0), 0],
  ];
  for (const [data, want] of vectors) {
    assert.equal(crc32c(data), want);
    assert.equal(crcBitwise(data), want, 'the test decoder agrees');
  }
  // All lengths 0..40 (tail handling of the 8-byte loop) against the bitwise version.
  const rnd = Uint8Array.from({ length: 40 }, (_, i) => (i * 131 + 7) & 0xff);
  for (let n = 0; n <= 40; n++) assert.equal(crc32c(rnd.subarray(0, n)), crcBitwise(rnd.subarray(0, n)), `length ${n}`);
  // TFRecord mask of the empty-data CRC, computed by hand: rotr15(0) + 0xa282ead8.
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskCrc(0xe3069283), masked(0xe3069283));
});

test('frameRecord lays out length, masked CRCs and data', () => {
  const rec = frameRecord(Buffer.from('abc'));
  assert.equal(rec.length, 8 + 4 + 3 + 4);
  assert.equal(rec.readBigUInt64LE(0), 3n);
  assert.equal(rec.subarray(12, 15).toString(), 'abc');
  assert.equal(rec.readUInt32LE(15), masked(crcBitwise(Buffer.from('abc'))));
});

test('event file: name, file_version first, one Summary per step with float32 simple_values', () => {
  const { dir, cleanup } = tempDir();
  try {
    let t = 1_717_000_000_250;
    const w = new TensorBoardWriter(dir, { now: () => (t += 1000), hostname: 'node7' });
    assert.match(path.basename(w.path), /^events\.out\.tfevents\.1717000001\.node7\.\d+\.\d+$/);
    for (let s = 1; s <= 3; s++) w.log(s, syntheticMetrics(s, 3));
    w.log(4, { 'train/CrossEntropyLoss': NaN, big: 3e38, 'ünïcode tag': -1.5 });
    w.log(5, {}); // nothing to write
    w.close();
    w.close();
    const events = decodeEventFile(fs.readFileSync(w.path));
    assert.equal(events.length, 5);
    assert.equal(events[0]!.fileVersion, FILE_VERSION);
    assert.equal(events[0]!.wallTime, 1717000001.25);
    assert.deepEqual(events.slice(1).map((e) => e.step), [1, 2, 3, 4]);
    assert.equal(events[2]!.wallTime, 1717000003.25);
    const want = syntheticMetrics(2, 3);
    assert.deepEqual(Object.keys(events[2]!.values!), Object.keys(want));
    for (const [k, v] of Object.entries(want)) assert.equal(events[2]!.values![k], Math.fround(v), k);
    assert.ok(Number.isNaN(events[4]!.values!['train/CrossEntropyLoss']));
    assert.equal(events[4]!.values!.big, Math.fround(3e38));
    assert.equal(events[4]!.values!['ünïcode tag'], -1.5);
  } finally {
    cleanup();
  }
});

test('eventFileName pads the time and two writers in one second get different files', () => {
  assert.equal(eventFileName(12.9, 'h', 42, 3), 'events.out.tfevents.0000000012.h.42.3');
  const { dir, cleanup } = tempDir();
  try {
    const a = new TensorBoardWriter(dir, { now: () => 5000 });
    const b = new TensorBoardWriter(dir, { now: () => 5000 });
    assert.notEqual(a.path, b.path);
    a.close(); b.close();
    assert.equal(fs.readdirSync(dir).filter((f) => f.includes('tfevents')).length, 2);
  } finally {
    cleanup();
  }
});

test('real Python readers (TensorBoard, else protobuf runtime) read the event file', (t) => {
  const python = process.env.OLMO_TS_TB_PYTHON ?? '/usr/bin/python3';
  const script = path.join(__dirname, 'fixtures', 'read_tfevents.py');
  const probe = spawnSync(python, [script, '--probe'], { encoding: 'utf8' });
  const reader = probe.status === 0 ? probe.stdout.trim() : 'none';
  if (reader === 'none') {
    t.skip(`no Python event reader at ${python}: apt-get install python3-protobuf python3-crc32c ` +
      '(or set OLMO_TS_TB_PYTHON to a python with tensorboard)');
    return;
  }
  const { dir, cleanup } = tempDir();
  try {
    let now = 1_717_000_000_000;
    const w = new TensorBoardWriter(dir, { now: () => (now += 500) });
    const steps = [1, 2, 3, 10, 300000];
    for (const s of steps) w.log(s, syntheticMetrics(s, 300000));
    w.log(300001, { 'train/CrossEntropyLoss': NaN });
    w.close();
    const r = spawnSync(python, [script, w.path], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      reader: string;
      events: Array<{ step: number; wall_time: number; file_version?: string; values?: Record<string, number | string> }>;
      scalars: (Record<string, Array<[number, number | string]>> & { __migrated__?: Record<string, Array<[number, number | string]>> }) | null;
    };
    t.diagnostic(`reader: ${out.reader}`);
    assert.equal(out.events[0]!.file_version, 'brain.Event:2');
    assert.deepEqual(out.events.slice(1).map((e) => e.step), [...steps, 300001]);
    assert.equal(out.events[1]!.wall_time, 1717000001);
    for (const [i, s] of steps.entries()) {
      for (const [k, v] of Object.entries(syntheticMetrics(s, 300000))) assert.equal(out.events[i + 1]!.values![k], Math.fround(v), `${k}@${s}`);
    }
    assert.equal(out.events[6]!.values!['train/CrossEntropyLoss'], 'nan');
    if (out.scalars) {
      // TensorBoard's EventAccumulator: what the scalar dashboard plots.
      assert.deepEqual(out.scalars['train/CrossEntropyLoss']!.map((p) => p[0]), [...steps, 300001]);
      assert.equal(out.scalars['optim/learning_rate_group1']![3]![1], Math.fround(syntheticMetrics(10, 300000)['optim/learning_rate_group1']!));
      // The same values after TensorBoard's data_compat migration to 'scalars' plugin tensors.
      const mig = out.scalars.__migrated__!;
      assert.deepEqual(mig['throughput/total_tokens']!.map((p) => p[1]), steps.map((s) => s * 8192));
      assert.deepEqual(mig['train/CrossEntropyLoss']!.at(-1), [300001, 'nan']);
    }
  } finally {
    cleanup();
  }
});
