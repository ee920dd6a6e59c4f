// Data-parallel training in real processes (`olmo-ts launch`, Gloo, CPU): world sizes 1, 2 and 4
// train the same global batches to the same losses and weights; every instance of a global batch is
// trained once, on the rank OLMo's slicing gives it; a killed rank ends the launch promptly with no
// process left; SIGTERM checkpoints and a restart continues exactly; bad batch splits are refused.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { loadGlobalIndices } from '../../src/data/global-indices';
import { inspectBatches } from '../../src/data/inspect';
import { CLI, ROOT, assertDistFresh, readF32Safetensors, readLosses, readRecords, removeSandboxes, sandbox, waitFor } from '../helpers/train-process';

before(assertDistFresh);
after(removeSandboxes);

interface Launched {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }>;
  out(): string;
}

function startLaunch(nproc: number, config: string, args: string[], launchArgs: string[] = []): Launched {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, 'launch', '--nproc-per-node', String(nproc), ...launchArgs, '--', 'train', config, '--quiet', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, out, ms: Date.now() - t0 }));
  });
  return { child, done, out: () => out };
}

async function launchOk(nproc: number, config: string, args: string[]): Promise<string> {
  const r = await startLaunch(nproc, config, args).done;
  assert.equal(r.code, 0, r.out.slice(-4000));
  return r.out;
}

function maxWeightDiff(a: string, b: string): number {
  const wa = readF32Safetensors(path.join(a, 'latest', 'model.safetensors'));
  const wb = readF32Safetensors(path.join(b, 'latest', 'model.safetensors'));
  assert.deepEqual([...wa.keys()].sort(), [...wb.keys()].sort());
  let m = 0;
  for (const [k, v] of wa) {
    const u = wb.get(k)!;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]! - u[i]!));
  }
  return m;
}

function maxLossDiff(a: Map<number, number>, b: Map<number, number>): number {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  return Math.max(...[...a].map(([s, v]) => Math.abs(v - b.get(s)!)));
}

// Measured on an AMD EPYC (fp32, 10 steps, lr 1e-2, weights up to ~1.05): losses differ by up to
// 7e-7 and weights by up to 8e-7 between world sizes — the reduction order of the gradient sums,
// nothing else. The bounds leave a few times that for other CPUs' kernels.
const LOSS_TOL = 5e-6;
const WEIGHT_TOL = 5e-6;

test('NO_SHARD (DDP): world size 1, 2 and 4 train the same global batches to the same losses and weights (fp32)', async () => {
  const sb = sandbox('ddp-equal');
  const runs: Record<string, string> = {};
  // NO_SHARD: the replicated model with DataParallel's bucketed all-reduce (FSDP's strategies are
  // checked the same way in fsdp.test.ts).
  for (const [name, nproc, extra] of [
    ['ws1', 1, []], ['ws2', 2, []], ['ws4', 4, []], ['ws2-micro', 2, ['--device_train_microbatch_size=1']],
  ] as const) {
    runs[name] = path.join(sb.dir, name);
    await launchOk(nproc, sb.config, ['--max_duration=10', `--save_folder=${runs[name]}`, '--fsdp.sharding_strategy=NO_SHARD', ...extra]);
  }
  const ref = readLosses(runs.ws1!);
  assert.equal(ref.size, 10);
  for (const name of ['ws2', 'ws4', 'ws2-micro']) {
    const dl = maxLossDiff(readLosses(runs[name]!), ref);
    const dw = maxWeightDiff(runs[name]!, runs.ws1!);
    assert.ok(dl <= LOSS_TOL, `${name}: losses differ from world size 1 by ${dl}`);
    assert.ok(dw <= WEIGHT_TOL, `${name}: weights differ from world size 1 by ${dw}`);
  }
  // only rank 0 writes metrics: one record per step
  assert.equal(readRecords(runs.ws4!).filter((r) => 'train/CrossEntropyLoss' in r).length, 10);

  // Every instance of every global batch is trained exactly once, on the rank of OLMo's slicing:
  // the batch of step s is global_indices[(s-1)B : sB] and rank r takes its elements r, r+W, ...
  const order = loadGlobalIndices(path.join(runs.ws4!, 'train_data', 'global_indices.npy'));
  const B = 4, W = 4;
  const logged = Array.from({ length: W }, (_, r) => fs.readFileSync(path.join(runs.ws4!, 'data-indices', `rank${r}.tsv`), 'utf8').trim().split('\n').map((l) => l.split('\t').map(Number)));
  for (let s = 1; s <= 10; s++) {
    const batch = Array.from(order.subarray((s - 1) * B, s * B));
    const seen: number[] = [];
    for (let r = 0; r < W; r++) {
      const row = logged[r]![s - 1]!;
      assert.equal(row[0], s);
      assert.deepEqual(row.slice(1), batch.filter((_, i) => i % W === r), `step ${s} rank ${r}`);
      seen.push(...row.slice(1));
    }
    assert.deepEqual(seen.sort((a, b) => a - b), [...batch].sort((a, b) => a - b), `step ${s}: each instance once`);
  }
  // inspect-data names the rank of each instance
  // (the tiny model's ids are decoded with gpt2, whose end-of-text id the config does not use)
  const rows = await inspectBatches({ runDir: runs.ws4!, steps: [3], tokenizer: 'gpt2', eosTokenId: 50256, padTokenId: 50256 });
  assert.deepEqual(rows.map((r) => [r.rank, r.index]), logged.map((l, r) => [r, l[2]![1]]));
});

