// Fault tolerance with real `olmo-ts train` processes: SIGTERM/SIGINT (and a second signal),
// time_limit, a kill -9 loop at random moments, NaN/inf (stop or skip), a table of damaged or
// mismatched checkpoints, and a disk that fills up while saving. Each ends with the losses or files checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { collectOverrideArgs } from '../../src/config/overrides';
import { loadTrainConfig } from '../../src/config';
import { noGrad } from '../../src/tensor/autograd';
import { NonFiniteError, Trainer } from '../../src/train/trainer';
import {
  CLI, ROOT, RunResult, assertDistFresh, assertExit, assertSameLosses, checkpointProblem, modelHash, readF32Safetensors,
  readLosses, readRecords, removeSandboxes, resumedFrom, sandbox, sleep, startTrain, stepFolders, tempEntries, train, waitFor,
} from '../helpers/train-process';

before(() => assertDistFresh());
after(() => removeSandboxes());

const lines = (run: string) => readRecords(run).length;
const lastStep = (run: string) => { const r = readRecords(run); return r.length ? (r[r.length - 1]!.step as number) : 0; };

for (const [sig, at] of [['SIGTERM', 9], ['SIGINT', 23]] as const) {
  test(`${sig} mid-run: the step finishes, a checkpoint of it is saved, exit 75; a restart ends with the uninterrupted losses`, async () => {
    const sb = sandbox(sig.toLowerCase());
    const args = ['--max_duration=120', '--save_interval=1000'];
    const fullDir = path.join(sb.dir, 'full');
    assertExit(await train(sb.config, [...args, `--save_folder=${fullDir}`]), 0, 'uninterrupted run');
    const p = startTrain(sb.config, args);
    await waitFor(() => lines(sb.run) >= at, `step ${at}`);
    p.child.kill(sig);
    const r = await p.done;
    assertExit(r, 75, `run stopped by ${sig}`);
    assert.match(r.stderr, new RegExp(`${sig} received: finishing this step, then saving a checkpoint`));
    const stopped = Number(/signal at step (\d+);/.exec(r.stdout)?.[1]);
    assert.ok(stopped >= at && stopped < 120, `stopped at step ${stopped}`);
    assert.equal(lastStep(sb.run), stopped, 'the step in flight was finished and logged, and nothing after it');
    assert.deepEqual(stepFolders(sb.run).map((c) => c.step), [stopped], 'one checkpoint, of the last finished step');
    assert.equal(checkpointProblem(path.join(sb.run, `step${stopped}`)), null);
    const again = await train(sb.config, args);
    assertExit(again, 0, 'restart');
    assert.equal(resumedFrom(again.stdout)?.step, stopped);
    assertSameLosses(readLosses(sb.run), readLosses(fullDir), `${sig} + resume`);
    assert.equal(modelHash(path.join(sb.run, 'step120')), modelHash(path.join(fullDir, 'step120')));
  });
}

test('a second SIGTERM exits at once (128+15) without a checkpoint; a second SIGINT with 130', async () => {
  // A model big enough that one step takes about a second, so both signals land inside one step.
  const slow = ['--model.d_model=256', '--model.n_heads=4', '--model.n_layers=4', '--global_train_batch_size=16',
    '--device_train_microbatch_size=16', '--model.max_sequence_length=128', '--max_duration=10', '--save_interval=1000'];
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const sb = sandbox(`twice-${sig}`);
    const p = startTrain(sb.config, slow);
    await waitFor(() => lines(sb.run) >= 1, 'step 1');
    await sleep(150); // inside step 2
    p.child.kill(sig);
    await sleep(100);
    const logged = lastStep(sb.run);
    p.child.kill(sig);
    const r = await p.done;
    assertExit(r, code, `two ${sig}s`);
    assert.match(r.stderr, new RegExp(`second ${sig}, exiting now without a checkpoint`));
    assert.deepEqual(stepFolders(sb.run), [], 'no checkpoint was written');
    // "At once": at the first turn of the event loop, at the latest when the step in flight ends
    // (its native work cannot be interrupted), so at most that step is logged. Not a timed
    // assertion: on a loaded machine a step can take several seconds.
    assert.ok(lastStep(sb.run) <= logged + 1, `trained on to step ${lastStep(sb.run)} after the second signal at step ${logged}`);
  }
});

