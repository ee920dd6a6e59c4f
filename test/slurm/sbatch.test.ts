// The project's sbatch scripts (scripts/slurm/) under a real Slurm on this machine
// (scripts/slurm/local-cluster.sh), with the CPU override (--gpus-per-node=0: Gloo) and the tests'
// tiny fp32 config: a 2-task job trains exactly as `olmo-ts launch --nproc-per-node 2`; a preemption
// (scancel --signal=TERM, and the --signal=B:TERM warning to the batch script) checkpoints, requeues
// and resumes to the uninterrupted losses; kill -9 of one task ends the job promptly, naming it; a
// 2-node job (two slurmd on this machine) meets at the first host of its node list; and the
// launch-per-node variant is preempted and resumed the same way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { LocalSlurm, cmdline, jobProcesses } from '../helpers/local-slurm';
import { CLI, ROOT, assertDistFresh, readLosses, readRecords, removeSandboxes, sandbox, stepFolders, waitFor } from '../helpers/train-process';

const skip = LocalSlurm.cannotStart();
let slurm: LocalSlurm | null = null;
before(() => {
  assertDistFresh();
  if (!skip) slurm = LocalSlurm.start();
});
after(() => {
  slurm?.stop();
  removeSandboxes();
});

const STEPS = 200; // one epoch of the sandbox's data; ~15 ms a step for 2 ranks here
const SCRIPTS = path.join(ROOT, 'scripts', 'slurm');
/** The CPU override: no GPUs (the scripts then skip their GPU lines and olmo-ts uses Gloo), one CPU per task. */
const CPU = ['--partition=local', '--gpus-per-node=0', '--cpus-per-task=1', '--mem=0', '--time=30'];
const JOB_TIMEOUT = 180_000;

interface Job {
  id: number;
  log: string;
  run: string;
}

/** A port the OS says is free now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Submits one of the project's sbatch scripts with the CPU override, saving runs under `dir`. The
 * rendezvous port is one the OS hands out (MASTER_PORT, which the scripts and olmo-ts honour), not
 * the job-id default, so that two test runs on one machine cannot meet on the same port.
 */
async function submit(script: string, dir: string, shape: string[], trainArgs: string[], opts: { fromCheckout?: boolean } = {}): Promise<Job & { port: number }> {
  const s = slurm!;
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { CHECKPOINTS_PATH: dir, MASTER_PORT: String(port) };
  // As a user would: sbatch run from the checkout, which the script then finds by itself.
  if (!opts.fromCheckout) env.OLMO_TS_HOME = ROOT;
  const id = s.sbatch(path.join(SCRIPTS, script), [...CPU, ...shape, `--output=${path.join(dir, 'job-%j.log')}`], [path.join(dir, 'config.yaml'), '--quiet', ...trainArgs], {
    cwd: opts.fromCheckout ? ROOT : dir,
    env,
  });
  return { id, port, log: path.join(dir, `job-${id}.log`), run: path.join(dir, `olmo-ts-${id}`) };
}

const readLog = (j: Job): string => (fs.existsSync(j.log) ? fs.readFileSync(j.log, 'utf8') : '');
const metricLines = (j: Job): number => readRecords(j.run).length;

/** `olmo-ts launch --nproc-per-node 2` on the same config: the losses every job must reproduce. */
let reference: Promise<Map<number, number>> | null = null;
function referenceLosses(): Promise<Map<number, number>> {
  reference ??= (async () => {
    const sb = sandbox('slurm-ref');
    const out = path.join(sb.dir, 'launch');
    const child = spawn(process.execPath, [CLI, 'launch', '--nproc-per-node', '2', '--', 'train', sb.config, '--quiet', `--max_duration=${STEPS}`, `--save_folder=${out}`], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...slurm!.env(), OMP_NUM_THREADS: '1' },
    });
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d));
    child.stderr!.on('data', (d: Buffer) => (text += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, text.slice(-3000));
    const losses = readLosses(out);
    assert.equal(losses.size, STEPS);
    return losses;
  })();
  return reference;
}

/** Every step's loss equals the reference's, bit for bit (same world size, same reduction order). */
async function assertReferenceLosses(j: Job, what: string): Promise<void> {
  const want = await referenceLosses();
  const got = readLosses(j.run);
  assert.equal(got.size, STEPS, `${what}: ${got.size} steps logged\n${readLog(j).slice(-3000)}`);
  for (const [s, v] of want) assert.ok(Object.is(got.get(s), v), `${what}: step ${s} loss ${got.get(s)} != ${v} (olmo-ts launch)`);
}

