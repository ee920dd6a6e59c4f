// The batch-size schedule (batch_size_warmup): doubling and explicit steps, the token/step budget
// conversions against a step-by-step walk, epoch plans that tile OLMo's order, step locations that
// agree with the plans across epochs, and a misuse table of bad configs naming their key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSizeSchedule } from '../../../src/data/batch-schedule';
import { parseTrainConfig } from '../../../src/config';
import { maxSteps, maxTokens, parseDuration } from '../../../src/config/duration';

const T = 32;
const doubling = () => BatchSizeSchedule.fromConfig(parseTrainConfig({
  model: { max_sequence_length: T }, global_train_batch_size: 16, scheduler: { units: 'tokens' },
  batch_size_warmup: { start: 4, doubling_interval: '256T' },
}));

/** The reference: one step at a time. */
function walk(s: BatchSizeSchedule, tokens: number, steps: number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < steps; i++) {
    const b = s.sizeAt(tokens);
    sizes.push(b);
    tokens += b * T;
  }
  return sizes;
}

test('doubling: 4 -> 8 -> 16 instances at 256 and 512 tokens, decided by the tokens before each step', () => {
  const s = doubling();
  assert.deepEqual(s.steps, [{ tokens: 0, size: 4 }, { tokens: 256, size: 8 }, { tokens: 512, size: 16 }]);
  assert.deepEqual(walk(s, 0, 7), [4, 4, 8, 16, 16, 16, 16]);
  assert.equal(s.maxSize, 16);
  // "2097152T" with 2048-token instances is 1024 instances; the 65B recipe doubles 1024 -> 8192.
  const big = BatchSizeSchedule.fromConfig(parseTrainConfig({
    model: { max_sequence_length: 2048 }, global_train_batch_size: 8192, scheduler: { units: 'tokens' },
    batch_size_warmup: { start: '2097152T', doubling_interval: '100e9T' },
  }));
  assert.deepEqual(big.steps.map((x) => x.size), [1024, 2048, 4096, 8192]);
  assert.deepEqual(big.steps.map((x) => x.tokens), [0, 1e11, 2e11, 3e11]);
});

test('token and step budgets match a step-by-step walk (OLMo: only whole batches within the token budget)', () => {
  const s = new BatchSizeSchedule([{ tokens: 0, size: 2 }, { tokens: 300, size: 6 }, { tokens: 1000, size: 10 }], T);
  for (const start of [0, 64, 256, 960]) {
    for (let n = 0; n < 12; n++) {
      const sizes = walk(s, start, n);
      assert.equal(s.tokensAfterSteps(start, n), start + sizes.reduce((a, b) => a + b * T, 0), `tokensAfterSteps(${start}, ${n})`);
    }
    for (const budget of [start, start + 63, start + 64, 900, 1000, 2345, 5000]) {
      let t = start, n = 0;
      while (t + s.sizeAt(t) * T <= budget) { t += s.sizeAt(t) * T; n++; }
      assert.equal(s.stepsWithinTokens(start, budget), n, `stepsWithinTokens(${start}, ${budget})`);
    }
  }
  // max_duration conversions use them.
  const p = { globalStep: 3, tokensSeen: 256, tokensPerBatch: 0, batchSizes: s };
  assert.equal(maxSteps(parseDuration('2345T'), p), 3 + s.stepsWithinTokens(256, 2345));
  assert.equal(maxTokens(parseDuration(10), p), s.tokensAfterSteps(256, 7));
});

test('epoch plans tile the order and drop a last batch that does not fit; locate agrees across epochs', () => {
  const s = doubling();
  const e0 = s.epochPlan(48, 0, 0);
  assert.deepEqual([...e0.sizes], [4, 4, 8, 16, 16]);
  assert.deepEqual([...e0.starts], [0, 4, 8, 16, 32]);
  const e1 = s.epochPlan(48, 0, e0.tokensAfter);
  assert.deepEqual([...e1.sizes], [16, 16, 16]);
  const short = s.epochPlan(40, 0, 0); // 4 + 4 + 8 + 16 = 32, a second 16 does not fit
  assert.deepEqual([...short.sizes], [4, 4, 8, 16]);
  // A resume point inside the epoch continues the same plan.
  const resumed = s.epochPlan(48, 16, 16 * T);
  assert.deepEqual([...resumed.starts], [16, 32]);
  assert.equal(s.stepsForEpochs(48, 2), 8);
  const expect = [...[...e0.starts].map((st, j) => [0, st, e0.sizes[j]]), ...[...e1.starts].map((st, j) => [1, st, e1.sizes[j]])];
  expect.forEach(([epoch, start, size], i) => {
    const loc = s.locate(i + 1, 48);
    assert.deepEqual([loc.epoch, loc.start, loc.size], [epoch, start, size], `step ${i + 1}`);
  });
  assert.equal(s.locate(9, 48).epoch, 2);
  // A constant schedule is OLMo's arithmetic: step s of epoch e = batch (s-1) mod batchesPerEpoch.
  const c = BatchSizeSchedule.constant(4, T);
  assert.deepEqual(c.locate(13, 50), { epoch: 1, batch: 0, start: 0, size: 4, tokensBefore: 12 * 4 * T });
  assert.equal(s.locate(4, 48).batch, 3);
});

