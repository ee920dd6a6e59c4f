// The global batch size of every training step, and where each step's batch lies in OLMo's data
// order: constant (global_train_batch_size), or growing by tokens trained on (batch_size_warmup,
// an olmo-ts extension). Steps take consecutive slices of the epoch's global order, so a bigger
// batch consumes more of the same sequence; the trainer, the loader, inspect-data and resume all
// ask this module, so they agree on which instances each step trained on.
import { batchSizeSteps } from '../config/batch-size-warmup';
import type { BatchSizeProgress } from '../config/duration';
import { ConfigError } from '../config/errors';
import type { TrainConfig } from '../config/train';

/** From `tokens` trained on (all ranks), global batches of `size` instances. */
export interface BatchSizeStep {
  tokens: number;
  size: number;
}

/** The global batches of one epoch: batch j is order[starts[j] : starts[j] + sizes[j]]. */
export interface EpochPlan {
  starts: Float64Array;
  sizes: Uint32Array;
  /** Tokens trained on after the last batch of the plan. */
  tokensAfter: number;
}

/** Where a training step's batch is. */
export interface StepLocation {
  /** Epoch of the run, 0-based from the run's first epoch (add TrainConfig.epoch for OLMo's epoch). */
  epoch: number;
  /** The step's batch number within its epoch (0-based). */
  batch: number;
  /** First position in that epoch's global order. */
  start: number;
  /** Instances in the global batch. */
  size: number;
  /** Tokens trained on before this step. */
  tokensBefore: number;
}

/** The batch size as a function of tokens trained on. */
export class BatchSizeSchedule implements BatchSizeProgress {
  /** Steps in increasing tokens, the first at 0. */
  readonly steps: readonly BatchSizeStep[];
  /** Tokens per instance (model.max_sequence_length). */
  readonly seqLen: number;

  /**
   * `divisor`: every size must be a multiple of it (the data-parallel world size: each rank takes
   * `batch[rank::world_size]`, the same number of instances).
   */
  constructor(steps: readonly BatchSizeStep[], seqLen: number, opts: { divisor?: number; key?: string } = {}) {
    const key = opts.key ?? 'batch_size_warmup';
    if (steps.length === 0 || steps[0]!.tokens !== 0) throw new ConfigError(key, 'a batch-size schedule must start at 0 tokens');
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new ConfigError('model.max_sequence_length', `got ${seqLen}, expected a positive integer`);
    const divisor = opts.divisor ?? 1;
    for (const [i, s] of steps.entries()) {
      if (!Number.isSafeInteger(s.size) || s.size < 1) throw new ConfigError(key, `batch size ${s.size} (step ${i}) is not a positive integer`);
      if (s.size % divisor !== 0) {
        throw new ConfigError(steps.length === 1 ? 'global_train_batch_size' : key,
          `batch size ${s.size}${steps.length > 1 ? ` (from ${s.tokens} tokens)` : ''} is not a multiple of the world size ${divisor}: each rank must get the same number of instances`);
      }
      if (i > 0 && !(s.tokens > steps[i - 1]!.tokens)) throw new ConfigError(key, 'schedule tokens must increase');
    }
    this.steps = steps.map((s) => ({ ...s }));
    this.seqLen = seqLen;
  }

  /** A constant batch of `size` instances. */
  static constant(size: number, seqLen: number, opts: { divisor?: number } = {}): BatchSizeSchedule {
    return new BatchSizeSchedule([{ tokens: 0, size }], seqLen, opts);
  }

  /** The schedule a training config describes (global_train_batch_size, batch_size_warmup). */
  static fromConfig(cfg: TrainConfig, opts: { divisor?: number } = {}): BatchSizeSchedule {
    const seqLen = cfg.model.max_sequence_length;
    const w = cfg.batch_size_warmup;
    const steps = w ? batchSizeSteps(w, { globalBatchSize: cfg.global_train_batch_size, seqLen }) : [{ tokens: 0, size: cfg.global_train_batch_size }];
    return new BatchSizeSchedule(steps, seqLen, opts);
  }

  get isConstant(): boolean {
    return this.steps.length === 1;
  }
  /** The largest global batch (instances). */
  get maxSize(): number {
    return Math.max(...this.steps.map((s) => s.size));
  }

