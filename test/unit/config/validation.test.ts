// Misuse table: every kind of bad config (unknown keys, wrong types, bad names, ranges, OLMo's
// cross-key rules, bad YAML) fails with a ConfigError naming the key, the value and the expectation.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildTrainConfig, ConfigError, deriveBatchSizes, loadTrainConfig, parseDuration, parseTrainConfig, parseYamlText } from '../../../src/config';

function expectError(fn: () => unknown, key: string, msg: RegExp, label: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `${label}: expected ConfigError, got ${String(e)}`);
    assert.equal(e.key, key, `${label}: key (message: ${e.message})`);
    assert.match(e.message, msg, label);
    assert.ok(e.message.startsWith(key ? `${key}: ` : ''), `${label}: message starts with the key`);
    return true;
  }, label);
}

const BAD: [string, Record<string, unknown>, string, RegExp][] = [
  ['unknown top-level key', { max_durration: 10 }, 'max_durration', /unknown key in TrainConfig \(did you mean "max_duration"\?\)/],
  ['unknown key far from any', { zzzzzzzz: 1 }, 'zzzzzzzz', /unknown key in TrainConfig \(known keys: run_name, seed, /],
  ['unknown nested key', { scheduler: { t_warmpu: 10 } }, 'scheduler.t_warmpu', /did you mean "t_warmup"/],
  ['unknown evaluator key', { evaluators: [{ label: 'a', typ: 'lm' }] }, 'evaluators.0.typ', /unknown key in EvaluatorConfig \(did you mean "type"\?\)/],
  ['unknown model key', { model: { d_modle: 8 } }, 'model.d_modle', /unknown model option/],
  ['model value checked by the model config', { model: { n_heads: 0 } }, 'model.n_heads', /got 0, expected an integer >= 1/],
  ['section given a scalar', { optimizer: 3 }, 'optimizer', /got 3, expected a mapping of OptimizerConfig options/],
  ['int given text', { seed: 'abc' }, 'seed', /got "abc", expected an integer >= 0 and <= 9007199254740991$/],
  ['negative seed', { seed: -1 }, 'seed', /got -1, expected an integer >= 0/],
  ['20-digit seed', { seed: 12345678901234567890 }, 'seed', /got 12345678901234567000, expected an integer >= 0 and <= 9007199254740991/],
  ['unsafe integer', { save_interval: 2 ** 60 }, 'save_interval', /expected an integer >= 1 and at most 9007199254740991 \(larger integers cannot be represented exactly\)/],
  ['nan learning rate', { optimizer: { learning_rate: NaN } }, 'optimizer.learning_rate', /got \.nan, expected a number >= 0/],
  ['inf max_grad_norm', { max_grad_norm: Infinity }, 'max_grad_norm', /got \.inf, expected a number > 0/],
  ['int given a fraction', { global_train_batch_size: 2.5 }, 'global_train_batch_size', /got 2.5, expected an integer >= 1/],
  ['int below range', { device_train_microbatch_size: 0 }, 'device_train_microbatch_size', /got 0, expected an integer >= 1/],
  ['float given a list', { optimizer: { learning_rate: [1] } }, 'optimizer.learning_rate', /got \[1\], expected a number >= 0/],
  ['negative lr', { optimizer: { learning_rate: -1 } }, 'optimizer.learning_rate', /got -1, expected a number >= 0/],
  ['bool given a word', { dry_run: 'maybe' }, 'dry_run', /got "maybe", expected true or false/],
  ['enum typo', { optimizer: { name: 'adam' } }, 'optimizer.name', /got "adam", expected one of "lionw", "adamw" \(did you mean "adamw"\?\)/],
  ['scheduler typo', { scheduler: { name: 'cosine' } }, 'scheduler.name', /expected one of "cosine_with_warmup", /],
  ['units', { scheduler: { units: 'epochs' } }, 'scheduler.units', /got "epochs", expected one of "steps", "tokens"/],
  ['precision', { precision: 'bf16' }, 'precision', /got "bf16", expected one of "amp_bf16", "amp_fp16", "fp32"/],
  ['non-null field set to null', { seed: null }, 'seed', /got null, expected an integer/],
  ['betas of 3', { optimizer: { betas: [0.9, 0.95, 0.99] } }, 'optimizer.betas', /expected a list of exactly 2 values/],
  ['beta of 1', { optimizer: { betas: [0.9, 1.0] } }, 'optimizer.betas.1', /got 1, expected a number >= 0 and < 1/],
  ['paths not a list', { data: { paths: 'a.npy' } }, 'data.paths', /got "a.npy", expected a list/],
  ['datasets entry not a list', { data: { datasets: { a: 'x.npy' } } }, 'data.datasets.a', /expected a list/],
  ['evaluator without label', { evaluators: [{ type: 'lm' }] }, 'evaluators.0.label', /missing required key/],
  ['evaluators not a list', { evaluators: { label: 'x' } }, 'evaluators', /expected a list/],
  ['max_duration unit', { max_duration: '10 steps' }, 'max_duration', /got "10 steps", expected a number of steps .* tokens .* epochs/],
  ['max_duration fraction of epochs', { max_duration: '1.5ep' }, 'max_duration', /expected a number of steps/],
  ['max_duration negative', { max_duration: -5 }, 'max_duration', /got -5/],
  ['OmegaConf missing marker', { run_name: '???' }, 'run_name', /a value is required but is "\?\?\?"/],
  ['warmup_min_lr at the peak', { optimizer: { learning_rate: 1e-3 }, scheduler: { warmup_min_lr: 1e-3 } }, 'scheduler.warmup_min_lr', /got 0.001, expected a value below optimizer.learning_rate \(0.001\)/],
  ['inverse sqrt without warmup', { scheduler: { name: 'inverse_sqrt_with_warmup', t_warmup: 0.5 } }, 'scheduler.t_warmup', /got 0.5, expected at least 1 for inverse_sqrt_with_warmup/],
  ['grad-clip factor without steps', { scheduler: { grad_clip_warmup_factor: 10 } }, 'scheduler.grad_clip_warmup_steps', /got null while scheduler.grad_clip_warmup_factor is set/],
  ['paths and datasets', { data: { paths: ['a'], datasets: { b: ['c'] } } }, 'data.datasets', /got both paths and datasets/],
  ['evaluator paths and datasets', { evaluators: [{ label: 'e', data: { paths: ['a'], datasets: { b: ['c'] } } }] }, 'evaluators.0.data.datasets', /got both/],
  ['wrapping strategy', { fsdp: { wrapping_strategy: 'by_blocks' } }, 'fsdp.wrapping_strategy', /did you mean "by_block"/],
  ['sharding strategy', { fsdp: { sharding_strategy: 'full_shard' } }, 'fsdp.sharding_strategy', /did you mean "FULL_SHARD"/],
  ['time limit zero', { time_limit: 0 }, 'time_limit', /got 0, expected a number > 0/],
  ['wandb tags', { wandb: { tags: 'x' } }, 'wandb.tags', /got "x", expected a list/],
];

for (const [label, raw, key, msg] of BAD) {
  test(`rejects: ${label}`, () => expectError(() => parseTrainConfig(raw), key, msg, label));
}

test('a config that is not a mapping is rejected', () => {
  expectError(() => parseTrainConfig([1, 2]), '', /got \[1,2\], expected a mapping of TrainConfig options/, 'list');
});

test('OmegaConf-style conversions: numeric and boolean text from interpolation becomes typed', () => {
  const c = buildTrainConfig({ seed: '${oc.env:SEED,\'7\'}', dry_run: '${oc.env:DRY,\'yes\'}', optimizer: { learning_rate: '1e-3' } }, [], { env: {} });
  assert.equal(c.seed, 7);
  assert.equal(c.dry_run, true);
  assert.equal(c.optimizer.learning_rate, 1e-3);
  assert.equal(parseTrainConfig({ run_name: 123 }).run_name, '123');
});

test('OLMo\'s legacy settings are rewritten: activation_checkpointing booleans, decoupled_lionw', () => {
  assert.equal(parseTrainConfig({ activation_checkpointing: true }).activation_checkpointing, 'whole_layer');
  assert.equal(parseTrainConfig({ activation_checkpointing: false }).activation_checkpointing, null);
  assert.equal(parseTrainConfig({ optimizer: { name: 'decoupled_lionw', eps: 1e-8 } }).optimizer.name, 'lionw');
});

test('max_duration follows OLMo\'s int(float(...)) parsing', () => {
  assert.deepEqual(parseDuration(739328), { unit: 'steps', value: 739328 });
  assert.deepEqual(parseDuration('2e12T'), { unit: 'tokens', value: 2e12 });
  assert.deepEqual(parseDuration(' 3.5e3 T'), { unit: 'tokens', value: 3500 });
  assert.deepEqual(parseDuration('1_000'), { unit: 'steps', value: 1000 });
  assert.deepEqual(parseDuration('99.9'), { unit: 'steps', value: 99 });
  assert.deepEqual(parseDuration('3ep'), { unit: 'epochs', value: 3 });
  assert.throws(() => parseDuration('1e30T'), /beyond 2\^53/);
  assert.throws(() => parseDuration('T'), /expected a number of steps/);
  assert.throws(() => parseDuration('1__0'), /expected a number of steps/);
});

test('batch sizes are derived as OLMo\'s train.py does, and must divide over ranks', () => {
  const c = parseTrainConfig({ global_train_batch_size: 2048, device_train_microbatch_size: 8 });
  assert.deepEqual(deriveBatchSizes(c, 8), { deviceTrainBatchSize: 256, microBatches: 32 });
  assert.deepEqual(deriveBatchSizes(parseTrainConfig({ global_train_batch_size: 20, device_train_microbatch_size: 8 }), 1), { deviceTrainBatchSize: 20, microBatches: 3 });
  expectError(() => deriveBatchSizes(c, 3), 'global_train_batch_size', /got 2048, expected a multiple of the world size \(3\)/, 'world size');
});

test('bad YAML files: syntax error with line and column, duplicate keys, non-mapping top level, missing file', () => {
  expectError(() => parseYamlText('a: 1\nb: [1, 2\n', 'x.yaml'), '', /^x\.yaml:\d+:\d+: invalid YAML/, 'syntax');
  expectError(() => parseYamlText('seed: 1\nseed: 2\n', 'd.yaml'), '', /d\.yaml:2:1: invalid YAML: Map keys must be unique/, 'duplicate');
  expectError(() => parseYamlText('- 1\n- 2\n', 'l.yaml'), '', /l\.yaml: expected a mapping of config keys at the top level, got a list/, 'list');
  assert.deepEqual(parseYamlText(''), {});
  expectError(() => loadTrainConfig('/nonexistent/x.yaml'), '', /cannot read config file \/nonexistent\/x\.yaml: ENOENT/, 'missing');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-cfg-'));
  fs.writeFileSync(path.join(dir, 'c.yaml'), 'scheduler:\n  name: cosine\n');
  expectError(() => loadTrainConfig(path.join(dir, 'c.yaml')), 'scheduler.name', /got "cosine"/, 'file value');
});
