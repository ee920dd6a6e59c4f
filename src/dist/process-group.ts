// Process groups over c10d (native/dist.cc): the rendezvous (rank 0 hosts a TCP store, or a file on
// a shared file system), Gloo for CPU tensors and NCCL (RCCL on ROCm) for CUDA tensors, collectives
// that return a Work to await, and sub-groups (one per node, one across nodes) for hybrid sharding.
// A world of one process needs none of it: `ProcessGroup.single()` answers every collective locally.
import type { Device } from '../tensor/dtype';
import { native } from '../native';
import { ArgumentError, DistributedTimeoutError } from '../native/errors';
import type { Tensor } from '../tensor/tensor';
import { tid } from '../tensor/tensor';
import { LaunchEnv, readLaunchEnv } from './env';

/** torch's default process-group timeout (30 minutes). */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

/** Reductions; Gloo's missing AVG is a sum then a division. */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';
const OPS: Record<ReduceOp, number> = { sum: 0, avg: 1, max: 2, min: 3 };

export type Backend = 'gloo' | 'nccl';

/** A collective in flight. `wait()` settles when it is done (without blocking the event loop). */
export class Work {
  private done: Promise<void> | null = null;
  /** @internal */
  constructor(private readonly handle: number | null) {}
  /** Resolves once the collective has completed and its results are in place; rejects with a
   *  DistributedError (or DistributedTimeoutError) naming the collective, rank and group size. */
  wait(): Promise<void> {
    this.done ??= this.handle === null ? Promise.resolve() : native.distWait([this.handle]);
    return this.done;
  }
  /** Whether it has completed, without waiting (a waited Work is complete). */
  isCompleted(): boolean {
    return this.done !== null || this.handle === null || native.distIsCompleted(this.handle);
  }
}

/** Waits for several works in order, with one pool thread. */
export async function waitAll(works: Work[]): Promise<void> {
  for (const w of works) await w.wait();
}

/** Options of initProcessGroup. */
export interface InitOptions {
  /** Default: the process environment (readLaunchEnv). */
  env?: LaunchEnv;
  /** Default: 'nccl' when the model's device is CUDA, else 'gloo' (OLMo's choice by device). */
  backend?: Backend;
  /** Rendezvous and collective timeout in ms (default 30 min, as torch; OLMO_TS_DIST_TIMEOUT_S overrides). */
  timeoutMs?: number;
  /** Rendezvous through a file on a shared file system instead of a TCP store on MASTER_ADDR. */
  storeFile?: string;
  /** NCCL: this rank's GPU (default cuda:LOCAL_RANK), where collectives' small tensors are made. */
  device?: Device;
}

/** The timeout: the option, else OLMO_TS_DIST_TIMEOUT_S (seconds), else torch's 30 minutes. */
export function resolveTimeoutMs(opt?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (opt !== undefined) return opt;
  const raw = env.OLMO_TS_DIST_TIMEOUT_S;
  if (raw === undefined || raw === '') return DEFAULT_TIMEOUT_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new ArgumentError(`OLMO_TS_DIST_TIMEOUT_S=${JSON.stringify(raw)} is not a positive number of seconds`);
  return Math.round(s * 1000);
}

/**
 * Every rank announces itself in the store and waits for the others, so that a missing rank is
 * reported by number ("rank 1 of 2 did not join") rather than as a socket timeout inside Gloo.
 */
async function checkIn(store: number, env: LaunchEnv, timeoutMs: number): Promise<void> {
  native.distStoreSet(store, `olmo-ts/joined/${env.rank}`, Uint8Array.of(1));
  const deadline = Date.now() + timeoutMs;
  for (let r = 0; r < env.worldSize; r++) {
    try {
      await native.distStoreGet(store, `olmo-ts/joined/${r}`, Math.max(1, deadline - Date.now()));
    } catch (e) {
      if (!(e instanceof DistributedTimeoutError)) throw e;
      const missing = Array.from({ length: env.worldSize }, (_, k) => k).filter((k) => !native.distStoreCheck(store, `olmo-ts/joined/${k}`));
      throw new DistributedTimeoutError(
        `rank ${missing.join(', ')} of ${env.worldSize} did not join within ${Math.round(timeoutMs / 1000)} s ` +
          `(rendezvous at ${env.masterAddr}:${env.masterPort}; every rank needs the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE)`,
      );
    }
  }
}

/** A loopback MASTER_ADDR means every rank is on this machine: Gloo then binds to 127.0.0.1. */
function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr.startsWith('127.') || addr === '::1';
}

/**
 * A group of processes that run collectives together. `rank`/`size` are within the group; the
 * world group also knows the launch environment.
 */
export class ProcessGroup {
  private closed = false;
  private children: ProcessGroup[] = [];
  /** Sub-groups created so far (every rank counts every call, so store prefixes never repeat). */
  private subgroups = 0;

  private constructor(
    /** Native group id; null for a group of one process. */
    private readonly id: number | null,
    private readonly store: number | null,
    readonly rank: number,
    readonly size: number,
    readonly backend: Backend,
    readonly name: string,
    readonly timeoutMs: number,
    private readonly gloo: { hostname?: string; ifname?: string },
    /** Where tensors for this group's collectives live: the CPU (Gloo) or this rank's GPU (NCCL). */
    readonly device: Device = 'cpu',
  ) {}

  /** A world of one: every collective is the identity (sum/avg/max/min of one value). */
  static single(backend: Backend = 'gloo', device: Device = backend === 'nccl' ? 'cuda:0' : 'cpu'): ProcessGroup {
    return new ProcessGroup(null, null, 0, 1, backend, 'world', DEFAULT_TIMEOUT_MS, {}, device);
  }

