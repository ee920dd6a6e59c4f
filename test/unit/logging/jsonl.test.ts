// metrics.jsonl: round trip (NaN/inf included), survival of a SIGKILLed writer, tolerance of a
// truncated last line, corruption errors, append after a crash, and folding of resumed steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlWriter, type MetricsRecord, foldResumed, readMetricsJsonl } from '../../../src/train/logging/jsonl';
import { tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '../../..');

test('round trip: every step and value comes back, NaN and ±inf included, keys step/time first', () => {
  const { dir, cleanup } = tempDir();
  try {
    let t = 1_700_000_000_000;
    const w = new JsonlWriter(dir, { now: () => (t += 1500) });
    const want: Array<Record<string, number>> = [
      { 'train/CrossEntropyLoss': 10.5, 'optim/learning_rate_group0': 1e-7, 'throughput/total_tokens': 4096 },
      { 'train/CrossEntropyLoss': NaN, 'optim/total_grad_norm': Infinity, 'x/neg': -Infinity },
      { 'train/CrossEntropyLoss': 0.1 + 0.2 }, // exact double round trip
    ];
    want.forEach((m, i) => w.log(i + 1, m));
    w.close();
    w.close(); // idempotent
    w.log(99, { a: 1 }); // ignored after close
    const text = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
    assert.equal(text.split('\n').length, 4);
    assert.match(text.split('\n')[0]!, /^\{"step":1,"time":1700000001\.5,"train\/CrossEntropyLoss":10\.5,/);
    assert.match(text, /"train\/CrossEntropyLoss":"NaN","optim\/total_grad_norm":"Infinity","x\/neg":"-Infinity"/);
    const { records, truncatedLastLine } = readMetricsJsonl(dir);
    assert.equal(truncatedLastLine, false);
    assert.deepEqual(records.map((r) => r.step), [1, 2, 3]);
    assert.deepEqual(records.map((r) => r.time), [1700000001.5, 1700000003, 1700000004.5]);
    want.forEach((m, i) => assert.deepEqual(records[i]!.metrics, m));
  } finally {
    cleanup();
  }
});

test('a SIGKILLed writer leaves every logged line on disk (no user-space buffering)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const script = `
      const { JsonlWriter } = require(${JSON.stringify(path.join(ROOT, 'src/train/logging/jsonl.ts'))});
      const w = new JsonlWriter(${JSON.stringify(dir)});
      for (let s = 1; s <= 50; s++) w.log(s, { 'train/CrossEntropyLoss': 10 - s / 10 });
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const { records } = readMetricsJsonl(dir);
    assert.equal(records.length, 50);
    assert.equal(records[49]!.metrics['train/CrossEntropyLoss'], 5);
  } finally {
    cleanup();
  }
});

test('reader skips and reports a truncated last line; a bad middle line is an error naming the line', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'metrics.jsonl');
    const good = '{"step":1,"time":5,"a":1}\n{"step":2,"time":6,"a":2}\n';
    for (const tail of ['{"step":3,"time":7,"a":', '{"st', '{"step":3,"time":7,"a":"Na']) {
      fs.writeFileSync(file, good + tail);
      const log = readMetricsJsonl(file);
      assert.equal(log.truncatedLastLine, true, tail);
      assert.deepEqual(log.records.map((r) => r.step), [1, 2]);
    }
    fs.writeFileSync(file, good + '{"step":3,"time":7,"a":3}'); // complete JSON, newline lost: kept
    assert.deepEqual(readMetricsJsonl(file).records.map((r) => r.step), [1, 2, 3]);
    fs.writeFileSync(file, '');
    assert.deepEqual(readMetricsJsonl(file), { records: [], truncatedLastLine: false });
    const bad: Array<[string, RegExp]> = [
      ['{"step":1,"time":5,"a":1}\n{"step":2,"ti\n{"step":3,"time":7}\n', /metrics\.jsonl:2: bad metrics line/],
      ['{"step":1,"time":5,"a":1}\n[1,2]\n', /metrics\.jsonl:2: bad metrics line \(not a JSON object\)/],
      ['{"time":5}\n', /metrics\.jsonl:1: bad metrics line \(missing numeric "step" or "time"\)/],
      ['{"step":1,"time":5,"a":"high"}\n', /metric 'a' is not a number: "high"/],
    ];
    for (const [text, re] of bad) {
      fs.writeFileSync(file, text);
      assert.throws(() => readMetricsJsonl(file), re);
    }
  } finally {
    cleanup();
  }
});

test('append mode cuts a crash-truncated last line before writing; overwrite mode starts fresh', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'metrics.jsonl');
    fs.writeFileSync(file, '{"step":1,"time":5,"a":1}\n{"step":2,"time":6,"a":2}\n{"step":3,"tim');
    const w = new JsonlWriter(dir, { now: () => 7000 });
    w.log(3, { a: 3 });
    w.close();
    const log = readMetricsJsonl(dir);
    assert.equal(log.truncatedLastLine, false);
    assert.deepEqual(log.records.map((r) => [r.step, r.metrics.a]), [[1, 1], [2, 2], [3, 3]]);
    fs.writeFileSync(file, '{"step":1,"ti'); // nothing but a fragment
    new JsonlWriter(dir).close();
    assert.equal(fs.readFileSync(file, 'utf8'), '');
    fs.writeFileSync(file, '{"step":1,"time":5,"a":1}\n');
    const o = new JsonlWriter(path.join(dir, 'metrics.jsonl'), { mode: 'overwrite', now: () => 9000 });
    o.log(1, { a: 10 });
    o.close();
    assert.deepEqual(readMetricsJsonl(file).records, [{ step: 1, time: 9, metrics: { a: 10 } }]);
  } finally {
    cleanup();
  }
});

test('foldResumed keeps the latest attempt of each step after a resume from an earlier checkpoint', () => {
  const rec = (step: number, attempt: number): MetricsRecord => ({ step, time: step, metrics: { attempt } });
  const records = [1, 2, 3, 4, 5, 6].map((s) => rec(s, 1)).concat([4, 5, 6, 7].map((s) => rec(s, 2)), [7, 8].map((s) => rec(s, 3)));
  assert.deepEqual(foldResumed(records).map((r) => `${r.step}:${r.metrics.attempt}`),
    ['1:1', '2:1', '3:1', '4:2', '5:2', '6:2', '7:3', '8:3']);
  assert.deepEqual(foldResumed([]), []);
});

test('misuse: reserved metric names and bad steps throw', () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = new JsonlWriter(dir);
    assert.throws(() => w.log(1, { step: 3 }), /metric name 'step' is reserved/);
    assert.throws(() => w.log(-2, {}), RangeError);
    w.close();
    assert.throws(() => readMetricsJsonl(path.join(dir, 'nope')), /ENOENT/);
  } finally {
    cleanup();
  }
});
