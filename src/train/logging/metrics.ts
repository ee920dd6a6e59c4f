// The metric names the trainer reports (OLMo v0.2.5's, from olmo/train.py) and the MetricsSink
// interface that every logger (console, JSONL, TensorBoard) implements, plus a fan-out sink.

/** OLMo's metric names. Values are plain numbers; the trainer fills what it has each logged step. */
export const METRIC = {
  /** Mean cross-entropy of the step's global batch (OLMo: `train/CrossEntropyLoss`). */
  crossEntropyLoss: 'train/CrossEntropyLoss',
  /** exp(CrossEntropyLoss). */
  perplexity: 'train/Perplexity',
  /** The softmax auxiliary z-loss, when `softmax_auxiliary_loss` is on. */
  zLoss: 'train/ZLoss',
  /** Global gradient norm before clipping. */
  totalGradNorm: 'optim/total_grad_norm',
  /** Fraction of parameters (or of the global norm) that was clipped this step. */
  clippingRate: 'optim/clipping_rate',
  /** Tokens seen by all ranks since the start of training. */
  totalTokens: 'throughput/total_tokens',
  /** Instances in the step's global batch (changes with batch_size_warmup; not in OLMo v0.2.5). */
  globalBatchSize: 'train/GlobalBatchSize',
  /** Tokens per second on this device, over the speed monitor's window. */
  tokensPerSecond: 'throughput/device/tokens_per_second',
  /** Optimizer steps per second on this device, over the speed monitor's window. */
  batchesPerSecond: 'throughput/device/batches_per_second',
  /** Model FLOPs utilisation in percent of the configured per-device peak (not in OLMo v0.2.5). */
  mfuPercent: 'throughput/device/mfu_percent',
  /** Share of step wall time spent waiting for the data loader, in percent (not in OLMo v0.2.5). */
  dataLoadingPercent: 'throughput/device/data_loading_percent',
  /** Mean seconds per step spent waiting for the data loader (not in OLMo v0.2.5). */
  dataLoadingSeconds: 'throughput/device/data_loading_seconds',
  /** Memory the caching CPU allocator holds idle for reuse, in MB (not in OLMo). */
  cpuCacheMb: 'System/CPU Cache (MB)',
} as const;

/** `optim/learning_rate_group{i}`: the learning rate of optimizer parameter group `i`. */
export function learningRateMetric(group: number): string {
  return `optim/learning_rate_group${group}`;
}

/** Matches the learning-rate metric names and captures the group index. */
export const LEARNING_RATE_RE = /^optim\/learning_rate_group(\d+)$/;

/** One logged step's metrics: metric name -> value. NaN and ±Infinity are allowed (a diverged loss). */
export type Metrics = Record<string, number>;

/**
 * Where the trainer sends metrics. The trainer calls `log` once per logged step (steps increase,
 * except after a resume from an earlier checkpoint) and `close` once at the end, also on failure.
 * A NaN or infinite value is recorded, not rejected; a step that is not a non-negative integer
 * throws RangeError. `close` is idempotent; `log` after `close` is ignored.
 */
export interface MetricsSink {
  /** Records the metrics of global step `step` (1-based, as in OLMo). */
  log(step: number, metrics: Metrics): void;
  /** Flushes and releases files or the terminal line. Safe to call more than once. */
  close(): void;
}

/** Sends every call to several sinks; `close` closes them all even when one throws. */
export class MultiSink implements MetricsSink {
  constructor(readonly sinks: readonly MetricsSink[]) {}

  log(step: number, metrics: Metrics): void {
    for (const s of this.sinks) s.log(step, metrics);
  }

  close(): void {
    let first: unknown;
    for (const s of this.sinks) {
      try {
        s.close();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}

/** Checks a step number once for every sink, so each reports misuse the same way. */
export function assertStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(`metrics step must be a non-negative integer, got ${String(step)}`);
  }
}

/** The per-step numbers the trainer has at hand, named the way a program reads them. */
export interface TrainStepValues {
  /** Mean cross-entropy loss of the global batch. */
  crossEntropyLoss: number;
  /** z-loss, when enabled. */
  zLoss?: number;
  /** Global gradient norm before clipping. */
  totalGradNorm?: number;
  /** OLMo's clipping rate. */
  clippingRate?: number;
  /** Learning rate per optimizer parameter group, in group order. */
  learningRates?: readonly number[];
}

/**
 * Builds a step's metrics with OLMo's names in OLMo's order (loss, perplexity, z-loss, optim/*,
 * then `extra`, e.g. `speedMonitor.check()`): perplexity is exp(loss), as OLMo logs it.
 */
export function trainStepMetrics(v: TrainStepValues, extra: Metrics = {}): Metrics {
  const m: Metrics = {
    [METRIC.crossEntropyLoss]: v.crossEntropyLoss,
    [METRIC.perplexity]: Math.exp(v.crossEntropyLoss),
  };
  if (v.zLoss !== undefined) m[METRIC.zLoss] = v.zLoss;
  if (v.totalGradNorm !== undefined) m[METRIC.totalGradNorm] = v.totalGradNorm;
  if (v.clippingRate !== undefined) m[METRIC.clippingRate] = v.clippingRate;
  v.learningRates?.forEach((lr, i) => { m[learningRateMetric(i)] = lr; });
  return Object.assign(m, extra);
}
