// The training data loader: one rank's device batches in OLMo's order, read ahead off the JS thread
// (asynchronous positioned reads on libuv's pool, or worker threads that read and collate), and the
// time the training loop spent waiting for data.
import type { Worker } from 'node:worker_threads';
import { DataError } from './errors';
import { Batch, CollatorOptions, collate } from './collator';
import { rankIndices } from './global-indices';
import { LoaderReply, LoaderWorkerData } from './loader-worker';
import { MemMapDataset } from './memmap-dataset';
import { startWorker } from './threads';

/** A batch as the loader yields it. */
export interface LoaderBatch extends Batch {
  /** 0-based device batch number within this epoch (resume included: the first is startIndex / globalBatchSize). */
  batchIndex: number;
}

/** Options of a DataLoader. */
export interface LoaderOptions {
  dataset: MemMapDataset;
  /** The epoch's global order (buildGlobalIndices or loadGlobalIndices). */
  globalIndices: Uint32Array;
  /** `global_train_batch_size`; must be a multiple of worldSize. */
  globalBatchSize: number;
  rank?: number;
  worldSize?: number;
  /** Instances already trained on in this epoch (a multiple of globalBatchSize to stay aligned). */
  startIndex?: number;
  /**
   * Global batches of changing size (BatchSizeSchedule.epochPlan, batch_size_warmup): batch j is
   * order[starts[j] : starts[j] + sizes[j]], this rank's share every worldSize-th of it. The
   * starts follow each other from startIndex; globalBatchSize is then only the largest size.
   */
  plan?: { starts: ArrayLike<number>; sizes: ArrayLike<number> };
  /** Stop after this many global instances. */
  maxExamples?: number;
  /** Drop this rank's last, smaller batch (`data.drop_last`). */
  dropLast?: boolean;
  padDirection?: 'right' | 'left';
  padTokenId: number;
  /** Worker threads that read and collate (0, the default: async reads from this thread). */
  numWorkers?: number;
  /** Batches read ahead per worker (or in total with 0 workers); default 2. */
  prefetchFactor?: number;
}

/**
 * Iterates one rank's device batches: `for await (const b of loader)`. Batch j holds
 * `rankIndices(...)[j*Bd:(j+1)*Bd]` with Bd = globalBatchSize / worldSize, as OLMo's loader.
 * Up to `prefetchFactor` batches (per worker) are in flight while the caller trains.
 */