test('sizes must divide over the ranks: a schedule is checked against the world size', () => {
  assert.throws(() => BatchSizeSchedule.constant(6, T, { divisor: 4 }), /global_train_batch_size: batch size 6 is not a multiple of the world size 4/);
  assert.throws(() => new BatchSizeSchedule([{ tokens: 0, size: 4 }, { tokens: 100, size: 6 }], T, { divisor: 4 }), /batch_size_warmup: batch size 6 \(from 100 tokens\) is not a multiple of the world size 4/);
  assert.doesNotThrow(() => new BatchSizeSchedule([{ tokens: 0, size: 4 }, { tokens: 100, size: 8 }], T, { divisor: 4 }));
});

test('misuse table: each bad batch_size_warmup names its key and what was expected', () => {
  const base = { model: { max_sequence_length: T }, global_train_batch_size: 16, scheduler: { units: 'tokens' } };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ batch_size_warmup: { start: 4, doubling_interval: '256T' }, scheduler: { units: 'steps' } }, /scheduler\.units: got "steps", expected "tokens" with batch_size_warmup/],
    [{ batch_size_warmup: { start: 32, doubling_interval: '256T' } }, /batch_size_warmup\.start: got 32 instances, expected at most global_train_batch_size \(16\)/],
    [{ batch_size_warmup: { start: '100T', doubling_interval: '256T' } }, /batch_size_warmup\.start: got "100T", expected a multiple of max_sequence_length \(32\), e\.g\. "96T" \(3 instances\)/],
    [{ batch_size_warmup: { start: 4 } }, /batch_size_warmup\.doubling_interval: is required/],
    [{ batch_size_warmup: { start: 0, doubling_interval: '256T' } }, /batch_size_warmup\.start: got 0, expected a number of instances/],
    [{ batch_size_warmup: { start: 4, doubling_interval: 'soon' } }, /batch_size_warmup\.doubling_interval: got "soon"/],
    [{ batch_size_warmup: { schedule: [{ tokens: 0, batch_size: 4 }, { tokens: 100, batch_size: 8 }] } }, /batch_size_warmup\.schedule\.1\.batch_size: got 8 instances, expected global_train_batch_size \(16\)/],
    [{ batch_size_warmup: { schedule: [{ tokens: 10, batch_size: 16 }] } }, /batch_size_warmup\.schedule\.0\.tokens: got 10, expected 0/],
    [{ batch_size_warmup: { schedule: [{ tokens: 0, batch_size: 4 }, { tokens: 0, batch_size: 16 }] } }, /schedule\.1\.tokens: got 0, expected more than the previous step's 0/],
    [{ batch_size_warmup: { start: 4, doubling_interval: '256T', schedule: [{ tokens: 0, batch_size: 16 }] } }, /batch_size_warmup\.schedule: got a schedule together with start\/doubling_interval/],
    [{ batch_size_warmup: { start: 4, doubling: '256T' } }, /batch_size_warmup\.doubling: unknown key in BatchSizeWarmupConfig/],
  ];
  for (const [over, re] of cases) assert.throws(() => parseTrainConfig({ ...base, ...over, scheduler: { ...base.scheduler, ...(over.scheduler as object ?? {}) } }), re, JSON.stringify(over));
  const ok = parseTrainConfig({ ...base, batch_size_warmup: { schedule: [{ tokens: 0, batch_size: '128T' }, { tokens: '1e3T', batch_size: 16 }] } });
  assert.deepEqual(BatchSizeSchedule.fromConfig(ok).steps, [{ tokens: 0, size: 4 }, { tokens: 1000, size: 16 }]);
});
