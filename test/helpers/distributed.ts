// runDistributed: runs a function in N real processes that form a Gloo process group on this
// machine (torchrun's environment, a free port), and returns each rank's result. The function lives
// in a module (processes cannot share closures): `runDistributed(module, 'name', {worldSize: 2}, args)`
// calls `export async function name(pg, args)` there on every rank.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RankResult<T> {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  result?: T;
  /** The error message when the function threw. */
  error?: string;
  errorName?: string;
  output: string;
}

export interface RunOptions {
  worldSize: number;
  /** Kill every rank after this long (default 120 s). */
  timeoutMs?: number;
  /** Extra environment for every rank (or per rank). */
  env?: NodeJS.ProcessEnv | ((rank: number) => NodeJS.ProcessEnv);
  /** Ranks that are not started at all (to test a rank that never joins). */
  skipRanks?: number[];
}

/** Runs `fn` of `module` on every rank and collects the results (never throws for a failing rank). */
export async function runDistributed<T = unknown>(module: string, fn: string, o: RunOptions, args: unknown = {}): Promise<RankResult<T>[]> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-dist-'));
  const child = path.join(__dirname, 'distributed-child.ts');
  const runs: Promise<RankResult<T>>[] = [];
  for (let rank = 0; rank < o.worldSize; rank++) {
    if (o.skipRanks?.includes(rank)) continue;
    const extra = typeof o.env === 'function' ? o.env(rank) : o.env ?? {};
    const out = path.join(dir, `rank${rank}.json`);
    const p = spawn(process.execPath, ['--import', 'tsx', child, path.resolve(module), fn, out, JSON.stringify(args)], {
      cwd: ROOT,
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(o.worldSize), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(o.worldSize), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    runs.push(new Promise((resolve) => {
      p.on('close', (code, signal) => {
        clearTimeout(timer);
        const r: RankResult<T> = { rank, code, signal, output };
        if (fs.existsSync(out)) Object.assign(r, JSON.parse(fs.readFileSync(out, 'utf8')));
        resolve(r);
      });
    }));
  }
  const results = await Promise.all(runs);
  fs.rmSync(dir, { recursive: true, force: true });
  return results;
}

/** The results of ranks that all succeeded, or an error listing every rank's failure and output. */
export function okResults<T>(rs: RankResult<T>[]): T[] {
  const bad = rs.filter((r) => r.code !== 0 || r.error !== undefined);
  if (bad.length) {
    throw new Error(bad.map((r) => `rank ${r.rank} exited ${r.code ?? r.signal}: ${r.error ?? ''}\n${r.output.slice(-2000)}`).join('\n---\n'));
  }
  return rs.map((r) => r.result as T);
}
