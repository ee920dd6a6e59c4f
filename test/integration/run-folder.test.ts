// Run folders with real `olmo-ts train` processes: one run per folder (a second is refused by name,
// a killed run's lock is taken over), nothing written before validation, the default save_folder,
// resuming what `latest` names (not the highest number, not a copied folder), --no-resume moving an
// earlier run aside, save_overwrite checked at start, and the same-run checkpoint newer than `latest`.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  assertExit, readRecords, removeSandboxes, resumedFrom, sandbox, startTrain, stepFolders, train, waitFor,
} from '../helpers/train-process';
import { assertDistFresh } from '../helpers/train-process';

before(() => assertDistFresh());
after(() => removeSandboxes());

const LOCK = '.olmo-ts.lock';
const steps = (run: string) => stepFolders(run).map((c) => c.step);

test('two runs on one save_folder: the second is refused naming the first; a killed run\'s lock is taken over', async () => {
  const sb = sandbox('twice', 420);
  const a = startTrain(sb.config, ['--max_duration=200', '--save_interval=100']);
  await waitFor(() => fs.existsSync(path.join(sb.run, LOCK)) && readRecords(sb.run).length >= 1, 'the first run training');
  // Paused (alive, holding the lock) while the second starts, so that it cannot finish its 200 steps
  // first however fast it trains; it continues afterwards.
  a.child.kill('SIGSTOP');
  let b;
  try {
    b = await train(sb.config, ['--max_duration=200', '--save_interval=100']);
  } finally {
    a.child.kill('SIGCONT');
  }
  assertExit(b, 1, 'second run on the same folder');
  assert.match(b.stderr, new RegExp(`olmo-ts: .*/run is in use by another process: olmo-ts train .*config\\.yaml .*\\(pid ${a.child.pid} on .*\\); training runs write a run folder one at a time per folder`));
  const ra = await a.done;
  assertExit(ra, 0, 'first run');
  const recs = readRecords(sb.run);
  assert.deepEqual(recs.map((r) => r.step), Array.from({ length: 200 }, (_, i) => i + 1), 'one run\'s metrics, in order, nothing interleaved');
  assert.ok(!fs.existsSync(path.join(sb.run, LOCK)), 'the lock is gone after the run');

  // kill -9 leaves the lock; the next start finds its holder dead and takes it over.
  const c = startTrain(sb.config, ['--max_duration=400', '--save_interval=1000']);
  await waitFor(() => readRecords(sb.run).length > 200, 'the resumed run training');
  c.child.kill('SIGKILL');
  await c.done;
  assert.ok(fs.existsSync(path.join(sb.run, LOCK)), 'a killed run leaves its lock file');
  const d = await train(sb.config, ['--max_duration=220', '--save_interval=100']);
  assertExit(d, 0, 'a start after kill -9');
  assert.equal(resumedFrom(d.stdout)?.step, 200);
});

test('a refused start writes nothing: config.yaml and the folder stay as they were; a new folder is not left behind', async () => {
  const sb = sandbox('validate');
  assertExit(await train(sb.config, ['--max_duration=5']), 0, 'template run');
  const before = fs.readFileSync(path.join(sb.run, 'config.yaml'));
  const listing = fs.readdirSync(sb.run).sort();
  const r = await train(sb.config, ['--max_duration=10', '--model.d_model=64']);
  assertExit(r, 1, 'a model that does not match the checkpoint');
  assert.match(r.stderr, /'transformer\.wte\.weight' has shape \[256,32\] in the checkpoint but \[256,64\] in the model/);
  assert.deepEqual(fs.readFileSync(path.join(sb.run, 'config.yaml')), before, 'config.yaml untouched');
  assert.deepEqual(fs.readdirSync(sb.run).sort(), listing);
  const fresh = path.join(sb.dir, 'never');
  const bad = await train(sb.config, [`--save_folder=${fresh}`, `--data.paths=[${path.join(sb.dir, 'missing.npy')}]`]);
  assertExit(bad, 1, 'missing data');
  assert.ok(!fs.existsSync(fresh), 'the run folder a refused start created is removed again');
});