export class DataLoader implements AsyncIterable<LoaderBatch> {
  /** This rank's instance indices, in order. */
  readonly indices: Uint32Array;
  readonly deviceBatchSize: number;
  /** Number of batches this loader yields. */
  readonly numBatches: number;
  /** Total milliseconds `next()` waited for a batch that was not ready yet. */
  waitMs = 0;
  /** Milliseconds the last batch was waited for. */
  lastWaitMs = 0;
  private readonly firstBatch: number;
  private readonly plan: LoaderOptions['plan'] | null = null;
  private readonly collator: CollatorOptions;
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (b: Batch) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly o: LoaderOptions) {
    const W = o.worldSize ?? 1;
    if (!Number.isInteger(o.globalBatchSize) || o.globalBatchSize < 1 || o.globalBatchSize % W !== 0) {
      throw new DataError(`global batch size ${o.globalBatchSize} must be a positive multiple of the world size ${W}`, { key: 'global_train_batch_size' });
    }
    this.deviceBatchSize = o.globalBatchSize / W;
    this.indices = rankIndices(o.globalIndices, { rank: o.rank ?? 0, worldSize: W, startIndex: o.startIndex, maxExamples: o.maxExamples });
    if (o.plan) {
      const { starts, sizes } = o.plan;
      let pos = o.startIndex ?? 0;
      for (let j = 0; j < starts.length; j++) {
        if (starts[j] !== pos || sizes[j]! % W !== 0 || pos + sizes[j]! > o.globalIndices.length) {
          throw new DataError(`batch plan entry ${j} (start ${starts[j]}, size ${sizes[j]}) does not continue at ${pos} in multiples of the world size ${W} within ${o.globalIndices.length} instances`, { key: 'batch_size_warmup' });
        }
        pos += sizes[j]!;
      }
      this.plan = o.plan;
      this.numBatches = starts.length;
    } else {
      const full = Math.floor(this.indices.length / this.deviceBatchSize);
      this.numBatches = o.dropLast || this.indices.length % this.deviceBatchSize === 0 ? full : full + 1;
    }
    this.firstBatch = Math.floor((o.startIndex ?? 0) / o.globalBatchSize);
    this.collator = { padDirection: o.padDirection ?? 'right', padTokenId: o.padTokenId };
    const nw = o.numWorkers ?? 0;
    if (!Number.isInteger(nw) || nw < 0) throw new DataError(`expected an integer >= 0, got ${nw}`, { key: 'data.num_workers' });
    const pf = o.prefetchFactor ?? 2;
    if (!Number.isInteger(pf) || pf < 1) throw new DataError(`expected an integer >= 1, got ${pf}`, { key: 'data.prefetch_factor' });
    for (let i = 0; i < nw; i++) {
      const w = startWorker('loader-worker', {
        workerData: { kind: 'olmo-ts-loader', dataset: o.dataset.options, collator: this.collator } satisfies LoaderWorkerData,
      });
      w.on('message', (m: LoaderReply) => {
        const p = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        if (this.pending.size === 0) for (const x of this.workers) x.unref(); // idle workers do not hold the process open
        if (p) m.ok ? p.resolve(m.batch) : p.reject(new DataError(m.message));
      });
      w.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
      w.unref();
      this.workers.push(w);
    }
  }

  /** The dataset indices of this rank's batch j (0-based within this loader). */
  batchIndices(j: number): Uint32Array {
    if (this.plan) {
      const W = this.o.worldSize ?? 1, s0 = this.o.startIndex ?? 0;
      const a = this.plan.starts[j]! - s0;
      return this.indices.subarray(a / W, (a + this.plan.sizes[j]!) / W);
    }
    return this.indices.subarray(j * this.deviceBatchSize, (j + 1) * this.deviceBatchSize);
  }

  private load(j: number): Promise<Batch> {
    const idx = this.batchIndices(j);
    if (this.workers.length === 0) {
      return Promise.all(Array.from(idx, (i) => this.o.dataset.getAsync(i))).then((items) => collate(items, this.collator));
    }
    // Batch j goes to worker j mod W, so the order does not depend on which worker is faster.
    const w = this.workers[j % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(j, { resolve, reject });
      w.ref();
      w.postMessage({ seq: j, indices: Uint32Array.from(idx) });
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LoaderBatch> {
    const ahead = (this.o.prefetchFactor ?? 2) * Math.max(1, this.workers.length);
    const queue: Array<Promise<Batch>> = [];
    let next = 0;
    const fill = (): void => {
      while (!this.closed && queue.length < ahead && next < this.numBatches) {
        const p = this.load(next++);
        p.catch(() => undefined); // surfaced when awaited below
        queue.push(p);
      }
    };
    try {
      for (let j = 0; j < this.numBatches && !this.closed; j++) {
        fill();
        const t0 = performance.now();
        const b = await queue.shift()!;
        this.lastWaitMs = performance.now() - t0;
        this.waitMs += this.lastWaitMs;
        fill(); // start the next read before handing this batch to the caller
        yield { ...b, batchIndex: this.firstBatch + j };
      }
    } finally {
      await Promise.allSettled(queue);
    }
  }

  /** Stops the worker threads; idempotent. The dataset stays open (its owner closes it). */
  async close(): Promise<void> {
    this.closed = true;
    const ws = this.workers;
    this.workers = [];
    for (const p of this.pending.values()) p.reject(new Error('DataLoader closed'));
    this.pending.clear();
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
