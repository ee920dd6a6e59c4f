// Checks every OLMo schedule (and grad-clip warmup, bolt-on warmup, max_duration conversions)
// against OLMo's formulas as evaluated by test/fixtures/config/olmo_reference.py.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildTrainConfig, parseDuration, maxEpochs, maxSteps, maxTokens } from '../../../src/config';
import { schedulerSpec } from '../../../src/config/optimizer';
import { boltOnWarmup, buildScheduler, scheduleAt } from '../../../src/optim/scheduler';

const FIX = path.join(__dirname, '../../fixtures/config');
const REF = JSON.parse(fs.readFileSync(path.join(FIX, 'olmo-reference.json'), 'utf8')) as {
  schedules: { label: string; scheduler: Record<string, unknown>; initial_lr: number; max: number; bolt_on: [number, number] | null; clip_initial: [number, number]; rows: [number, number, number, number][] }[];
  durations: { max_duration: number | string; global_step: number; tokens_seen: number; tokens_per_batch: number; batches_per_epoch: number; max_steps: number; max_tokens: number; max_epochs: number }[];
};

// Same double-precision operations in the same order; only Math.cos/sqrt vs libm may differ by an ulp.
function close(actual: number, expected: number, what: string): void {
  const tol = 4 * Number.EPSILON * Math.max(Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, OLMo gives ${expected}`);
}

test('stored reference values are what the Python reference script prints', { skip: !fs.existsSync('/usr/bin/python3') && 'no /usr/bin/python3' }, () => {
  const r = spawnSync('/usr/bin/python3', [path.join(FIX, 'olmo_reference.py')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), REF, 'regenerate olmo-reference.json with the command at the top of olmo_reference.py');
});

test('the reference covers every scheduler name, both units, t_max, grad-clip warmup, warmup_min_lr and bolt-on', () => {
  const names = new Set(REF.schedules.map((c) => c.scheduler.name));
  for (const n of ['cosine_with_warmup', 'linear_with_warmup', 'inverse_sqrt_with_warmup', 'max_scheduler', 'constant']) assert.ok(names.has(n), n);
  assert.ok(REF.schedules.some((c) => c.scheduler.units === 'tokens'));
  assert.ok(REF.schedules.some((c) => c.scheduler.t_max !== null));
  assert.ok(REF.schedules.some((c) => c.scheduler.grad_clip_warmup_factor !== null));
  assert.ok(REF.schedules.some((c) => c.scheduler.warmup_min_lr !== null));
  assert.ok(REF.schedules.some((c) => c.bolt_on !== null));
});

for (const c of REF.schedules) {
  test(`schedule matches OLMo at every point: ${c.label}`, () => {
    const cfg = schedulerSpec.parse(c.scheduler, 'scheduler');
    let s = buildScheduler(cfg);
    if (c.bolt_on) s = boltOnWarmup(s, c.bolt_on[0], c.bolt_on[1]);
    const [norm, ratio] = c.clip_initial;
    for (const [t, lr, clipNorm, clipRatio] of c.rows) {
      close(s.lr(c.initial_lr, t, c.max), lr, `lr at ${t}`);
      assert.equal(s.maxGradNorm(norm, t, c.max), clipNorm, `max_grad_norm at ${t}`);
      assert.equal(s.maxGradNormRatio(ratio, t, c.max), clipRatio, `max_grad_norm_ratio at ${t}`);
    }
  });
}

test('max_duration conversions match OLMo Trainer.max_steps / max_tokens / max_epochs', () => {
  for (const d of REF.durations) {
    const dur = parseDuration(d.max_duration);
    const p = { globalStep: d.global_step, tokensSeen: d.tokens_seen, tokensPerBatch: d.tokens_per_batch, batchesPerEpoch: d.batches_per_epoch };
    assert.equal(maxSteps(dur, p), d.max_steps, `max_steps for ${JSON.stringify(d.max_duration)}`);
    assert.equal(maxTokens(dur, p), d.max_tokens, `max_tokens for ${JSON.stringify(d.max_duration)}`);
    assert.equal(maxEpochs(dur), d.max_epochs, `max_epochs for ${JSON.stringify(d.max_duration)}`);
  }
});

test('scheduleAt uses tokens seen and the token budget when units is tokens', () => {
  const cfg = buildTrainConfig({
    max_duration: '1e6T', max_grad_norm: 1.0, model: { max_sequence_length: 100 }, global_train_batch_size: 10,
    optimizer: { learning_rate: 1e-3 },
    scheduler: { name: 'linear_with_warmup', units: 'tokens', t_warmup: 1000, alpha_f: 0, grad_clip_warmup_steps: 5000, grad_clip_warmup_factor: 3 },
  });
  const at = (tokensSeen: number) => scheduleAt(cfg, { globalStep: tokensSeen / 1000, tokensSeen, tokensPerBatch: 1000 });
  assert.deepEqual(at(0), { lr: 1e-4, maxGradNorm: 3, maxGradNormRatio: null, current: 0, max: 1e6 });
  const mid = at(500_500);
  assert.equal(mid.current, 500_500);
  close(mid.lr, 1e-3 - 1e-3 * (499_500 / 999_000), 'lr halfway');
  assert.equal(mid.maxGradNorm, 1);
  assert.equal(at(1e6).lr, 0);
});

test('scheduleAt in steps follows max_duration in tokens as OLMo converts it', () => {
  const cfg = buildTrainConfig({
    max_duration: '2000T', model: { max_sequence_length: 10 }, global_train_batch_size: 10,
    optimizer: { learning_rate: 1.0 }, scheduler: { name: 'cosine_with_warmup', t_warmup: 0, alpha_f: 0 },
  });
  // 2000 tokens / 100 tokens per batch = 20 steps: halfway through the cosine the LR is 0.5.
  const v = scheduleAt(cfg, { globalStep: 10, tokensSeen: 1000, tokensPerBatch: 100 });
  assert.equal(v.max, 20);
  close(v.lr, 0.5, 'lr at step 10 of 20');
});
