// The launch contract: which rank this process is, read from the environment that OLMo's runs use.
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) come
// first; under Slurm without them, SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID / SLURM_NODEID /
// SLURM_TASKS_PER_NODE, with the master on the first host of SLURM_JOB_NODELIST.
import { ConfigError } from '../config/errors';

/** Where this process sits in a multi-process run (OLMo's torch_util helpers, as plain fields). */
export interface LaunchEnv {
  /** Global rank, 0..worldSize-1 (OLMo's get_global_rank). */
  rank: number;
  /** Number of processes in the run (get_world_size). */
  worldSize: number;
  /** Rank within this node (get_local_rank). */
  localRank: number;
  /** Processes on this node (get_local_world_size). */
  localWorldSize: number;
  /** Index of this node (get_node_rank). */
  nodeRank: number;
  /** Host of rank 0's rendezvous store. */
  masterAddr: string;
  masterPort: number;
  /** Where the values came from. */
  source: 'single' | 'torchrun' | 'slurm';
}

/** torch's default rendezvous port. */
export const DEFAULT_MASTER_PORT = 29500;

function intVar(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `environment variable ${name}=${JSON.stringify(raw)} is not a non-negative integer`);
  const v = Number(raw.trim());
  if (v < min) throw new ConfigError(name, `environment variable ${name}=${v} must be >= ${min}`);
  return v;
}

/**
 * Reads the launch environment. Without any of the variables this is a single process (rank 0 of 1).
 * Inconsistent values (RANK >= WORLD_SIZE, a local rank outside the node) are errors naming the variable.
 */
export function readLaunchEnv(env: NodeJS.ProcessEnv = process.env): LaunchEnv {
  let out: LaunchEnv;
  if (env.WORLD_SIZE !== undefined || env.RANK !== undefined) {
    const worldSize = intVar(env, 'WORLD_SIZE', 1);
    const rank = intVar(env, 'RANK', 0);
    if (worldSize === undefined) throw new ConfigError('WORLD_SIZE', 'RANK is set but WORLD_SIZE is not (set both, as torchrun and `olmo-ts launch` do)');
    if (rank === undefined) throw new ConfigError('RANK', 'WORLD_SIZE is set but RANK is not (set both, as torchrun and `olmo-ts launch` do)');
    const localRank = intVar(env, 'LOCAL_RANK', 0) ?? rank;
    // Without LOCAL_WORLD_SIZE the run is taken to be on one node.
    const localWorldSize = intVar(env, 'LOCAL_WORLD_SIZE', 1) ?? worldSize;
    out = {
      rank, worldSize, localRank, localWorldSize,
      nodeRank: intVar(env, 'NODE_RANK', 0) ?? Math.floor((rank - localRank) / localWorldSize),
      masterAddr: env.MASTER_ADDR || '127.0.0.1',
      masterPort: intVar(env, 'MASTER_PORT', 1) ?? DEFAULT_MASTER_PORT,
      source: 'torchrun',
    };
  } else if (env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) {
    const rank = intVar(env, 'SLURM_PROCID', 0)!;
    const worldSize = intVar(env, 'SLURM_NTASKS', 1)!;
    // sbatch's script itself runs with SLURM_PROCID=0 and the job's SLURM_NTASKS but outside any job
    // step: started there, this process would wait for ranks that nobody starts.
    if (worldSize > 1 && env.SLURM_STEP_ID === undefined && env.SLURM_STEPID === undefined) {
      throw new ConfigError('SLURM_STEP_ID', `SLURM_NTASKS=${worldSize} but this is the job's batch script, not one of its tasks (SLURM_STEP_ID is not set): start one rank per task with srun (see scripts/slurm/), or run \`olmo-ts launch\` there`);
    }
    const localRank = intVar(env, 'SLURM_LOCALID', 0) ?? 0;
    const nodeRank = intVar(env, 'SLURM_NODEID', 0) ?? 0;
    const perNode = env.SLURM_TASKS_PER_NODE ? expandTasksPerNode(env.SLURM_TASKS_PER_NODE) : [];
    const localWorldSize = perNode[nodeRank] ?? intVar(env, 'SLURM_NTASKS_PER_NODE', 1) ?? worldSize;
    const nodelist = env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
    const jobId = intVar(env, 'SLURM_JOB_ID', 0);
    out = {
      rank, worldSize, localRank, localWorldSize, nodeRank,
      masterAddr: env.MASTER_ADDR || (nodelist ? expandHostlist(nodelist)[0]! : '127.0.0.1'),
      // Jobs sharing a node must not share a port: without MASTER_PORT, derive one from the job id.
      masterPort: intVar(env, 'MASTER_PORT', 1) ?? (jobId !== undefined ? 20000 + (jobId % 10000) : DEFAULT_MASTER_PORT),
      source: 'slurm',
    };
  } else {
    return { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: DEFAULT_MASTER_PORT, source: 'single' };
  }
  if (out.rank >= out.worldSize) throw new ConfigError(out.source === 'slurm' ? 'SLURM_PROCID' : 'RANK', `rank ${out.rank} is not below the world size ${out.worldSize}`);
  if (out.localRank >= out.localWorldSize) throw new ConfigError(out.source === 'slurm' ? 'SLURM_LOCALID' : 'LOCAL_RANK', `local rank ${out.localRank} is not below the local world size ${out.localWorldSize}`);
  if (out.masterPort > 65535) throw new ConfigError('MASTER_PORT', `port ${out.masterPort} is above 65535`);
  return out;
}