function descendants(pid: number): number[] {
  try {
    const kids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    return kids.flatMap((k) => [k, ...descendants(k)]);
  } catch {
    return [];
  }
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('kill -9 of one rank: launch stops the others, names the dead rank, exits 137, leaves no process', async () => {
  const sb = sandbox('ddp-kill');
  const l = startLaunch(2, sb.config, ['--max_duration=100000', '--save_interval=1000'], ['--grace', '10']);
  await waitFor(() => readRecords(sb.run).length >= 3, 'three steps', 60_000);
  const kids = descendants(l.child.pid!);
  assert.equal(kids.length, 2, `expected 2 ranks, found ${kids.length}`);
  // rank 1 is the second child started
  const rank1 = kids.sort((a, b) => a - b)[1]!;
  process.kill(rank1, 'SIGKILL');
  const r = await l.done;
  assert.equal(r.code, 137, r.out.slice(-3000));
  assert.match(r.out, /olmo-ts launch: rank 1 \(pid \d+\) was killed by SIGKILL/);
  assert.match(r.out, /failed: rank 1 was killed by SIGKILL; exit 137/);
  assert.ok(r.ms < 60_000, `took ${r.ms} ms`);
  for (const k of kids) assert.ok(!alive(k), `process ${k} is still running`);
});

test('kill -9 of launch itself: the ranks notice, checkpoint and exit (no orphans)', async () => {
  const sb = sandbox('ddp-orphan');
  const l = startLaunch(2, sb.config, ['--max_duration=100000', '--save_interval=1000']);
  await waitFor(() => readRecords(sb.run).length >= 3, 'three steps', 60_000);
  const kids = descendants(l.child.pid!);
  assert.equal(kids.length, 2);
  l.child.kill('SIGKILL');
  await waitFor(() => kids.every((k) => !alive(k)), 'the ranks to exit', 30_000, 100);
  const steps = fs.readdirSync(sb.run).filter((n) => /^step\d+$/.test(n));
  assert.ok(steps.length >= 1, 'a checkpoint was written on the way out');
});

test('SIGTERM to launch: every rank stops at the same step, one checkpoint, exit 75; a restart ends with the uninterrupted losses', async () => {
  const sb = sandbox('ddp-term');
  const full = path.join(sb.dir, 'full');
  await launchOk(2, sb.config, ['--max_duration=40', `--save_folder=${full}`]);
  const l = startLaunch(2, sb.config, ['--max_duration=40']);
  await waitFor(() => readRecords(sb.run).length >= 8, 'eight steps', 60_000);
  l.child.kill('SIGTERM');
  const r = await l.done;
  assert.equal(r.code, 75, r.out.slice(-3000));
  const stops = [...r.out.matchAll(/\[rank(\d)\] olmo-ts: signal at step (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.equal(stops.length, 2, r.out.slice(-3000));
  assert.equal(stops[0]![1], stops[1]![1], 'both ranks stop at the same step');
  const stoppedAt = stops[0]![1]!;
  assert.ok(stoppedAt < 40);
  assert.ok(fs.existsSync(path.join(sb.run, `step${stoppedAt}`, 'manifest.json')));
  const again = await startLaunch(2, sb.config, ['--max_duration=40']).done;
  assert.equal(again.code, 0, again.out.slice(-3000));
  assert.match(again.out, new RegExp(`\\[rank1\\] olmo-ts: resumed from \\S+step${stoppedAt} at step ${stoppedAt}`));
  // resume at the same world size is exact
  const got = readLosses(sb.run), want = readLosses(full);
  for (const [s, v] of want) assert.ok(Object.is(got.get(s), v), `step ${s}: ${got.get(s)} != ${v}`);
});

test('a global batch that does not split over the ranks is refused, naming the numbers', async () => {
  const sb = sandbox('ddp-split');
  const r = await startLaunch(3, sb.config, ['--max_duration=2']).done;
  assert.equal(r.code, 1);
  assert.match(r.out, /global_train_batch_size: got 4, expected a multiple of the world size \(3\)/);
});
