// Console logging: OLMo's number format (expected strings produced by OLMo's Python format_float),
// the plain OLMo-style block on a non-TTY, and the live progress line on a TTY (fake stream + clock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleLogger, formatPlainBlock, formatProgressLine } from '../../../src/train/logging/console';
import { formatCount, formatDuration, formatFloat, pyFloatRepr } from '../../../src/train/logging/format';
import { METRIC } from '../../../src/train/logging/metrics';
import { FakeStream } from './helpers';

test('formatFloat matches OLMo format_float (outputs taken from Python), but rounds values below 1e-4 to 4 digits', () => {
  const table: Array<[number, string]> = [
    [0.0, '0.0'], [5e-5, '5e-05'], [1.2345e-5, '1.234e-05'], [4.351500000041142e-06, '4.352e-06'], [-0.5, '-0.5'], [0.0001, '0.0001'],
    [0.5, '0.5000'], [1.0, '1.0000'], [1.23456, '1.235'], [10.0, '10.000'], [12.3456, '12.35'],
    [100.0, '100.00'], [123.456, '123.5'], [1000.0, '1000.0'], [1234.56, '1,234'],
    [1234567.9, '1,234,567'], [3.2e-7, '3.2e-07'], [-2e-5, '-2e-05'], [NaN, 'nan'],
    [1e20, '100,000,000,000,000,000,000'], [99999.99, '99,999'], [0.00012345, '0.0001'],
  ];
  for (const [v, want] of table) assert.equal(formatFloat(v), want, `formatFloat(${v})`);
  assert.equal(pyFloatRepr(1e16), '1e+16');
  assert.equal(pyFloatRepr(123456789012345), '123456789012345.0');
  assert.equal(pyFloatRepr(-Infinity), '-inf');
});

test('formatDuration and formatCount', () => {
  assert.deepEqual([0, 42.4, 65, 3599, 3600 * 2 + 7 * 60 + 10, 86400 * 3 + 3600 * 4].map(formatDuration),
    ['0s', '42s', '1m05s', '59m59s', '2h07m', '3d04h']);
  assert.equal(formatDuration(undefined), '--');
  assert.equal(formatDuration(NaN), '--');
  assert.deepEqual([950, 12345, 4.56e6, 1.2e9, 123456].map(formatCount), ['950', '12.3k', '4.56M', '1.20B', '123k']);
});

test('plain block is OLMo log_metrics_to_console: header line, indented name=value, no optim/*', () => {
  const time = new Date(2024, 0, 31, 13, 5, 9, 42);
  const text = formatPlainBlock(20, 100, {
    [METRIC.crossEntropyLoss]: 3.45678, [METRIC.perplexity]: 31.72, [METRIC.totalGradNorm]: 0.9,
    'optim/learning_rate_group0': 4e-4, [METRIC.totalTokens]: 163840, [METRIC.tokensPerSecond]: 12345.6,
  }, { time, hostname: 'node7', localRank: 0 });
  assert.equal(text, [
    '2024-01-31 13:05:09.042\tnode7:0\tolmo.train\tINFO\t[step=20/100]',
    '    train/CrossEntropyLoss=3.457',
    '    train/Perplexity=31.72',
    '    throughput/total_tokens=163,840',
    '    throughput/device/tokens_per_second=12,345',
    '',
  ].join('\n'));
});

test('non-TTY logger prints a block only every console_log_interval steps and at the last step', () => {
  const out = new FakeStream(false);
  const log = new ConsoleLogger({ stream: out, totalSteps: 25, interval: 10, hostname: 'h', localRank: 1 });
  assert.equal(log.live, false);
  for (let s = 1; s <= 25; s++) log.log(s, { [METRIC.crossEntropyLoss]: 10 - s / 10 });
  log.close();
  const heads = out.text.split('\n').filter((l) => l.includes('[step='));
  assert.deepEqual(heads.map((l) => l.split('\t').slice(1).join('\t')),
    ['h:1\tolmo.train\tINFO\t[step=10/25]', 'h:1\tolmo.train\tINFO\t[step=20/25]', 'h:1\tolmo.train\tINFO\t[step=25/25]']);
  assert.ok(!out.text.includes('\r') && !out.text.includes('\x1b'), 'no terminal control codes in plain mode');
  assert.match(out.text, /\[step=20\/25\]\n {4}train\/CrossEntropyLoss=8\.000\n/);
});