/** One line for the logs: where this rank sits and where it meets the others. */
export function describeLaunchEnv(e: LaunchEnv, host: string): string {
  const from = e.source === 'slurm' ? "Slurm's variables" : e.source === 'torchrun' ? "torchrun's variables" : 'no launcher';
  return `rank ${e.rank} of ${e.worldSize} on ${host} (node ${e.nodeRank}, local rank ${e.localRank} of ${e.localWorldSize}), rendezvous at ${e.masterAddr}:${e.masterPort} (from ${from})`;
}

/** True on the process that writes shared outputs (OLMo's get_global_rank() == 0). */
export function isMain(e: LaunchEnv): boolean {
  return e.rank === 0;
}

/** True on the first process of each node (OLMo's get_local_rank() == 0). */
export function isLocalMain(e: LaunchEnv): boolean {
  return e.localRank === 0;
}

/** Slurm's compressed task counts, `2(x3),1` -> [2, 2, 2, 1]. */
export function expandTasksPerNode(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part);
    if (!m) throw new ConfigError('SLURM_TASKS_PER_NODE', `cannot read ${JSON.stringify(s)} (expected e.g. "2(x3),1")`);
    for (let k = 0; k < Number(m[2] ?? 1); k++) out.push(Number(m[1]));
  }
  return out;
}

/**
 * Slurm's compressed host list, `nid[005-007,010],login1` -> nid005 nid006 nid007 nid010 login1
 * (zero padding kept, several bracket groups in one name expanded left to right).
 */
export function expandHostlist(s: string): string[] {
  const names: string[] = [];
  // split on commas that are outside brackets
  let depth = 0, start = 0;
  const parts: string[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') depth++;
    else if (s[i] === ']') depth--;
    else if (s[i] === ',' && depth === 0) { parts.push(s.slice(start, i)); start = i + 1; }
  }
  parts.push(s.slice(start));
  if (depth !== 0) throw new ConfigError('SLURM_JOB_NODELIST', `unbalanced brackets in ${JSON.stringify(s)}`);
  for (const p of parts.map((x) => x.trim()).filter(Boolean)) names.push(...expandOne(p, s));
  if (!names.length) throw new ConfigError('SLURM_JOB_NODELIST', `no host in ${JSON.stringify(s)}`);
  return names;
}

function expandOne(p: string, whole: string): string[] {
  const m = /^([^[]*)\[([^\]]*)\](.*)$/.exec(p);
  if (!m) return [p];
  const [, prefix, ranges, rest] = m;
  const tails = expandOne(rest!, whole);
  const out: string[] = [];
  for (const r of ranges!.split(',')) {
    const rm = /^(\d+)(?:-(\d+))?$/.exec(r.trim());
    if (!rm) throw new ConfigError('SLURM_JOB_NODELIST', `cannot read the range "${r}" in ${JSON.stringify(whole)}`);
    const lo = Number(rm[1]), hi = rm[2] !== undefined ? Number(rm[2]) : lo;
    const width = rm[1]!.length;
    for (let v = lo; v <= hi; v++) for (const t of tails) out.push(prefix + String(v).padStart(width, '0') + t);
  }
  return out;
}
