// Memory a user can see: a model too large for this machine is refused before it is built (with the
// estimate, not a silent kill), training metrics carry parameters/gradients/optimizer state and the
// peak, and `olmo-ts plan` / `config show --memory` print the estimate per strategy.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { loadTrainConfig } from '../../src';
import { collectOverrideArgs } from '../../src/config/overrides';
import { Trainer } from '../../src/train/trainer';
import { CLI, assertDistFresh, removeSandboxes, sandbox, train } from '../helpers/train-process';

before(assertDistFresh);
after(removeSandboxes);

test('a model far too large for memory is refused at start with the estimate (exit 1, not killed)', async () => {
  const sb = sandbox('too-big', 4);
  const r = await train(sb.config, ['--model.d_model=16384', '--model.n_heads=128', '--model.n_layers=96', '--max_duration=1'], { quiet: true, timeoutMs: 60_000 });
  assert.equal(r.signal, null);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /this run needs about [\d.]+ (GiB|TiB) but only [\d.]+ (GiB|MiB) available \(.*\): parameters .* \+ gradients .* \+ optimizer state .* \+ activations .* = /);
  assert.match(r.stderr, /OLMO_TS_MEMORY_CHECK=warn starts it anyway/);
});

test('metrics report parameter, gradient and optimizer-state memory and the process peak (steps 1, 2, 10)', async () => {
  const sb = sandbox('mem-metrics', 20);
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs(['--max_duration=10', `--save_folder=${sb.run}`, '--save_interval=1000']));
  const trainer = new Trainer(cfg, { numThreads: 1, console: false });
  const logged = new Map<number, Record<string, number>>();
  trainer.on('step', (s: number, m: Record<string, number>) => logged.set(s, m));
  try {
    await trainer.fit();
    const bytes = trainer.model.numParams() * 4;
    assert.deepEqual([...logged].filter(([, m]) => 'System/Parameter Memory (MB)' in m).map(([s]) => s), [1, 2, 10], "OLMo's cadence");
    const m = logged.get(2)!;
    assert.equal(m['System/Parameter Memory (MB)'], bytes / 1e6);
    assert.equal(m['System/Gradient Memory (MB)'], bytes / 1e6);
    assert.equal(m['System/Optimizer State Memory (MB)'], (2 * bytes) / 1e6, 'AdamW: exp_avg and exp_avg_sq');
    assert.ok(m['System/Peak CPU Memory (MB)']! > 4 * bytes / 1e6, 'the peak includes at least the weights, gradients and state');
    assert.ok(trainer.memory && trainer.memory.plan.numParams === trainer.model.numParams(), 'the start-up estimate is kept');
    assert.match(trainer.banner.get('memory')!, /^about .* per device = parameters .* \+ gradients .* \+ optimizer state .* \+ activations /, 'the banner shows it');
    assert.match(trainer.banner.get('available')!, /the run needs \d+% of it/);
  } finally {
    trainer.close();
  }
});

test('olmo-ts plan and config show --memory print the estimate per strategy', () => {
  const sb = sandbox('plan', 2);
  const plan = spawnSync(process.execPath, [CLI, 'plan', sb.config, '--model.max_sequence_length=1024', '--device_train_microbatch_size=2'], { encoding: 'utf8' });
  assert.equal(plan.status, 0, plan.stderr);
  for (const re of [/parameters\s+[\d.]+ MiB/, /gradients\s+/, /optimizer state\s+.*AdamW/, /activations\s+.*2 × 1024 tokens, activation_checkpointing: null/, /^\s+whole_layer\s+[\d.]+ MiB\s+0\.\d\dx/m, /^\s+fine_grained\s+/m, /This machine: .* available/]) {
    assert.match(plan.stdout, re);
  }
  const show = spawnSync(process.execPath, [CLI, 'config', 'show', sb.config, '--memory', '--json', '--activation_checkpointing=whole_layer'], { encoding: 'utf8' });
  assert.equal(show.status, 0, show.stderr);
  const j = JSON.parse(show.stdout) as { perDevice: Record<string, number>; activationsByStrategy: Record<string, number> };
  assert.equal(j.perDevice.activations, j.activationsByStrategy.whole_layer);
  assert.ok(j.activationsByStrategy.whole_layer! < j.activationsByStrategy.none!);
});