test('time_limit stops from inside like a signal (exit 75 with a checkpoint); restarts until done match the uninterrupted run', async () => {
  const sb = sandbox('timelimit');
  const args = ['--max_duration=150', '--save_interval=1000'];
  const fullDir = path.join(sb.dir, 'full');
  assertExit(await train(sb.config, [...args, `--save_folder=${fullDir}`]), 0, 'uninterrupted run');
  // A limit of about a quarter of the uninterrupted training time: a few restarts however fast or
  // loaded the machine is (a fixed limit needed 20+ restarts on a busy box).
  const times = readRecords(fullDir).map((r) => r.time as number).filter((t) => typeof t === 'number');
  const limit = Math.max(0.05, (times[times.length - 1]! - times[0]!) / 4);
  let stops = 0;
  for (;;) {
    const r = await train(sb.config, [...args, `--time_limit=${limit.toFixed(3)}`]);
    if (r.code === 0) break;
    assertExit(r, 75, 'time_limit');
    assert.match(r.stdout, /time_limit at step (\d+);/);
    assert.equal(checkpointProblem(path.join(sb.run, `step${lastStep(sb.run)}`)), null, 'checkpoint of the last step');
    assert.ok(++stops < 20, 'time_limit runs make progress');
  }
  assert.ok(stops >= 1, 'the time limit was hit at least once');
  assertSameLosses(readLosses(sb.run), readLosses(fullDir), 'time_limit + resumes');
});

test('kill -9 at random moments, 12+ times (during checkpoint writes too): every start resumes from the newest complete checkpoint; the end matches an uninterrupted run', async (t) => {
  const sb = sandbox('kill9', 420);
  const args = ['--max_duration=400', '--save_interval=1', '--save_num_checkpoints_to_keep=2'];
  const fullDir = path.join(sb.dir, 'full');
  const tFull = Date.now();
  assertExit(await train(sb.config, [...args, '--save_interval=100', `--save_folder=${fullDir}`]), 0, 'uninterrupted run');
  // Kill windows scale with this machine's speed: at most 1/20 of an uninterrupted run (start-up
  // included) after the start-up, so a fast machine still needs 12+ starts to finish.
  const window = Math.max(100, Math.min(1000, (Date.now() - tFull) / 20));
  const log: string[] = [];
  let kills = 0, midWrite = 0, beforeTraining = 0;
  let startupBias = 0; // grows when kills keep landing before training starts (a loaded machine starts slower)
  while (kills < 25 && (kills < 12 || midWrite < 3)) {
    const complete = stepFolders(sb.run).filter((c) => checkpointProblem(c.dir) === null);
    const expected = complete.length ? complete[complete.length - 1]!.step : 0;
    const recordsBefore = lines(sb.run);
    const delay = 200 + startupBias + Math.floor(Math.random() * window);
    const p = startTrain(sb.config, args);
    await sleep(delay);
    p.child.kill('SIGKILL');
    const r = await p.done;
    if (r.code === 0) break; // finished before the kill
    assert.equal(r.signal, 'SIGKILL', `exit ${r.code}: ${r.stderr}`);
    kills++;
    // What the killed process left: every step{N}/ must be complete, only temp names may be partial.
    for (const c of stepFolders(sb.run)) {
      const problem = checkpointProblem(c.dir);
      assert.equal(problem, null, `after kill ${kills} (${delay} ms) ${c.dir} looks like a checkpoint but: ${problem}`);
    }
    const temps = tempEntries(sb.run);
    if (temps.length) midWrite++;
    const latest = path.join(sb.run, 'latest');
    if (fs.existsSync(latest)) assert.equal(checkpointProblem(fs.realpathSync(latest)), null, '`latest` points at a complete checkpoint');
    const from = resumedFrom(r.stdout);
    if (from) assert.equal(from.step, expected, `start ${kills} resumed from step ${from.step}, the newest complete checkpoint is ${expected}`);
    else if (expected && r.stdout.includes('resumed')) assert.fail(`unparsed resume line: ${r.stdout}`);
    assert.ok(!from || /^step\d+$/.test(path.basename(from.dir)), `resumed from a temp folder ${from?.dir}`);
    const fresh = readRecords(sb.run).slice(recordsBefore);
    if (fresh.length) assert.equal(fresh[0]!.step, expected + 1, `start ${kills} continued at step ${fresh[0]!.step}, expected ${expected + 1}`);
    else { beforeTraining++; startupBias += 150; }
    log.push(`${delay}ms:${expected}->${lastStep(sb.run)}${temps.length ? '*' : ''}`);
  }
  t.diagnostic(`${kills} kills, ${midWrite} during a checkpoint write (*), ${beforeTraining} before the first step: ${log.join(' ')}`);
  assert.ok(kills >= 12, `only ${kills} kills before the run finished`);
  assert.ok(midWrite >= 3, `only ${midWrite} kills landed during a checkpoint write`);
  const last = await train(sb.config, [...args, '--save_interval=100']);
  assertExit(last, 0, 'final run');
  assert.deepEqual(tempEntries(sb.run), [], 'the final start removed the temp folders of killed writers');
  assertSameLosses(readLosses(sb.run), readLosses(fullDir), 'kill -9 loop');
  assert.equal(modelHash(path.join(sb.run, 'step400')), modelHash(path.join(fullDir, 'step400')), 'final weights bitwise equal');
});

