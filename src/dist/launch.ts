// `olmo-ts launch`: torchrun's job for one node. Starts N ranks of an olmo-ts command with the
// launch environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, NODE_RANK, MASTER_ADDR,
// MASTER_PORT), prefixes each output line with its rank, forwards SIGTERM/SIGINT/SIGHUP to every
// rank (so preemption still checkpoints), and when one rank fails stops the others (SIGTERM, then
// SIGKILL after a grace period) and exits with that rank's status, leaving no process behind.
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import { DEFAULT_MASTER_PORT } from './env';

/** Exit status of a run stopped early with a checkpoint (as `olmo-ts train`). */
const EXIT_INTERRUPTED = 75;

/** What `launch` starts. */
export interface LaunchOptions {
  /** The olmo-ts arguments every rank runs, e.g. ['train', 'cfg.yaml', '--max_duration=10']. */
  command: string[];
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  /** Default: a free port on a single node, else 29500. */
  masterPort?: number;
  /** Seconds a rank gets to stop after SIGTERM before SIGKILL (default 30). */
  graceSeconds?: number;
  /** Collective/rendezvous timeout handed to the ranks (OLMO_TS_DIST_TIMEOUT_S). */
  timeoutSeconds?: number;
  /** The program the ranks run (default: this olmo-ts CLI under this node). */
  argv0?: string[];
  /** Where prefixed lines go (default process.stdout / process.stderr). */
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** Extra environment for every rank. */
  env?: NodeJS.ProcessEnv;
}

/** How the launch ended. */
export interface LaunchResult {
  exitCode: number;
  /** The rank whose failure ended the run, if one did. */
  failedRank: number | null;
  /** Every rank's exit code (null when killed by a signal) and signal. */
  ranks: { rank: number; code: number | null; signal: NodeJS.Signals | null }[];
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Splits a stream into lines and hands each to `emit` with a prefix (a last partial line at the end). */
function prefixLines(stream: NodeJS.ReadableStream, prefix: string, emit: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.search(/[\r\n]/)) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.length) emit(prefix + line);
    }
  });
  stream.on('end', () => { if (buf.length) emit(prefix + buf); });
}