test('without save_folder the run goes to runs/<run_name or config name>, and the banner says where', async () => {
  const sb = sandbox('default-folder');
  const text = fs.readFileSync(sb.config, 'utf8').replace(/^save_folder: .*\n/m, '').replace(/^run_name: .*\n/m, '');
  const config = path.join(sb.dir, 'my-exp.yaml');
  fs.writeFileSync(config, text);
  const r = await train(config, ['--max_duration=2'], { quiet: false, cwd: sb.dir });
  assertExit(r, 0, 'run without save_folder');
  const run = path.join(sb.dir, 'runs', 'my-exp');
  assert.deepEqual(steps(run), [2]);
  // The banner comes before the first step, with the run folder and a fresh start.
  const banner = r.stdout.indexOf('olmo-ts train'), first = r.stdout.indexOf('[step=1/2]');
  assert.ok(banner >= 0 && banner < first, r.stdout);
  assert.match(r.stdout, new RegExp(`run folder +${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  assert.match(r.stdout, /model +28,832 parameters, 2 layers, d_model 32, fp32\n.*\n.*\n +batch +4 x 32 = 128 tokens per step/);
  assert.match(r.stdout, /start +fresh \(no checkpoint to resume\)/);
});

test('resume follows `latest`: --no-resume moves an earlier run aside, a copied step folder is ignored, save_overwrite is checked at start', async () => {
  const sb = sandbox('latest');
  assertExit(await train(sb.config, ['--max_duration=10', '--save_interval=5']), 0, 'first run');
  assert.deepEqual(steps(sb.run), [5, 10]);

  // --no-resume into a folder with an earlier run: refused without save_overwrite, nothing touched.
  const refused = await train(sb.config, ['--no-resume', '--stop_at=3', '--save_overwrite=false']);
  assertExit(refused, 1, '--no-resume without save_overwrite');
  assert.match(refused.stderr, /save_overwrite: --no-resume starts a fresh run, but .*\/run holds an earlier run \(config\.yaml, data-indices, latest, metrics\.jsonl, \.\.\.\): set save_overwrite: true to move it aside/);
  assert.equal(readRecords(sb.run).length, 10);

  // With save_overwrite the earlier run moves to a sibling folder; the new run starts clean.
  const fresh = await train(sb.config, ['--no-resume', '--stop_at=3', '--save_interval=3']);
  assertExit(fresh, 0, '--no-resume with save_overwrite');
  const moved = /moved the earlier run in \S+ aside to (\S+)/.exec(fresh.stderr)?.[1];
  assert.ok(moved && fs.existsSync(path.join(moved, 'step10')) && readRecords(moved).length === 10, fresh.stderr);
  assert.deepEqual(steps(sb.run), [3]);
  assert.deepEqual(readRecords(sb.run).map((r) => r.step), [1, 2, 3], 'no old metrics lines');

  // A plain restart continues the new run (step 3), not the old one's step 10.
  const again = await train(sb.config, ['--max_duration=6', '--save_interval=3']);
  assertExit(again, 0, 'restart');
  assert.equal(resumedFrom(again.stdout)?.step, 3);

  // A copy under another name is not a checkpoint of that step: ignored, and never pruned against.
  fs.cpSync(path.join(sb.run, 'step6'), path.join(sb.run, 'step999'), { recursive: true });
  const copied = await train(sb.config, ['--max_duration=9', '--save_interval=3']);
  assertExit(copied, 0, 'restart beside a copied step folder');
  assert.equal(resumedFrom(copied.stdout)?.step, 6);
  assert.match(copied.stderr, /ignoring \S+\/step999: \S+\/step999 is not the checkpoint of step 999: its manifest says step 6 and its train\.json global_step 6/);
  assert.deepEqual(steps(sb.run), [6, 9, 999], 'keep=2 kept this run\'s newest two; the copy is left alone');

  // `latest` moved back by hand: the later checkpoints would collide, so save_overwrite: false is
  // refused before any step is trained.
  fs.rmSync(path.join(sb.run, 'latest'));
  fs.symlinkSync('step6', path.join(sb.run, 'latest'));
  fs.rmSync(path.join(sb.run, 'step999'), { recursive: true });
  const lines = readRecords(sb.run).length;
  const collide = await train(sb.config, ['--max_duration=12', '--save_interval=3', '--save_overwrite=false', '--no-resume']);
  assertExit(collide, 1, '--no-resume, save_overwrite false');
  const behind = await train(sb.config, ['--max_duration=12', '--save_interval=3', '--save_overwrite=false', '--load_path', path.join(sb.run, 'step6')]);
  assertExit(behind, 0, 'the same-run step9 newer than `latest` is resumed (the window between finishing a checkpoint and moving `latest`)');
  assert.equal(resumedFrom(behind.stdout)?.step, 9);
  assert.match(behind.stderr, /`latest` names step6, but step9 of the same run was completed after it/);
  assert.match(behind.stderr, /resuming this run's own checkpoint \S+\/step9; load_path \(\S+\/step6\) is only used to start a fresh run/);
  assert.ok(readRecords(sb.run).length > lines);

  // A start behind checkpoints of another run (restore_dataloader etc. aside): refused at start.
  const other = sandbox('latest-other');
  assertExit(await train(other.config, ['--max_duration=8', '--save_interval=4']), 0, 'another run');
  fs.rmSync(path.join(other.run, 'latest'));
  fs.rmSync(path.join(other.run, 'step8'), { recursive: true });
  fs.cpSync(path.join(sb.run, 'step12'), path.join(other.run, 'step12'), { recursive: true });
  fs.symlinkSync('step4', path.join(other.run, 'latest'));
  const n = readRecords(other.run).length;
  const late = await train(other.config, ['--max_duration=16', '--save_interval=4', '--save_overwrite=false']);
  assertExit(late, 1, 'checkpoints beyond the start, save_overwrite false');
  assert.match(late.stderr, /save_overwrite: \S+\/run already holds step12, beyond step 4 where this run starts; saving there would fail later/);
  assert.equal(readRecords(other.run).length, n, 'nothing trained');
});

test('a run started from load_path with reset_optimizer_state warms up again, and its own restarts continue it (no second reset)', async () => {
  const sb = sandbox('reset');
  assertExit(await train(sb.config, ['--max_duration=6', '--save_interval=6']), 0, 'the model to start from');
  const from = ['--load_path', path.join(sb.run, 'step6'), '--reset_optimizer_state=true', '--max_duration=12', '--save_interval=2'];
  const full = path.join(sb.dir, 'full'), split = path.join(sb.dir, 'split');
  assertExit(await train(sb.config, [...from, `--save_folder=${full}`]), 0, 'uninterrupted');
  assertExit(await train(sb.config, [...from, `--save_folder=${split}`, '--stop_at=8']), 0, 'first part');
  const second = await train(sb.config, [...from, `--save_folder=${split}`]);
  assertExit(second, 0, 'restart');
  assert.equal(resumedFrom(second.stdout)?.step, 8, 'the restart resumes its own step 8, not load_path');
  const lr = (run: string) => readRecords(run).map((r) => r['optim/learning_rate_group0'] as number);
  const loss = (run: string) => readRecords(run).map((r) => r['train/CrossEntropyLoss']);
  // Bolt-on warmup (OLMo's BoltOnWarmupScheduler): from 0 at step 6 up to the schedule at step 6 + t_warmup (3).
  const l = lr(full);
  assert.ok(l[0]! > 0 && l[0]! < l[1]! && l[1]! < l[2]!, `warming up again: ${l.slice(0, 4)}`);
  assert.deepEqual(lr(split), l, 'the same learning rates across the restart');
  assert.deepEqual(loss(split), loss(full), 'the same losses: the optimizer state was restored, not reset again');
});