test('NaN loss: exit 3 naming the step and the quantity; the last checkpoint stays finite', async () => {
  const sb = sandbox('nan');
  const r = await train(sb.config, ['--optimizer.learning_rate=1e30', '--save_interval=1', '--save_num_checkpoints_to_keep=-1']);
  assertExit(r, 3, 'huge learning rate');
  assert.match(r.stderr, /olmo-ts: step 2: train\/CrossEntropyLoss is NaN \(not finite\); stopping before the optimizer step/);
  assert.deepEqual(stepFolders(sb.run).map((c) => c.step), [1], 'no checkpoint of the failed step');
  for (const [name, v] of readF32Safetensors(path.join(sb.run, 'step1', 'model.safetensors'))) {
    assert.ok(v.every(Number.isFinite), `step1 ${name} is finite`);
  }
});

test('--on-nonfinite skip: the run continues to the end counting train/skipped_steps, and skipped steps change no weight', async () => {
  const sb = sandbox('skip');
  const r = await train(sb.config, ['--optimizer.learning_rate=1e30', '--save_interval=1', '--save_num_checkpoints_to_keep=-1', '--max_duration=6', '--on-nonfinite', 'skip']);
  assertExit(r, 0, 'skip');
  assert.match(r.stderr, /step 2: non-finite loss or gradient, step skipped \(1 so far\)/);
  assert.match(r.stdout, /5 steps skipped/);
  const skipped = readRecords(sb.run).map((x) => [x.step, x['train/skipped_steps']]);
  assert.deepEqual(skipped, [[1, undefined], [2, 1], [3, 2], [4, 3], [5, 4], [6, 5]]);
  // Every step after the first was skipped, so steps 2..6 hold step 1's weights, bit for bit.
  const h1 = modelHash(path.join(sb.run, 'step1'));
  for (const s of [2, 6]) assert.equal(modelHash(path.join(sb.run, `step${s}`)), h1, `step${s} weights`);
  assert.equal(JSON.parse(fs.readFileSync(path.join(sb.run, 'step6', 'train.json'), 'utf8')).skipped_steps, 5, 'the count is checkpointed');
});

test('Trainer API: an inf gradient names the parameter; with skip a one-off fault is skipped and training goes on', async () => {
  const sb = sandbox('gradinf');
  const poison = 'transformer.blocks.1.ff_out.weight';
  const run = async (onNonFinite: 'error' | 'skip', folder: string) => {
    const cfg = loadTrainConfig(sb.config, collectOverrideArgs(['--max_duration=8', `--save_folder=${folder}`, '--save_interval=1000']));
    const trainer = new Trainer(cfg, { numThreads: 1, console: false, onNonFinite });
    trainer.once('step', () => {
      const opt = trainer.optimizer;
      const clip = opt.clipGradsAndCollectMetrics.bind(opt);
      opt.clipGradsAndCollectMetrics = (step: number) => {
        if (step === 3) {
          const p = trainer.model.namedParameters().find((x) => x.name === poison)!;
          noGrad(() => p.tensor.grad!.mul_(0).add_(Infinity));
        }
        return clip(step);
      };
    });
    try {
      return await trainer.fit();
    } finally {
      trainer.close();
    }
  };
  await assert.rejects(run('error', path.join(sb.dir, 'err')), (e: unknown) => {
    assert.ok(e instanceof NonFiniteError);
    assert.equal(e.step, 3);
    assert.equal(e.quantity, `grad/${poison} norm`);
    assert.match(e.message, /^step 3: grad\/transformer\.blocks\.1\.ff_out\.weight norm is Infinity/);
    return true;
  });
  const r = await run('skip', path.join(sb.dir, 'skip'));
  assert.equal(r.skippedSteps, 1);
  assert.equal(r.globalStep, 8);
  assert.equal(r.losses.length, 7);
  assert.ok(r.losses.every(Number.isFinite), `finite losses after the skip: ${r.losses}`);
  const recs = readRecords(path.join(sb.dir, 'skip'));
  assert.deepEqual(recs.find((x) => x.step === 3), { ...recs.find((x) => x.step === 3), 'train/skipped_steps': 1 });
  assert.equal(recs.find((x) => x.step === 3)!['train/CrossEntropyLoss'], undefined, 'no loss logged for the skipped step');
  assert.equal(recs.find((x) => x.step === 8)!['train/skipped_steps'], 1);
});