/** Runs the ranks of one node until all have exited; never throws for a failing rank. */
export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  const N = o.nprocPerNode, M = o.nnodes ?? 1, node = o.nodeRank ?? 0;
  if (!Number.isInteger(N) || N < 1) throw new RangeError(`--nproc-per-node must be a positive integer, got ${N}`);
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`--nnodes must be a positive integer, got ${M}`);
  if (!Number.isInteger(node) || node < 0 || node >= M) throw new RangeError(`--node-rank must be in [0, ${M - 1}], got ${node}`);
  if (M > 1 && !o.masterAddr) throw new RangeError('--master-addr is required with --nnodes > 1 (the host of node 0)');
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? (M === 1 ? await freePort(masterAddr) : DEFAULT_MASTER_PORT);
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const err = o.err ?? ((l: string) => process.stderr.write(l + '\n'));
  const say = (m: string): void => err(`olmo-ts launch: ${m}`);
  const argv0 = o.argv0 ?? [process.execPath, require.resolve('../cli/main')];
  const grace = (o.graceSeconds ?? 30) * 1000;
  // torchrun sets OMP_NUM_THREADS=1 for several ranks; on CPU the cores are better shared out.
  const threads = process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(os.cpus().length / N)));

  const children: { rank: number; p: ChildProcess; code: number | null; signal: NodeJS.Signals | null; done: boolean }[] = [];
  let failed: { rank: number; code: number | null; signal: NodeJS.Signals | null } | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  let resolveAll!: () => void;
  const allDone = new Promise<void>((r) => (resolveAll = r));

  const stopOthers = (why: string): void => {
    const alive = children.filter((c) => !c.done);
    if (!alive.length || killTimer) return;
    say(`${why}; sending SIGTERM to rank${alive.length > 1 ? 's' : ''} ${alive.map((c) => c.rank).join(', ')} (SIGKILL after ${grace / 1000} s)`);
    for (const c of alive) c.p.kill('SIGTERM');
    killTimer = setTimeout(() => {
      for (const c of children) if (!c.done) { say(`rank ${c.rank} did not stop within ${grace / 1000} s: SIGKILL`); c.p.kill('SIGKILL'); }
    }, grace);
    killTimer.unref();
  };

  // Inside a Slurm job step, Slurm delivers every signal (scancel --signal, --signal=TERM@N, srun
  // stopping the step) to each process of the step, the ranks included: forwarding it again would
  // make it a second signal, which stops a rank at once without a checkpoint.
  const slurmStep = process.env.SLURM_STEP_ID !== undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (slurmStep) {
      say(`${sig} received: not forwarded (Slurm job step ${process.env.SLURM_JOB_ID ?? '?'}.${process.env.SLURM_STEP_ID}: the ranks receive it from Slurm)`);
      return;
    }
    say(`${sig} received: forwarding to every rank`);
    for (const c of children) if (!c.done) c.p.kill(sig);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);

  for (let local = 0; local < N; local++) {
    const rank = node * N + local;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...o.env,
      RANK: String(rank),
      WORLD_SIZE: String(N * M),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(N),
      NODE_RANK: String(node),
      GROUP_RANK: String(node),
      MASTER_ADDR: masterAddr,
      MASTER_PORT: String(masterPort),
      OMP_NUM_THREADS: threads,
      OLMO_TS_LAUNCH_PID: String(process.pid),
    };
    if (o.timeoutSeconds !== undefined) env.OLMO_TS_DIST_TIMEOUT_S = String(o.timeoutSeconds);
    const p = spawn(argv0[0]!, [...argv0.slice(1), ...o.command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const c = { rank, p, code: null as number | null, signal: null as NodeJS.Signals | null, done: false };
    children.push(c);
    prefixLines(p.stdout!, `[rank${rank}] `, out);
    prefixLines(p.stderr!, `[rank${rank}] `, err);
    p.on('error', (e) => {
      say(`rank ${rank} could not start: ${e.message}`);
    });
    p.on('close', (code, signal) => {
      c.done = true;
      c.code = code;
      c.signal = signal;
      const clean = code === 0 || code === EXIT_INTERRUPTED;
      if (!clean && !failed) {
        failed = { rank, code, signal };
        stopOthers(`rank ${rank} (pid ${p.pid}) ${signal ? `was killed by ${signal}` : `exited with status ${code}`}`);
      }
      if (children.every((x) => x.done)) resolveAll();
    });
  }

  await allDone;
  if (killTimer) clearTimeout(killTimer);
  for (const s of signals) process.off(s, onSignal);
  const ranks = children.map(({ rank, code, signal }) => ({ rank, code, signal }));
  const f = failed as { rank: number; code: number | null; signal: NodeJS.Signals | null } | null;
  if (f) {
    const status = f.code ?? 128 + (os.constants.signals[f.signal!] ?? 9);
    say(`failed: rank ${f.rank} ${f.signal ? `was killed by ${f.signal}` : `exited with status ${f.code}`}; exit ${status}`);
    return { exitCode: status, failedRank: f.rank, ranks };
  }
  const exitCode = ranks.some((r) => r.code === EXIT_INTERRUPTED) ? EXIT_INTERRUPTED : 0;
  return { exitCode, failedRank: null, ranks };
}

/**
 * In a rank started by `launch`: when the launcher disappears (killed with SIGKILL, so it could not
 * stop its ranks), stop this rank as if it got SIGTERM — it checkpoints and exits — so no rank is
 * left behind. A no-op outside `launch`.
 */
export function watchLauncher(onLost: () => void, env: NodeJS.ProcessEnv = process.env): () => void {
  const pid = Number(env.OLMO_TS_LAUNCH_PID);
  if (!Number.isInteger(pid) || pid <= 0) return () => undefined;
  let lost = false;
  const lose = (): void => {
    if (lost) return;
    lost = true;
    clearInterval(timer);
    // Nobody reads our output any more: writing to the dead launcher's pipes must not kill the
    // rank before it has checkpointed.
    for (const s of [process.stdout, process.stderr]) s.write = (() => true) as typeof s.write;
    onLost();
  };
  const onPipeError = (e: NodeJS.ErrnoException): void => {
    if (e.code === 'EPIPE') lose();
    else throw e;
  };
  process.stdout.on('error', onPipeError);
  process.stderr.on('error', onPipeError);
  const timer = setInterval(() => { if (process.ppid !== pid) lose(); }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    process.stdout.off('error', onPipeError);
    process.stderr.off('error', onPipeError);
  };
}