/** The steps at which the ranks stopped for a signal, in log order, for each rank. */
function signalStops(log: string): number[] {
  return [...log.matchAll(/olmo-ts: signal at step (\d+)/g)].map((m) => Number(m[1]));
}

test('a 2-task job (one rank per task, srun) completes: one metrics stream, the checkpoints, the losses of olmo-ts launch', { skip: skip ?? false }, async () => {
  const sb = sandbox('slurm-2task');
  const ref = referenceLosses();
  const j = await submit('nvidia.sbatch', sb.dir, ['--nodes=1', '--ntasks-per-node=2'], [`--max_duration=${STEPS}`], { fromCheckout: true });
  const info = await slurm!.waitEnded(j.id, JOB_TIMEOUT);
  const log = readLog(j);
  assert.equal(info.state, 'COMPLETED', log.slice(-3000));
  assert.equal(info.exitCode, '0:0');
  // both ranks ran, as Slurm's tasks 0 and 1 (srun --label), from Slurm's variables
  for (const r of [0, 1]) assert.match(log, new RegExp(`^${r}: olmo-ts: rank ${r} of 2 on \\S+ \\(node 0, local rank ${r} of 2\\), rendezvous at \\S+ \\(from Slurm's variables\\)`, 'm'));
  assert.match(log, /olmo-ts job: the run is done/);
  // one metrics stream: rank 0's, one record per step
  const records = readRecords(j.run).filter((r) => 'train/CrossEntropyLoss' in r);
  assert.deepEqual(records.map((r) => r.step), Array.from({ length: STEPS }, (_, i) => i + 1));
  assert.deepEqual(fs.readdirSync(j.run).filter((n) => n.endsWith('.jsonl')), ['metrics.jsonl']);
  // the checkpoints (save_interval 5, the last two kept) and `latest`
  assert.deepEqual(stepFolders(j.run).map((c) => c.step), [STEPS - 5, STEPS]);
  assert.ok(fs.existsSync(path.join(j.run, `step${STEPS}`, 'manifest.json')));
  assert.equal(fs.realpathSync(path.join(j.run, 'latest')), fs.realpathSync(path.join(j.run, `step${STEPS}`)));
  await ref;
  await assertReferenceLosses(j, '2-task job');
});

test('preemption: scancel --signal=TERM and the --signal=B:TERM warning each give a checkpoint and a requeue; the job ends with the uninterrupted losses', { skip: skip ?? false }, async () => {
  const sb = sandbox('slurm-preempt');
  const ref = referenceLosses();
  const j = await submit('lumi.sbatch', sb.dir, ['--nodes=1', '--ntasks-per-node=2'], [`--max_duration=${STEPS}`]);
  // 1. scancel --signal=TERM: Slurm signals every task of the job's steps
  await waitFor(() => metricLines(j) >= 5, 'five steps of the first start', JOB_TIMEOUT, 20);
  slurm!.run('scancel', ['--signal=TERM', String(j.id)]);
  await waitFor(() => slurm!.job(j.id).restarts >= 1, 'the first requeue', JOB_TIMEOUT, 100);
  const first = signalStops(readLog(j));
  assert.equal(first.length, 2, readLog(j).slice(-3000));
  assert.equal(first[0], first[1], 'both ranks stop at the same step');
  assert.ok(first[0]! < STEPS, `the first start ran to the end (step ${first[0]}) before the signal arrived`);
  // 2. what --signal=B:TERM@600 does before the time limit: SIGTERM to the batch script alone
  await waitFor(() => metricLines(j) >= first[0]! + 5, 'five steps of the second start', JOB_TIMEOUT, 20);
  slurm!.run('scancel', ['--batch', '--signal=TERM', String(j.id)]);
  const info = await slurm!.waitEnded(j.id, JOB_TIMEOUT);
  const log = readLog(j);
  assert.equal(info.state, 'COMPLETED', log.slice(-3000));
  assert.equal(info.restarts, 2, log.slice(-3000));
  assert.match(log, /olmo-ts job: SIGTERM \(preemption or time-limit warning\): signalling the ranks/);
  const stops = signalStops(log);
  assert.equal(stops.length, 4, log.slice(-3000));
  assert.equal(stops[2], stops[3]);
  assert.ok(first[0]! < stops[2]! && stops[2]! < STEPS, `second stop at step ${stops[2]}`);
  assert.equal(log.match(/requeueing job \d+ to resume/g)?.length, 2);
  for (const s of [first[0]!, stops[2]!]) {
    for (const r of [0, 1]) assert.match(log, new RegExp(`^${r}: olmo-ts: resumed from \\S+/step${s} at step ${s}$`, 'm'));
  }
  await ref;
  await assertReferenceLosses(j, 'preempted twice');
});