// ---- damaged and mismatched checkpoints ----

/** Replaces a file of a checkpoint and updates the manifest so only the content is wrong (not the checksum). */
function rewriteConsistently(ckpt: string, file: string, data: Buffer): void {
  fs.writeFileSync(path.join(ckpt, file), data);
  const mf = path.join(ckpt, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
  m.files[file] = { bytes: data.byteLength, sha256: createHash('sha256').update(data).digest('hex') };
  fs.writeFileSync(mf, JSON.stringify(m));
}
/** Changes one tensor's dtype in a safetensors header to another of the same width (F32 -> I32). */
function retypeTensor(file: string, name: string, from: string, to: string): Buffer {
  const b = Buffer.from(fs.readFileSync(file));
  const n = Number(b.readBigUInt64LE(0));
  const header = b.subarray(8, 8 + n).toString('utf8');
  const at = header.indexOf(`"${name}"`);
  const d = header.indexOf(`"dtype":"${from}"`, at);
  assert.ok(at >= 0 && d > at, `${name} ${from} in ${file}`);
  b.write(`"dtype":"${to}"`, 8 + d, 'utf8');
  return b;
}

interface BadCase {
  name: string;
  damage: (ck: string, sb: ReturnType<typeof sandbox>, run: string) => string[] | void;
  error: RegExp;
}
const BAD: BadCase[] = [
  { name: 'truncated model file', damage: (ck) => { const f = path.join(ck, 'model.safetensors'); fs.truncateSync(f, fs.statSync(f).size >> 1); }, error: /model\.safetensors is truncated or padded: \d+ bytes, the manifest says \d+/ },
  { name: 'one flipped byte', damage: (ck) => { const f = path.join(ck, 'optim.safetensors'); const b = fs.readFileSync(f); b[b.length - 5] ^= 0x40; fs.writeFileSync(f, b); }, error: /optim\.safetensors is corrupted: its SHA-256 does not match the manifest/ },
  { name: 'missing file', damage: (ck) => fs.unlinkSync(path.join(ck, 'train.json')), error: /train\.json is missing from the checkpoint/ },
  { name: 'garbled manifest', damage: (ck) => fs.writeFileSync(path.join(ck, 'manifest.json'), '{"format": 1, "files": {'), error: /manifest\.json is unreadable/ },
  { name: 'future format', damage: (ck) => { const f = path.join(ck, 'manifest.json'); const m = JSON.parse(fs.readFileSync(f, 'utf8')); m.format = 99; fs.writeFileSync(f, JSON.stringify(m)); }, error: /has checkpoint format 99; this olmo-ts reads format 1/ },
  { name: 'invalid train.json (checksum consistent)', damage: (ck) => rewriteConsistently(ck, 'train.json', Buffer.from('{"global_step": 5,')), error: /train\.json is not valid JSON/ },
  { name: 'train.json is null (checksum consistent)', damage: (ck) => rewriteConsistently(ck, 'train.json', Buffer.from('null')), error: /step5\/train\.json: is null, expected an object/ },
  { name: 'a manifest with "files": null', damage: (ck) => { const f = path.join(ck, 'manifest.json'); const m = JSON.parse(fs.readFileSync(f, 'utf8')); m.files = null; fs.writeFileSync(f, JSON.stringify(m)); }, error: /step5\/manifest\.json: field "files" is null, expected an object/ },
  { name: 'wrong model shape (d_model 64)', damage: () => ['--model.d_model=64'], error: /'transformer\.wte\.weight' has shape \[256,32\] in the checkpoint but \[256,64\] in the model/ },
  { name: 'a different model (3 layers)', damage: () => ['--model.n_layers=3'], error: /the checkpoint has no weights for parameter 'transformer\.blocks\.2\./ },
  { name: 'wrong dtype (int32 weights)', damage: (ck) => rewriteConsistently(ck, 'model.safetensors', retypeTensor(path.join(ck, 'model.safetensors'), 'transformer.wte.weight', 'F32', 'I32')), error: /'transformer\.wte\.weight' is int32 in the checkpoint but float32 in the model/ },
  {
    name: 'optimizer state of another shape (model weights fine)',
    damage: (ck, sb) => {
      const other = path.join(sb.dir, 'wide');
      const r = spawnSync(process.execPath, [CLI, 'train', sb.config, '--threads', '1', '--quiet', `--save_folder=${other}`, '--max_duration=1', '--model.d_model=64'], { cwd: ROOT });
      assert.equal(r.status, 0, r.stderr.toString());
      rewriteConsistently(ck, 'optim.safetensors', fs.readFileSync(path.join(other, 'step1', 'optim.safetensors')));
    },
    error: /optimizer exp_avg of 'transformer\.blocks\.0\.att_proj\.weight' has shape \[192,64\] in the checkpoint but the parameter is \[96,32\]/,
  },
  {
    name: 'different training data',
    damage: (_ck, sb) => { const other = path.join(sb.dir, 'other.npy'); fs.writeFileSync(other, Buffer.concat([fs.readFileSync(sb.data), Buffer.alloc(4096)])); return [`--data.paths=[${other}]`]; },
    error: /was trained on different data \(files, sizes, seed or batch shape changed\); set restore_dataloader: false/,
  },
  { name: 'load_path without a manifest', damage: (ck) => { fs.unlinkSync(path.join(ck, 'manifest.json')); return [`--load_path=${ck}`]; }, error: /is neither a complete checkpoint \(no manifest\.json\) nor a run folder with checkpoints/ },
];

test('damaged or mismatched checkpoints: each a specific error and exit 1, nothing trained, nothing loaded in part', async (t) => {
  const sb = sandbox('bad');
  assertExit(await train(sb.config, ['--max_duration=5']), 0, 'template run');
  const results: [BadCase, RunResult, string][] = [];
  // Two processes at a time (the CI box has 2 cores).
  for (let i = 0; i < BAD.length; i += 2) {
    results.push(...await Promise.all(BAD.slice(i, i + 2).map(async (c, j) => {
      const run = path.join(sb.dir, `case${i + j}`);
      fs.cpSync(sb.run, run, { recursive: true, verbatimSymlinks: true });
      const extra = c.damage(path.join(run, 'step5'), sb, run) ?? [];
      const r = await train(sb.config, [`--save_folder=${run}`, '--max_duration=10', ...extra]);
      return [c, r, run] as [BadCase, RunResult, string];
    })));
  }
  for (const [c, r, run] of results) {
    t.diagnostic(`${c.name}: ${r.stderr.trim().split('\n').pop()}`);
    assertExit(r, 1, c.name);
    assert.match(r.stderr, c.error, c.name);
    assert.match(r.stderr, /^olmo-ts: /, `${c.name}: one line, no crash`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${c.name}: no stack trace`);
    assert.equal(lines(run), 5, `${c.name}: no step was trained`);
    assert.deepEqual(stepFolders(run).map((x) => x.step), [5], `${c.name}: no checkpoint written`);
  }
});

// ---- disk full ----

function canMountTmpfs(dir: string): string | null {
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs '${dir}'`]);
  return r.status === 0 ? null : `unshare/mount unavailable: ${(r.stderr ?? '').toString().trim() || r.error?.message}`;
}

test('disk full while saving (a real 600 KB tmpfs): the error names the disk, the previous checkpoint stays intact', async (t) => {
  const sb = sandbox('diskfull');
  const mnt = path.join(sb.dir, 'mnt');
  const copy = path.join(sb.dir, 'after');
  fs.mkdirSync(mnt);
  const why = canMountTmpfs(mnt);
  if (why) { t.skip(why); return; }
  // A private mount namespace (root not needed): tmpfs on mnt/, train into it, copy what is left out.
  const script = `mount -t tmpfs -o size=600k tmpfs '${mnt}' || exit 90
"${process.execPath}" '${CLI}' train '${sb.config}' --threads 1 --quiet --save_folder='${mnt}/run' --save_interval=1 --save_num_checkpoints_to_keep=1 --max_duration=5
rc=$?; cp -a '${mnt}/run' '${copy}'; exit $rc`;
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /olmo-ts: saving checkpoint step 2 to \S+\/step2 failed: the disk is full; the previous checkpoint is intact/);
  assert.deepEqual(stepFolders(copy).map((c) => c.step), [1]);
  assert.equal(checkpointProblem(path.join(copy, 'step1')), null, 'step1 verifies');
  assert.deepEqual(tempEntries(copy), [], 'the partial step2 temp folder was removed');
  assert.equal(fs.readlinkSync(path.join(copy, 'latest')), 'step1');
  // With room again, the run resumes from step 1 and finishes.
  const again = await train(sb.config, [`--save_folder=${copy}`, '--max_duration=5']);
  assertExit(again, 0, 'resume after disk full');
  assert.equal(resumedFrom(again.stdout)?.step, 1);
});