test('TTY logger redraws one line in place with step/total, bar, loss, tokens/s and ETA', () => {
  const out = new FakeStream(true, 120);
  let now = 1_000_000;
  const log = new ConsoleLogger({ stream: out, totalSteps: 100, now: () => now, redrawMs: 0 });
  assert.equal(log.live, true);
  for (let s = 1; s <= 11; s++) {
    log.log(s, { [METRIC.crossEntropyLoss]: 5.4321, [METRIC.tokensPerSecond]: 12345, [METRIC.mfuPercent]: 41.25 });
    now += 2000; // 2 s per step
  }
  const frames = out.text.split('\r\x1b[2K').filter(Boolean);
  assert.equal(frames.length, 11, 'one redraw per step');
  assert.ok(frames.every((f) => !f.includes('\n')), 'the live line never scrolls');
  const last = frames[frames.length - 1]!;
  // 10 steps in 20 s since the first logged step -> 2 s/step, 89 steps left -> 178 s.
  assert.match(last, /^step  11\/100 \[███▎ +\] {2}11\.0% \| loss 5\.432 \| 12\.3k tok\/s \| MFU 41\.3% \| 20s < ETA 2m58s$/);
  assert.ok(last.length <= 119);
  log.info('Saving checkpoint...');
  assert.ok(out.text.endsWith(`\r\x1b[2KSaving checkpoint...\n\r\x1b[2K${last}`), 'info clears, prints, redraws');
  log.close();
  assert.ok(out.text.endsWith('\n'), 'close ends the live line');
  log.log(12, {}); // ignored after close
  assert.ok(out.text.endsWith('\n'));
});

test('TTY logger throttles redraws and keeps a scrollback line every interval', () => {
  const out = new FakeStream(true, 80);
  let now = 0;
  const log = new ConsoleLogger({ stream: out, totalSteps: 30, interval: 10, now: () => now, redrawMs: 1000 });
  for (let s = 1; s <= 30; s++) { log.log(s, { [METRIC.crossEntropyLoss]: 3 }); now += 100; }
  const kept = out.text.split('\n').slice(0, -1).map((l) => l.split('\r\x1b[2K').pop()!);
  assert.deepEqual(kept.map((l) => l.slice(0, 11)), ['step 10/30 ', 'step 20/30 ', 'step 30/30 ']);
  // 30 steps over 3 s with a 1 s throttle: a few redraws, not 30.
  const draws = out.text.split('\r\x1b[2K').filter((f) => f && !f.startsWith('\n')).length;
  assert.ok(draws >= 2 && draws <= 10, `draws=${draws}`);
  log.close();
});

test('formatProgressLine drops parts to fit a narrow terminal and works without a total', () => {
  const s = { step: 5, totalSteps: 1000, loss: 2.5, tokensPerSecond: 1e5, elapsedSeconds: 10, etaSeconds: 1990 };
  const wide = formatProgressLine(s, 150);
  assert.match(wide, /loss 2\.500 \| 100k tok\/s \| 10s < ETA 33m10s$/);
  const narrow = formatProgressLine(s, 50);
  assert.equal(narrow, 'step    5/1000 [▏            ]   0.5% | loss 2.500');
  assert.ok(narrow.length <= 50);
  assert.equal(formatProgressLine({ step: 7, loss: 1.5 }, 80), 'step 7 | loss 1.500');
  assert.equal(formatProgressLine({ step: 7, loss: 1.5, lr: 3e-3, gradNorm: 0.91234 }, 80), 'step 7 | loss 1.500 | lr 3e-3 | gnorm 0.9123');
  assert.equal(formatProgressLine({ step: 7, lr: 2.5e-4 }, 80), 'step 7 | lr 2.5e-4');
});

test('the live line shows the learning rate and gradient norm of each step', () => {
  const out = new FakeStream(true, 120);
  const log = new ConsoleLogger({ stream: out, totalSteps: 10, redrawMs: 0 });
  log.log(1, { [METRIC.crossEntropyLoss]: 5, [METRIC.totalGradNorm]: 1.25, 'optim/learning_rate_group0': 1e-3 });
  assert.match(out.text, /step  1\/10 .* \| loss 5\.000 \| lr 1e-3 \| gnorm 1\.250/);
  log.close();
});

test('the final step is not printed twice when it falls on the interval (live mode)', () => {
  const out = new FakeStream(true, 100);
  let now = 0;
  const log = new ConsoleLogger({ stream: out, totalSteps: 20, interval: 10, now: () => now, redrawMs: 0 });
  for (let s = 1; s <= 20; s++) { log.log(s, { [METRIC.crossEntropyLoss]: 3 }); now += 100; }
  log.close();
  const visible = out.text.split('\n').map((l) => l.split('\r\x1b[2K').pop()!).filter(Boolean);
  assert.deepEqual(visible.map((l) => l.slice(0, 11)), ['step 10/20 ', 'step 20/20 ']);
});

test('misuse: bad interval and bad step numbers throw RangeError', () => {
  assert.throws(() => new ConsoleLogger({ stream: new FakeStream(), interval: 0 }), /console_log_interval must be a positive integer, got 0/);
  const log = new ConsoleLogger({ stream: new FakeStream() });
  for (const bad of [-1, 1.5, NaN]) assert.throws(() => log.log(bad, {}), RangeError);
});

test('OLMo_NONINTERACTIVE forces plain lines even on a TTY', () => {
  const prev = process.env.OLMo_NONINTERACTIVE;
  process.env.OLMo_NONINTERACTIVE = '1';
  try {
    assert.equal(new ConsoleLogger({ stream: new FakeStream(true) }).live, false);
  } finally {
    if (prev === undefined) delete process.env.OLMo_NONINTERACTIVE; else process.env.OLMo_NONINTERACTIVE = prev;
  }
  assert.equal(new ConsoleLogger({ stream: new FakeStream(true) }).live, true);
});