  /**
   * Joins the world: rank 0 hosts the rendezvous store at MASTER_ADDR:MASTER_PORT and every rank
   * connects; resolves once all `worldSize` ranks are in the group. A rank that never comes fails
   * the others with a DistributedTimeoutError after the timeout.
   */
  static async init(opts: InitOptions = {}): Promise<ProcessGroup> {
    const env = opts.env ?? readLaunchEnv();
    const backend = opts.backend ?? 'gloo';
    const timeoutMs = resolveTimeoutMs(opts.timeoutMs);
    if (backend === 'nccl' && !native.distHasNccl()) throw new ArgumentError('the NCCL backend needs an addon built against a CUDA libtorch with NCCL (this one is CPU-only); use gloo');
    const device: Device = backend === 'nccl' ? opts.device ?? `cuda:${env.localRank}` : 'cpu';
    if (env.worldSize === 1) return ProcessGroup.single(backend, device);
    const gloo = process.env.GLOO_SOCKET_IFNAME ? { ifname: process.env.GLOO_SOCKET_IFNAME } : isLoopback(env.masterAddr) ? { hostname: '127.0.0.1' } : {};
    const store = opts.storeFile
      ? native.distFileStore(opts.storeFile, env.worldSize)
      : await native.distTcpStore(env.masterAddr, env.masterPort, env.rank === 0, env.worldSize, timeoutMs);
    try {
      await checkIn(store, env, timeoutMs);
      const id = await native.distNewGroup(store, 'world', env.rank, env.worldSize, backend, timeoutMs, gloo);
      return new ProcessGroup(id, store, env.rank, env.worldSize, backend, 'world', timeoutMs, gloo, device);
    } catch (e) {
      native.distStoreClose(store);
      throw e;
    }
  }

  /**
   * A sub-group of `ranks` (world ranks, ascending). Every member of THIS group must call it with the
   * same list, in the same order of calls (as torch's new_group); a non-member gets null.
   */
  async subgroup(ranks: number[], name: string): Promise<ProcessGroup | null> {
    this.check();
    if (!ranks.length || ranks.some((r, i) => !Number.isInteger(r) || r < 0 || r >= this.size || (i > 0 && r <= ranks[i - 1]!))) {
      throw new ArgumentError(`subgroup ranks must be distinct ascending ranks of the group (0..${this.size - 1}), got [${ranks}]`);
    }
    const seq = this.subgroups++;
    const mine = ranks.indexOf(this.rank);
    if (mine < 0) return null;
    if (this.id === null || ranks.length === 1) return new ProcessGroup(null, null, 0, 1, this.backend, name, this.timeoutMs, {}, this.device);
    // A fresh store prefix per group: a later group of the same name must not meet the rendezvous
    // keys an earlier (perhaps closed) one left in the store.
    const id = await native.distNewGroup(this.store!, `${this.name}/${seq}/${name}`, mine, ranks.length, this.backend, this.timeoutMs, this.gloo);
    const g = new ProcessGroup(id, null, mine, ranks.length, this.backend, name, this.timeoutMs, this.gloo, this.device);
    this.children.push(g);
    return g;
  }

  private check(): void {
    if (this.closed) throw new ArgumentError(`process group '${this.name}' was closed`);
  }

  /** Reduces the tensors (one dtype, one device) in place across the group; several are reduced as one flat buffer. */
  allReduce(tensors: Tensor | Tensor[], op: ReduceOp = 'sum'): Work {
    this.check();
    const ts = Array.isArray(tensors) ? tensors : [tensors];
    const ids = ts.map((t) => tid(t, 'all_reduce tensor'));
    if (this.id === null) return new Work(null);
    return new Work(native.distAllReduce(this.id, ids, OPS[op]));
  }

  /** Copies root's tensors, bit for bit, into every rank's tensors. */
  broadcast(tensors: Tensor | Tensor[], root = 0): Work {
    this.check();
    const ts = Array.isArray(tensors) ? tensors : [tensors];
    const ids = ts.map((t) => tid(t, 'broadcast tensor'));
    if (!Number.isInteger(root) || root < 0 || root >= this.size) throw new ArgumentError(`broadcast root must be a rank of the group (0..${this.size - 1}), got ${root}`);
    if (this.id === null) return new Work(null);
    return new Work(native.distBroadcast(this.id, ids, root));
  }

  /** out (size x input.numel elements, contiguous) receives every rank's input, in rank order. */
  allGather(out: Tensor, input: Tensor): Work {
    this.check();
    if (this.id === null) {
      out.view([-1]).copy_(input.reshape([-1]));
      return new Work(null);
    }
    return new Work(native.distAllGather(this.id, tid(out, 'all_gather output'), tid(input, 'all_gather input')));
  }

  /** Rank r's out receives the reduction of chunk r of every rank's input (size x out.numel elements). */
  reduceScatter(out: Tensor, input: Tensor, op: ReduceOp = 'sum'): Work {
    this.check();
    if (this.id === null) {
      out.copy_(input.reshape(out.shape));
      return new Work(null);
    }
    return new Work(native.distReduceScatter(this.id, tid(out, 'reduce_scatter output'), tid(input, 'reduce_scatter input'), OPS[op]));
  }

  /** Resolves once every rank of the group has reached it. */
  barrier(): Promise<void> {
    this.check();
    return this.id === null ? Promise.resolve() : new Work(native.distBarrier(this.id)).wait();
  }

  /** @internal The native group id (null for a group of one), for mechanism code in src/dist/. */
  get nativeId(): number | null {
    return this.id;
  }

  /** Leaves the group (and its sub-groups); idempotent. Collectives in flight must have been waited for. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.children) c.close();
    this.children = [];
    if (this.id !== null) native.distCloseGroup(this.id);
    if (this.store !== null) native.distStoreClose(this.store);
  }
}
