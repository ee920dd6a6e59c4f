// Dotted command-line overrides: YAML-typed values, OLMo's clean_opt rules, merging into sections,
// list items, interpolation seeing the overridden values, and override mistakes.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { applyOverrides, buildTrainConfig, ConfigError, loadTrainConfig, parseOverride } from '../../../src/config';
import { collectOverrideArgs } from '../../../src/config/overrides';

const OLMO_7B = path.join(__dirname, '../../../configs/official/OLMo-7B.yaml');
const opts = { env: {}, onWarning: () => {} };

test('values are parsed as YAML 1.1, as OmegaConf.from_dotlist does', () => {
  const v = (s: string) => parseOverride(`--k=${s}`).value;
  assert.equal(v('3'), 3);
  assert.equal(v('1e-3'), 1e-3);
  assert.equal(v('739_328'), 739328);
  assert.equal(v('true'), true);
  assert.equal(v('True'), true);
  assert.equal(v('null'), null);
  assert.equal(v(''), null);
  assert.equal(v('2e12T'), '2e12T');
  assert.equal(v("'123'"), '123');
  assert.deepEqual(v('[0.9,0.99]'), [0.9, 0.99]);
  assert.deepEqual(v('{project: p, group: g}'), { project: 'p', group: 'g' });
});

test('keys follow OLMo\'s clean_opt: dashes stripped, inner dashes become underscores, bare flags are true', () => {
  assert.deepEqual(parseOverride('--optimizer.learning-rate=2').path, ['optimizer', 'learning_rate']);
  assert.deepEqual(parseOverride('dry_run=false'), { path: ['dry_run'], value: false, source: 'dry_run=false' });
  assert.deepEqual(parseOverride('--dry_run').value, true);
  assert.deepEqual(parseOverride('--a.b=x=y').value, 'x=y');
  assert.deepEqual(collectOverrideArgs(['--a.b', '3', '--flag', '--c=1', 'd.e=2', '--g', 'x=1']), ['--a.b=3', '--flag', '--c=1', 'd.e=2', '--g', 'x=1']);
});

test('overrides change the official config, and interpolations see the new values', () => {
  const c = loadTrainConfig(OLMO_7B, ['--run_name=mine', '--optimizer.learning_rate=1e-3', '--save_interval=50', '--scheduler.t_max=9000', '--max_duration=1e9T', '--dry_run'], opts);
  assert.equal(c.run_name, 'mine');
  assert.equal(c.wandb?.name, 'mine'); // ${run_name}
  assert.equal(c.save_folder, 'runs/mine'); // runs/${run_name}
  assert.equal(c.eval_interval, 50); // ${save_interval}
  assert.equal(c.optimizer.learning_rate, 1e-3);
  assert.equal(c.optimizer.weight_decay, 0.1); // untouched neighbours stay
  assert.equal(c.scheduler.t_max, 9000);
  assert.equal(c.max_duration, '1e9T');
  assert.equal(c.dry_run, true);
});

test('a mapping merges into its section; null removes an optional section; missing sections are created', () => {
  const c = loadTrainConfig(OLMO_7B, ['--wandb={project: other}', '--compile=null', '--fsdp.precision=pure'], opts);
  assert.equal(c.wandb?.project, 'other');
  assert.equal(c.wandb?.group, 'OLMo-7B'); // merged, not replaced
  assert.equal(c.compile, null);
  assert.equal(c.fsdp.precision, 'pure');
  assert.equal(c.fsdp.wrapping_strategy, 'by_block');
  const d = buildTrainConfig({ wandb: null }, ['--wandb.project=p', '--compile.mode=max-autotune'], opts);
  assert.equal(d.wandb?.project, 'p');
  assert.equal(d.wandb?.entity, 'ai2-llm');
  assert.equal(d.compile?.mode, 'max-autotune');
});

test('list items are addressed by index; a list value replaces the list', () => {
  const c = loadTrainConfig(OLMO_7B, ['--evaluators.2.label=my-piqa', '--evaluators.0.data.num_workers=4', '--data.paths=[a.npy, b.npy]'], opts);
  assert.equal(c.evaluators[2]!.label, 'my-piqa');
  assert.equal(c.evaluators[0]!.data.num_workers, 4);
  assert.deepEqual(c.data.paths, ['a.npy', 'b.npy']);
  const tree = applyOverrides({ a: { b: [1, 2] } }, ['a.b=[3]']);
  assert.deepEqual(tree, { a: { b: [3] } });
});

test('override mistakes are ConfigErrors naming the key', () => {
  const cases: [string[], string, RegExp][] = [
    [['--optimizer.learnig_rate=1'], 'optimizer.learnig_rate', /unknown key in OptimizerConfig \(did you mean "learning_rate"\?\)/],
    [['--evaluators.99.label=x'], 'evaluators.99', /expected a list index below 13/],
    [['--seed.x=1'], 'seed', /this key holds 6198, not a section/],
    [['--seed=abc'], 'seed', /got "abc", expected an integer/],
    [['--=3'], '', /bad override "--=3"/],
    [['--a..b=3'], '', /bad override/],
    [['--seed=[1'], 'seed', /override value "\[1" is not valid YAML/],
  ];
  for (const [ov, key, msg] of cases) {
    assert.throws(() => loadTrainConfig(OLMO_7B, ov, opts), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${ov}: ${String(e)}`);
      assert.equal(e.key, key, ov.join(' '));
      assert.match(e.message, msg, ov.join(' '));
      return true;
    });
  }
});
