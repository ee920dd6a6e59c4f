// What an operator meets, with real processes: a closed stdout (`| head -1`), SIGHUP, OLMo keys
// olmo-ts does not honour, and file-system failures at start, each a sentence naming the path
// (a run folder that is a file, `latest` copied as a folder, a read-only or full disk).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  CLI, ROOT, assertDistFresh, assertExit, checkpointProblem, readRecords, removeSandboxes, resumedFrom, sandbox, startTrain, stepFolders, train, waitFor,
} from '../helpers/train-process';

before(() => assertDistFresh());
after(() => removeSandboxes());

test('a closed stdout (`| head -1`) does not stop the run: it trains to the end and checkpoints', () => {
  const sb = sandbox('epipe');
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" train "${sb.config}" --threads 1 --max_duration=30 --save_interval=1000 | head -1; echo "exit=\${PIPESTATUS[0]}" >&2`], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, OLMo_NONINTERACTIVE: '1' }, timeout: 60_000 });
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, 'head printed one line');
  assert.match(r.stderr, /exit=0/, r.stderr);
  assert.match(r.stderr, /olmo-ts: stdout was closed; carrying on without console output/);
  assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at /, 'no stack trace');
  assert.deepEqual(stepFolders(sb.run).map((c) => c.step), [30]);
  assert.equal(checkpointProblem(path.join(sb.run, 'step30')), null);
});

test('SIGHUP (a closed terminal) stops like SIGTERM: the step finishes, a checkpoint, exit 75, then resume', async () => {
  const sb = sandbox('sighup');
  const p = startTrain(sb.config, ['--max_duration=150', '--save_interval=1000']);
  await waitFor(() => readRecords(sb.run).length >= 5, 'step 5');
  p.child.kill('SIGHUP');
  const r = await p.done;
  assertExit(r, 75, 'SIGHUP');
  assert.match(r.stderr, /SIGHUP received: finishing this step, then saving a checkpoint/);
  const stopped = stepFolders(sb.run).map((c) => c.step);
  assert.equal(stopped.length, 1);
  const again = await train(sb.config, ['--max_duration=150', '--save_interval=1000']);
  assertExit(again, 0, 'restart');
  assert.equal(resumedFrom(again.stdout)?.step, stopped[0]);
});

test('OLMo keys olmo-ts does not honour: refused before anything is written, or warned about once', async () => {
  const sb = sandbox('keys');
  const cases: [string[], RegExp][] = [
    [['--wandb.project=x'], /olmo-ts: wandb: got \{"project":"x".*: olmo-ts does not log to Weights & Biases yet .*remove the wandb section \(--wandb=null\)/],
    [[`--save_folder=s3://bucket/${path.basename(sb.dir)}`], /olmo-ts: save_folder: got "s3:\/\/bucket\/.*": olmo-ts writes runs to a local folder only/],
    // (a machine without a CUDA device: this CPU-only CI)
    [['--model.init_device=cuda'], /olmo-ts: model\.init_device: got "cuda" but (this olmo-ts addon was built against a CPU-only libtorch|no CUDA device is visible).*set model\.init_device: cpu/],
  ];
  // (every refused key is covered in test/unit/config/unsupported.test.ts; these are the issue's)
  const results = await Promise.all(cases.map(([args]) => train(sb.config, args, { cwd: sb.dir })));
  results.forEach((r, i) => {
    assertExit(r, 1, cases[i]![0].join(' '));
    assert.match(r.stderr, cases[i]![1]);
  });
  assert.ok(!fs.existsSync(sb.run) && !fs.existsSync(path.join(sb.dir, 's3:')), 'nothing written (no folder named "s3:")');
  const warned = await train(sb.config, ['--max_duration=1', '--compile={}', '--torch_profiling=true']);
  assertExit(warned, 0, 'warned keys');
  for (const k of ['compile', 'torch_profiling']) assert.equal(warned.stderr.split(`olmo-ts: warning: ${k}: `).length - 1, 1, `one warning for ${k}\n${warned.stderr}`);
});

function unshareWorks(): string | null {
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || mount -t tmpfs -o size=64k tmpfs "$(mktemp -d)"']);
  return r.status === 0 ? null : `unshare/mount unavailable: ${(r.stderr ?? '').toString().trim() || r.error?.message}`;
}

test('file-system problems at start are sentences naming the path, not errno codes', async (t) => {
  const sb = sandbox('fs');
  const file = path.join(sb.dir, 'afile');
  fs.writeFileSync(file, 'x');
  const asFile = await train(sb.config, [`--save_folder=${file}`]);
  assertExit(asFile, 1, 'save_folder is a file');
  assert.match(asFile.stderr, /^olmo-ts: save_folder: \S+\/afile is a file, not a folder: choose another save_folder\n$/);

  assertExit(await train(sb.config, ['--max_duration=2']), 0, 'a run to copy');
  const copy = path.join(sb.dir, 'copied');
  fs.cpSync(sb.run, copy, { recursive: true, dereference: true }); // as `cp -r`: `latest` becomes a folder
  const latestDir = await train(sb.config, [`--save_folder=${copy}`, '--max_duration=4']);
  assertExit(latestDir, 1, '`latest` is a folder');
  assert.match(latestDir.stderr, /\/copied\/latest is a folder, not a link to a checkpoint \(was the run folder copied with a tool that follows links, such as `cp -r` without -a\?\): delete it and olmo-ts recreates it/);

  const why = unshareWorks();
  if (why) { t.skip(why); return; }
  // A private mount namespace (no root needed): a read-only folder, and a full one.
  const mnt = path.join(sb.dir, 'mnt');
  fs.mkdirSync(mnt);
  const run = (setup: string, args: string) => spawnSync('unshare', ['-rm', 'sh', '-c', `${setup}\n"${process.execPath}" '${CLI}' train '${sb.config}' --threads 1 --quiet ${args}`], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const ro = run(`mount -t tmpfs -o ro,size=64k tmpfs '${mnt}' || exit 90`, `--save_folder='${mnt}/run'`);
  assert.equal(ro.status, 1, ro.stderr);
  assert.match(ro.stderr, /^olmo-ts: save_folder: cannot create the run folder \S+\/mnt\/run: the file system is read-only \(EROFS\)\n$/);
  const full = run(`mount -t tmpfs -o size=16k tmpfs '${mnt}' || exit 90; mkdir '${mnt}/run'; head -c 16384 /dev/zero > '${mnt}/fill' 2>/dev/null`, `--save_folder='${mnt}/run'`);
  assert.equal(full.status, 1, full.stderr);
  assert.match(full.stderr, /^olmo-ts: save_folder: cannot write to the run folder \S+\/mnt\/run \(writing its lock file\): the disk is full \(ENOSPC\)\n$/);
  // Room for the run's small files but not its first checkpoint: no claim of an intact previous one.
  const first = run(`mount -t tmpfs -o size=96k tmpfs '${mnt}' || exit 90`, `--save_folder='${mnt}/run' --max_duration=3 --save_interval=1`);
  assert.equal(first.status, 1, first.stderr);
  assert.match(first.stderr, /olmo-ts: saving checkpoint step 1 to \S+\/step1 failed: the disk is full; no earlier checkpoint exists\n$/);
});
