// A real Slurm for the tests of scripts/slurm/*.sbatch: starts scripts/slurm/local-cluster.sh in a
// temp folder (its own munged, slurmctld and one slurmd per node name, on ports the OS hands out),
// submits jobs with a CPU override, and reads their state; stop() cancels every job and stops the
// daemons (a watcher does the same if this process dies first).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, sleep } from './train-process';

const SCRIPT = path.join(ROOT, 'scripts', 'slurm', 'local-cluster.sh');

/** What `scontrol show job` says about a job (the fields the tests read). */
export interface JobInfo {
  state: string;
  exitCode: string;
  restarts: number;
  nodeList: string;
}

/** A running local cluster. */
export class LocalSlurm {
  private stopped = false;
  private constructor(
    /** The cluster's folder: slurm.conf, logs, state. */
    readonly dir: string,
    /** Node names, in slurm.conf order (one slurmd each). */
    readonly nodes: string[],
  ) {}

  /**
   * Why the cluster cannot start on this machine, or null when it can. Only a non-root user is a
   * reason to skip (slurmd must be root to start jobs); in CI, which runs as root, nothing is.
   */
  static cannotStart(): string | null {
    if (process.getuid?.() === 0) return null;
    if (process.env.CI) assert.fail('the Slurm tests must run in CI, which runs as root (this process is not)');
    return 'Slurm daemons need root (slurmd starts jobs as the submitting user); run the tests as root, as CI does';
  }

  /**
   * Starts a cluster in a new temp folder and waits until its nodes are idle. The script takes free
   * ports from the OS; one taken by someone else in the meantime fails a start, which is retried.
   */
  static start(): LocalSlurm {
    let why = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-slurm-'));
      const r = spawnSync('bash', [SCRIPT, 'start', dir, '--owner', String(process.pid)], { encoding: 'utf8', timeout: 120_000 });
      if (r.status === 0) return new LocalSlurm(dir, fs.readFileSync(path.join(dir, 'nodes'), 'utf8').trim().split('\n'));
      why = `status ${r.status ?? r.signal}:\n${r.stderr}${r.stdout}`;
      spawnSync('bash', [SCRIPT, 'stop', dir], { encoding: 'utf8', timeout: 60_000 });
      if (!process.env.OLMO_TS_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
    }
    return assert.fail(`the local Slurm did not start (3 attempts); last: ${why}`);
  }

  /** The environment for Slurm commands and jobs: ours, without any launcher variables of an outer job. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (/^(SLURM_|SLURMD_)/.test(k) || ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'OLMO_TS_LAUNCH_PID'].includes(k)) continue;
      env[k] = v;
    }
    return { ...env, SLURM_CONF: path.join(this.dir, 'slurm.conf'), OLMO_TS_NODE: process.execPath, ...extra };
  }

  /** Runs a Slurm client command and returns its output. */
  run(cmd: string, args: string[]): string {
    return execFileSync(cmd, args, { env: this.env(), encoding: 'utf8', timeout: 60_000 });
  }

  /**
   * Submits a job script with sbatch and returns its id. `options` go before the script (they
   * override its #SBATCH lines), `args` after it.
   */
  sbatch(script: string, options: string[], args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): number {
    const out = execFileSync('sbatch', ['--parsable', ...options, script, ...args], { cwd: opts.cwd, env: this.env(opts.env), encoding: 'utf8', timeout: 60_000 });
    const id = Number(out.trim().split(';')[0]);
    assert.ok(Number.isInteger(id) && id > 0, `sbatch printed ${JSON.stringify(out)}`);
    return id;
  }

  /** The job's state, exit code, restart count and nodes. */
  job(id: number): JobInfo {
    const text = this.run('scontrol', ['show', 'job', '-o', String(id)]);
    const field = (k: string): string => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(text)?.[1] ?? '';
    return { state: field('JobState'), exitCode: field('ExitCode'), restarts: Number(field('Restarts')), nodeList: field('NodeList') };
  }

  /** Host names of a compressed node list, as Slurm expands it. */
  hostnames(nodeList: string): string[] {
    return this.run('scontrol', ['show', 'hostnames', nodeList]).trim().split('\n');
  }

  /** Polls until the job has ended (COMPLETED, FAILED, ...); fails after `timeoutMs`. */
  async waitEnded(id: number, timeoutMs: number): Promise<JobInfo> {
    const t0 = Date.now();
    for (;;) {
      const j = this.job(id);
      if (!['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'SUSPENDED', 'RESIZING', 'SIGNALING', 'STAGE_OUT'].includes(j.state)) return j;
      if (Date.now() - t0 > timeoutMs) assert.fail(`job ${id} still ${j.state} after ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  }

  /** Cancels every job and stops the daemons (idempotent). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const r = spawnSync('bash', [SCRIPT, 'stop', this.dir], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) process.stderr.write(`local Slurm stop: ${r.stderr}\n`);
    if (!process.env.OLMO_TS_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Processes whose environment says they belong to Slurm job `jobId` (optionally: this task rank). */
export function jobProcesses(jobId: number, procid?: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let env: string;
    try {
      env = fs.readFileSync(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    const vars = env.split('\0');
    if (!vars.includes(`SLURM_JOB_ID=${jobId}`)) continue;
    if (procid !== undefined && !vars.includes(`SLURM_PROCID=${procid}`)) continue;
    out.push(Number(name));
  }
  return out;
}

/** The command line of a process ('' when it is gone). */
export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}
