// c10d process groups and collectives over Gloo, in real processes: every collective's values at
// world size 2 and 3 (odd sizes catch chunking mistakes), sub-groups, a wait that leaves the event
// loop free, and the typed errors for a dead peer, a hanging peer and a rank that never joins.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { expandHostlist, expandTasksPerNode, readLaunchEnv } from '../../src/dist/env';
import { okResults, runDistributed } from '../helpers/distributed';

const MOD = path.join(__dirname, 'collectives.rank.ts');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);

function expected(W: number, r: number): Record<string, number[]> {
  const R = range(W);
  const col = (f: (q: number) => number): number[] => R.map(f);
  const v = (q: number): number[] => [q + 1, 10 * (q + 1), -q];
  const red = (f: (xs: number[]) => number): number[] => [0, 1, 2].map((k) => f(col((q) => v(q)[k]!)));
  const src = (q: number): number[] => range(2 * W).map((k) => k + 10 * q);
  const rsSum = [0, 1].map((k) => sum(col((q) => src(q)[2 * r + k]!)));
  return {
    'allReduce.sum': red(sum),
    'allReduce.avg': red((xs) => sum(xs) / W),
    'allReduce.max': red((xs) => Math.max(...xs)),
    'allReduce.min': red((xs) => Math.min(...xs)),
    'allReduce.bf16': [sum(col((q) => q + 1)), sum(col((q) => 2 * q))],
    'allReduce.list': [sum(R), sum(R), W, 2 * W, 3 * W, sum(R)],
    'allReduce.int64': [W - 1 + 5],
    broadcast: [W - 1 + 0.5, -(W - 1), Math.fround(Math.PI * W)],
    allGather: R.flatMap((q) => [q, q + 100]),
    'allGather.bf16': R.flatMap((q) => [q, -q]),
    'reduceScatter.sum': rsSum,
    'reduceScatter.avg': rsSum.map((x) => x / W),
  };
}

for (const W of [2, 3]) {
  test(`every collective gives torch's values at world size ${W} (Gloo, fp32/bf16/int64)`, async () => {
    const results = okResults(await runDistributed<Record<string, number[]>>(MOD, 'everyCollective', { worldSize: W }));
    const noNegZero = (o: Record<string, number[]>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.map((x) => x + 0)]));
    results.forEach((got, r) => assert.deepEqual(noNegZero(got), noNegZero(expected(W, r)), `rank ${r}`));
  });
}

test('sub-groups reduce within their members only', async () => {
  const results = okResults(await runDistributed<number[]>(MOD, 'pairs', { worldSize: 4 }));
  assert.deepEqual(results, [[3, 0, 2], [3, 1, 2], [7, 0, 2], [7, 1, 2]]);
});

test('waiting for a collective leaves the event loop running', async () => {
  const [ticks] = okResults(await runDistributed<number>(MOD, 'eventLoopStaysFree', { worldSize: 2 }));
  // rank 0 waited ~1.5 s with a 50 ms timer: a blocked loop would give 0 or 1 ticks
  assert.ok(ticks! >= 10, `only ${ticks} timer ticks while waiting`);
});

test('a peer that dies fails the collective with a DistributedError naming it (no hang, no crash)', async () => {
  const [r0, r1] = await runDistributed(MOD, 'peerDies', { worldSize: 2, timeoutMs: 90_000 });
  assert.equal(r1!.code, 9);
  assert.equal(r0!.code, 1, r0!.output);
  assert.match(r0!.errorName!, /^Distributed(Timeout)?Error$/);
  assert.match(r0!.error!, /all_reduce on rank 0 of 2 \(group 'world'\) failed/);
});

test('a peer that never issues the collective: a DistributedTimeoutError after the timeout', async () => {
  const t0 = Date.now();
  const [r0] = await runDistributed(MOD, 'peerHangs', { worldSize: 2, env: { OLMO_TS_DIST_TIMEOUT_S: '2' } });
  assert.equal(r0!.errorName, 'DistributedTimeoutError', r0!.error);
  assert.match(r0!.error!, /all_reduce on rank 0 of 2/);
  assert.ok(Date.now() - t0 < 60_000);
});

test('a rank that never joins: the others fail the rendezvous with a timeout error', async () => {
  const [r0] = await runDistributed(MOD, 'pairs', { worldSize: 2, skipRanks: [1], env: { OLMO_TS_DIST_TIMEOUT_S: '2' } });
  assert.equal(r0!.code, 1);
  assert.equal(r0!.errorName, 'DistributedTimeoutError', r0!.error);
  assert.match(r0!.error!, /rank 1 of 2 did not join within 2 s/);
});

test('launch environment: torchrun variables, Slurm variables and compressed node lists', () => {
  assert.deepEqual(readLaunchEnv({}), { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: 29500, source: 'single' });
  const t = readLaunchEnv({ RANK: '5', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4', MASTER_ADDR: 'n0', MASTER_PORT: '1234' });
  assert.deepEqual(t, { rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, nodeRank: 1, masterAddr: 'n0', masterPort: 1234, source: 'torchrun' });
  const s = readLaunchEnv({ SLURM_PROCID: '6', SLURM_NTASKS: '7', SLURM_LOCALID: '0', SLURM_NODEID: '3', SLURM_TASKS_PER_NODE: '2(x3),1', SLURM_JOB_NODELIST: 'nid[005-007,010]', SLURM_JOB_ID: '123456', SLURM_STEP_ID: '0' });
  assert.deepEqual(s, { rank: 6, worldSize: 7, localRank: 0, localWorldSize: 1, nodeRank: 3, masterAddr: 'nid005', masterPort: 23456, source: 'slurm' });
  assert.deepEqual(expandHostlist('nid[005-007,010]'), ['nid005', 'nid006', 'nid007', 'nid010']);
  assert.deepEqual(expandHostlist('a[1-2]-ib[0-1],login'), ['a1-ib0', 'a1-ib1', 'a2-ib0', 'a2-ib1', 'login']);
  assert.deepEqual(expandHostlist('gpu-01'), ['gpu-01']);
  assert.deepEqual(expandTasksPerNode('2(x3),1'), [2, 2, 2, 1]);
  assert.throws(() => readLaunchEnv({ RANK: '2', WORLD_SIZE: '2' }), /RANK: rank 2 is not below the world size 2/);
  assert.throws(() => readLaunchEnv({ RANK: '0' }), /WORLD_SIZE/);
  assert.throws(() => readLaunchEnv({ RANK: 'x', WORLD_SIZE: '2' }), /RANK=.*not a non-negative integer/);
  assert.throws(() => expandHostlist('nid[1-'), /unbalanced/);
  // sbatch's script has SLURM_PROCID=0 and the job's SLURM_NTASKS but no job step: not a rank
  const batch = { SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_LOCALID: '0', SLURM_NODEID: '0', SLURM_TASKS_PER_NODE: '2', SLURM_JOB_NODELIST: 'n1', SLURM_JOB_ID: '7' };
  assert.throws(() => readLaunchEnv(batch), /SLURM_STEP_ID: SLURM_NTASKS=2 but this is the job's batch script, not one of its tasks .*srun/);
  assert.equal(readLaunchEnv({ ...batch, SLURM_NTASKS: '1', SLURM_TASKS_PER_NODE: '1' }).worldSize, 1); // a one-task job may train in its script
  assert.equal(readLaunchEnv({ ...batch, SLURM_STEP_ID: '0' }).worldSize, 2);
});