test('kill -9 of one task ends the job within a bounded time, with the task named in its log', { skip: skip ?? false }, async () => {
  const sb = sandbox('slurm-kill');
  const j = await submit('nvidia.sbatch', sb.dir, ['--nodes=1', '--ntasks-per-node=2'], ['--max_duration=100000', '--save_interval=1000']);
  await waitFor(() => metricLines(j) >= 3, 'three steps', JOB_TIMEOUT, 20);
  const rank1 = jobProcesses(j.id, 1).filter((p) => cmdline(p).includes('main.js'));
  assert.equal(rank1.length, 1, `task 1's process: ${rank1.map(cmdline).join(' | ')}`);
  const t0 = Date.now();
  process.kill(rank1[0]!, 'SIGKILL');
  const info = await slurm!.waitEnded(j.id, 60_000);
  const ms = Date.now() - t0;
  const log = readLog(j);
  assert.equal(info.state, 'FAILED', log.slice(-3000));
  assert.equal(info.restarts, 0, 'a failure is not requeued');
  assert.match(log, /srun: error: \S+: task 1: Killed/);
  assert.match(log, /olmo-ts job: the training step failed with status \d+/);
  assert.ok(ms < 60_000, `the job took ${ms} ms to end`);
  await waitFor(() => jobProcesses(j.id).length === 0, 'no process of the job left', 30_000, 100);
});

test('two nodes on one machine: a 2-node x 1-task job rendezvouses at the first host of its node list', { skip: skip ?? false }, async (t) => {
  if (slurm!.nodes.length < 2) return t.skip(`one node name only (${slurm!.nodes.join()}): the hostname does not resolve to an address`);
  const sb = sandbox('slurm-2node');
  const ref = referenceLosses();
  const j = await submit('nvidia.sbatch', sb.dir, ['--nodes=2', '--ntasks-per-node=1'], [`--max_duration=${STEPS}`]);
  const info = await slurm!.waitEnded(j.id, JOB_TIMEOUT);
  const log = readLog(j);
  assert.equal(info.state, 'COMPLETED', log.slice(-3000));
  const hosts = slurm!.hostnames(info.nodeList);
  assert.equal(hosts.length, 2);
  assert.deepEqual([...hosts].sort(), [...slurm!.nodes].sort());
  // rank r on node r (its own slurmd), both meeting at the first host of the node list
  for (const r of [0, 1]) {
    assert.match(log, new RegExp(`^${r}: olmo-ts: rank ${r} of 2 on ${hosts[r]} \\(node ${r}, local rank 0 of 1\\), rendezvous at ${hosts[0]}:${j.port} \\(from Slurm's variables\\)$`, 'm'));
  }
  await ref;
  await assertReferenceLosses(j, '2-node job');
});

test('one olmo-ts launch per node (nvidia-launch.sbatch), 2 nodes: preempted, requeued, resumed to the uninterrupted losses', { skip: skip ?? false }, async (t) => {
  if (slurm!.nodes.length < 2) return t.skip(`one node name only (${slurm!.nodes.join()}): the hostname does not resolve to an address`);
  const sb = sandbox('slurm-launch');
  const ref = referenceLosses();
  const j = await submit('nvidia-launch.sbatch', sb.dir, ['--nodes=2'], [`--max_duration=${STEPS}`]);
  await waitFor(() => metricLines(j) >= 5, 'five steps', JOB_TIMEOUT, 20);
  slurm!.run('scancel', ['--signal=TERM', String(j.id)]);
  const info = await slurm!.waitEnded(j.id, JOB_TIMEOUT);
  const log = readLog(j);
  assert.equal(info.state, 'COMPLETED', log.slice(-3000));
  assert.equal(info.restarts, 1, log.slice(-3000));
  const hosts = slurm!.hostnames(info.nodeList);
  for (const r of [0, 1]) assert.match(log, new RegExp(`^\\[rank${r}\\] olmo-ts: rank ${r} of 2 on ${hosts[r]} \\(node ${r}, local rank 0 of 1\\), rendezvous at ${hosts[0]}:${j.port} \\(from torchrun's variables\\)$`, 'm'));
  // Slurm signals every process of the step: launch leaves the ranks' own copy as the only one
  assert.match(log, /olmo-ts launch: SIGTERM received: not forwarded/);
  assert.doesNotMatch(log, /second SIGTERM/);
  const stops = signalStops(log);
  assert.equal(stops.length, 2, log.slice(-3000));
  assert.equal(stops[0], stops[1]);
  assert.match(log, new RegExp(`\\[rank1\\] olmo-ts: resumed from \\S+/step${stops[0]} at step ${stops[0]}`));
  await ref;
  await assertReferenceLosses(j, 'launch per node, preempted');
});
