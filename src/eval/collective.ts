// How evaluation spreads over ranks: the small collective interface evaluators need (rank, world
// size, an all-reduce of float64 sums), the single-process identity, and OLMo's eval sampler
// (torch's DistributedSampler: optional seeded shuffle, padding or dropping to a multiple of the
// world size, then every world_size-th index from the rank's offset).
import type { Device } from '../tensor/dtype';
import { DataError } from '../data/errors';
import { randperm, tensor } from '../tensor/creation';
import { Generator } from '../tensor/random';
import type { Tensor } from '../tensor/tensor';

/**
 * What an evaluator needs from the process group. Each rank evaluates its slice of every eval set
 * and the per-rank sums are added with one all-reduce per evaluator, so every rank ends with the
 * same metrics. With one process this is the identity ({@link SINGLE_PROCESS}).
 */
export interface EvalCollective {
  /** This process's rank, 0 <= rank < worldSize. */
  readonly rank: number;
  /** Number of processes evaluating together. */
  readonly worldSize: number;
  /**
   * Element-wise sum of `values` over all ranks, returned on every rank (c10d all_reduce SUM on a
   * float64 tensor). Every rank calls it the same number of times with arrays of the same length.
   * May return `values` itself, modified or not; callers do not reuse the argument.
   */
  allReduceSum(values: Float64Array): Promise<Float64Array>;
}

/** One process: rank 0 of 1, and a sum over one rank is the array itself. */
export const SINGLE_PROCESS: EvalCollective = {
  rank: 0,
  worldSize: 1,
  allReduceSum: async (values) => values,
};

/** The part of a c10d process group evaluation uses (src/dist's ProcessGroup has this shape). */
export interface SumAllReduceGroup {
  readonly rank: number;
  readonly size: number;
  /** 'gloo' reduces CPU tensors, 'nccl' CUDA tensors. */
  readonly backend?: string;
  /** Where the group's tensors live (the CPU for Gloo, this rank's GPU for NCCL); default cpu. */
  readonly device?: Device;
  allReduce(t: Tensor, op: 'sum'): { wait(): Promise<void> };
}

/**
 * An EvalCollective over a process group: one float64 all-reduce (SUM) per call, on the CPU for
 * Gloo and on this rank's GPU for NCCL. A group of one returns the array unchanged.
 */
export function collectiveFromProcessGroup(pg: SumAllReduceGroup): EvalCollective {
  return {
    rank: pg.rank,
    worldSize: pg.size,
    async allReduceSum(values: Float64Array): Promise<Float64Array> {
      if (pg.size === 1) return values;
      const t = tensor(values, { dtype: 'float64', device: pg.device ?? 'cpu' });
      try {
        await pg.allReduce(t, 'sum').wait(); // SYNC
        return t.toFloat64Array();
      } finally {
        t.dispose();
      }
    },
  };
}

/** Checks a collective's rank and world size (a misconfigured launcher is caught here, not mid-eval). */
export function checkCollective(c: EvalCollective): void {
  if (!Number.isInteger(c.worldSize) || c.worldSize < 1) throw new DataError(`world size must be a positive integer, got ${c.worldSize}`, { key: 'worldSize' });
  if (!Number.isInteger(c.rank) || c.rank < 0 || c.rank >= c.worldSize) throw new DataError(`rank ${c.rank} is not in [0, ${c.worldSize})`, { key: 'rank' });
}

/** Options of {@link distributedSamplerIndices} (torch.utils.data.DistributedSampler's arguments). */
export interface SamplerOptions {
  rank: number;
  worldSize: number;
  /** Shuffle with torch.randperm under a generator seeded with `seed` (epoch 0, as OLMo never calls set_epoch on eval samplers). */
  shuffle: boolean;
  seed: number;
  /** Drop the tail that does not divide evenly (else the order is padded by repeating its start). */
  dropLast: boolean;
}

/**
 * The dataset indices one rank evaluates, in order: torch's DistributedSampler over `n` items.
 * The permutation comes from libtorch's own randperm on a private generator, so it is the one
 * PyTorch gives on the same libtorch version and the global random stream is untouched.
 */
export function distributedSamplerIndices(n: number, o: SamplerOptions): Uint32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`dataset size must be a non-negative integer, got ${n}`);
  const W = o.worldSize;
  const numSamples = o.dropLast && n % W !== 0 ? Math.ceil((n - W) / W) : Math.ceil(n / W);
  const total = numSamples * W;
  let order: Uint32Array;
  if (o.shuffle && n > 0) {
    const g = new Generator(o.seed);
    try {
      const t = randperm(n, { generator: g });
      try {
        order = Uint32Array.from(t.toArray() as BigInt64Array, (v) => Number(v));
      } finally {
        t.dispose();
      }
    } finally {
      g.close();
    }
  } else {
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
  }
  // Padding repeats the order from its start (as often as needed); drop_last cuts it.
  const padded = new Uint32Array(total);
  for (let i = 0; i < total; i++) padded[i] = n === 0 ? 0 : order[i % n]!;
  const out = new Uint32Array(numSamples);
  for (let i = 0, j = o.rank; i < numSamples; i++, j += W) out[i] = padded[j]!;
  return out;
}
