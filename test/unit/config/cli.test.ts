// `olmo-ts config show` / `config schema` as a user runs them (a real process through tsx).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadTrainConfig, trainConfigJsonSchemaText } from '../../../src/config';

const ROOT = path.join(__dirname, '../../..');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'config', ...args], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });

test('config show prints the resolved config with overrides (YAML and JSON)', () => {
  const ov = ['--run_name=cli-run', '--optimizer.learning_rate', '2e-3', 'scheduler.t_warmup=7', '--dry_run'];
  const expected = loadTrainConfig(path.join(ROOT, 'configs/official/OLMo-7B.yaml'), ['--run_name=cli-run', '--optimizer.learning_rate=2e-3', 'scheduler.t_warmup=7', '--dry_run'], { env: {} });
  const y = run('show', 'configs/official/OLMo-7B.yaml', ...ov);
  assert.equal(y.status, 0, y.stderr);
  const shown = parse(y.stdout, { version: '1.1' });
  assert.deepEqual(shown, JSON.parse(JSON.stringify(expected)));
  assert.equal(shown.wandb.name, 'cli-run');
  assert.equal(shown.optimizer.learning_rate, 2e-3);
  const j = run('show', 'configs/tiny-cpu.yaml', '--json');
  assert.equal(j.status, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).run_name, 'tiny-cpu');
});

test('config show fails with the key, value and expectation, and exit status 1', () => {
  const r = run('show', 'configs/tiny-cpu.yaml', '--optimizer.nme=adamw');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /olmo-ts: optimizer\.nme: unknown key in OptimizerConfig \(did you mean "name"\?\)/);
  assert.equal(r.stdout, '');
});

test('config schema writes the emitted schema; --help documents overrides', () => {
  const s = run('schema');
  assert.equal(s.status, 0, s.stderr);
  assert.equal(s.stdout, trainConfigJsonSchemaText());
  const h = run('show', '--help');
  assert.match(h.stdout, /--optimizer\.learning_rate=1e-3/);
  assert.match(h.stdout, /path\.choose/);
});