  private indexAt(tokens: number): number {
    let i = 0;
    while (i + 1 < this.steps.length && this.steps[i + 1]!.tokens <= tokens) i++;
    return i;
  }

  /** Instances in the global batch of a step that starts after `tokens` tokens. */
  sizeAt(tokens: number): number {
    return this.steps[this.indexAt(tokens)]!.size;
  }

  /**
   * Walks whole batches from position `pos` of an epoch of `length` instances, with `tokens`
   * trained on, for at most `maxSteps` steps (and, if given, only while the batch fits `budget`
   * tokens). Closed form per constant-size stretch, so long runs cost a few iterations.
   */
  private walk(pos: number, tokens: number, length: number, maxSteps: number, budget = Infinity): { steps: number; pos: number; tokens: number } {
    let steps = 0;
    while (steps < maxSteps) {
      const i = this.indexAt(tokens);
      const size = this.steps[i]!.size;
      const perStep = size * this.seqLen;
      if (pos + size > length || tokens + perStep > budget) break;
      const nextAt = i + 1 < this.steps.length ? this.steps[i + 1]!.tokens : Infinity;
      const nSeg = Number.isFinite(nextAt) ? Math.ceil((nextAt - tokens) / perStep) : Infinity;
      const nFit = Math.floor((length - pos) / size);
      const nBudget = Number.isFinite(budget) ? Math.floor((budget - tokens) / perStep) : Infinity;
      const n = Math.min(nSeg, nFit, nBudget, maxSteps - steps);
      if (!Number.isFinite(n)) throw new RangeError('batch-size walk without an end (infinite epoch, steps and budget)');
      steps += n;
      pos += n * size;
      tokens += n * perStep;
    }
    return { steps, pos, tokens };
  }

  /** Tokens trained on after `steps` more steps from `tokensSeen` (epoch ends not counted). */
  tokensAfterSteps(tokensSeen: number, steps: number): number {
    return steps <= 0 ? tokensSeen : this.walk(0, tokensSeen, Infinity, steps).tokens;
  }

  /** Steps whose whole batch fits below `budget` tokens, from `tokensSeen` (OLMo's max_steps for "NT"). */
  stepsWithinTokens(tokensSeen: number, budget: number): number {
    return this.walk(0, tokensSeen, Infinity, Infinity, budget).steps;
  }

  /**
   * The global batches of an epoch of `length` instances from `startIndex` on (a resume point),
   * with `tokensSeen` tokens trained on before it. A last batch that does not fit is dropped.
   */
  epochPlan(length: number, startIndex: number, tokensSeen: number): EpochPlan {
    const count = this.walk(startIndex, tokensSeen, length, Infinity).steps;
    const starts = new Float64Array(count);
    const sizes = new Uint32Array(count);
    let pos = startIndex, tokens = tokensSeen;
    for (let j = 0; j < count; j++) {
      const size = this.sizeAt(tokens);
      starts[j] = pos;
      sizes[j] = size;
      pos += size;
      tokens += size * this.seqLen;
    }
    return { starts, sizes, tokensAfter: tokens };
  }

  /** Steps of `epochs` whole epochs of `length` instances from the start of training. */
  stepsForEpochs(length: number, epochs: number): number {
    let steps = 0, tokens = 0;
    for (let e = 0; e < epochs; e++) {
      const r = this.walk(0, tokens, length, Infinity);
      if (r.steps === 0) break;
      steps += r.steps;
      tokens = r.tokens;
    }
    return steps;
  }

  /** Where training step `step` (1-based, counted from the start of training) takes its batch. */
  locate(step: number, length: number): StepLocation {
    if (!Number.isSafeInteger(step) || step < 1) throw new RangeError(`step must be a 1-based integer, got ${step}`);
    let left = step - 1, tokens = 0;
    for (let epoch = 0; ; epoch++) {
      const all = this.walk(0, tokens, length, Infinity);
      if (all.steps === 0) throw new RangeError(`an epoch of ${length} instances holds no batch of ${this.sizeAt(tokens)}`);
      if (left < all.steps) {
        const r = this.walk(0, tokens, length, left);
        return { epoch, batch: r.steps, start: r.pos, size: this.sizeAt(r.tokens), tokensBefore: r.tokens };
      }
      left -= all.steps;
      tokens = all.tokens;
    }
  }
}
