// Data parallelism for the trainer (DDP's semantics, OLMo's NO_SHARD): every rank holds the whole
// model, trains its slice of each global batch, and the gradients are averaged across ranks in flat
// fp32 buckets before the optimizer step, so every rank applies the same update. Also the small
// agreements a multi-process run needs: identical starting weights, metrics averaged as OLMo
// averages them, and one decision to stop.
import { native } from '../native';
import { tensor } from '../tensor/creation';
import type { Tensor } from '../tensor/tensor';
import { tid } from '../tensor/tensor';
import type { ProcessGroup } from './process-group';
import { Work } from './process-group';

/** Options of DataParallel. */
export interface DataParallelOptions {
  /** Bucket size of the gradient all-reduce in MB (torch DDP's bucket_cap_mb; default 25). */
  bucketMb?: number;
  /**
   * Start each bucket's all-reduce from a hook as soon as backward has produced its gradients
   * (overlapping communication with the rest of backward), instead of after backward.
   */
  overlap?: boolean;
}

/**
 * Gradient averaging and rank agreement over a process group. With a group of one process every
 * method is a no-op (or the identity), so the single-process trainer runs the same code.
 */
export class DataParallel {
  private reducer: number | null = null;
  private readonly overlap: boolean;
  /** Bytes one gradient all-reduce moves per rank (fp32), and in how many buckets. */
  readonly gradBytes: number;
  readonly buckets: number;

  constructor(readonly pg: ProcessGroup, readonly params: Tensor[], o: DataParallelOptions = {}) {
    this.overlap = o.overlap ?? false;
    const g = pg.nativeId;
    if (g === null) {
      this.gradBytes = 0;
      this.buckets = 0;
      return;
    }
    const bucketBytes = Math.max(1, Math.round((o.bucketMb ?? 25) * 1024 * 1024));
    this.reducer = native.distReducerNew(g, params.map((p) => tid(p, 'parameter')), bucketBytes, this.overlap);
    const info = native.distReducerInfo(this.reducer);
    this.gradBytes = info.bytes;
    this.buckets = info.buckets;
  }

  get worldSize(): number {
    return this.pg.size;
  }

  /** Copies rank 0's parameters to every rank (as DDP does at construction). */
  async broadcastParams(): Promise<void> {
    if (this.pg.size > 1) await this.pg.broadcast(this.params, 0).wait();
  }

  /**
   * Call before the backward of each micro-batch; `last` marks the one after which gradients are
   * reduced (earlier micro-batches only accumulate locally, as DDP's no_sync).
   */
  beforeBackward(last: boolean): void {
    if (this.reducer !== null && this.overlap && last) native.distReducerArm(this.reducer);
  }

  /** Averages every parameter's gradient across the group (after the last backward). */
  async syncGradients(): Promise<void> {
    if (this.reducer === null) return;
    await new Work(native.distReducerReduce(this.reducer)).wait();
  }

  /** The mean of each value across ranks (OLMo reduces its loss metrics this way). // SYNC */
  async mean(values: number[]): Promise<number[]> {
    if (this.pg.size === 1) return values;
    const t = tensor(Float64Array.from(values), { dtype: 'float64', device: this.pg.device });
    try {
      await this.pg.allReduce(t, 'avg').wait();
      return Array.from(t.toArray() as Float64Array);
    } finally {
      t.dispose();
    }
  }

  /** The largest value across ranks (to agree on a stop decision that any rank may take). // SYNC */
  async max(value: number): Promise<number> {
    if (this.pg.size === 1) return value;
    const t = tensor(Float64Array.of(value), { dtype: 'float64', device: this.pg.device });
    try {
      await this.pg.allReduce(t, 'max').wait();
      return (t.toArray() as Float64Array)[0]!;
    } finally {
      t.dispose();
    }
  }

  /** Resolves when every rank has got here. */
  barrier(): Promise<void> {
    return this.pg.barrier();
  }

  /** Removes the gradient hooks; the process group stays open (its owner closes it). Idempotent. */
  close(): void {
    if (this.reducer !== null) native.distReducerClose(this.reducer);
    this.reducer = null;
  }
}
