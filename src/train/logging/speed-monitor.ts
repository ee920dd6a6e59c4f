// Throughput over a rolling window of steps, like OLMo's SpeedMonitor (window_size 100, first batch
// not recorded), plus MFU from FLOPs per token and a configured per-device peak, and the share of
// step time spent waiting for data.
import { METRIC, type Metrics } from './metrics';

/** Options of {@link SpeedMonitor}; the first two mirror OLMo's `speed_monitor` config section. */
export interface SpeedMonitorOptions {
  /** Steps in the rolling window (OLMo's `speed_monitor.window_size`). Default 100. */
  windowSize?: number;
  /**
   * Peak FLOP/s of one device at the training precision (OLMo's `speed_monitor.gpu_flops_available`,
   * e.g. 989e12 for an H100 in bf16). No MFU is reported without it.
   */
  peakFlopsPerDevice?: number;
  /** Training FLOPs per token (forward + backward, e.g. 6N + attention); no MFU without it. */
  flopsPerToken?: number;
  /** Steps recorded at the start, and after each `reset`, that are ignored (compile/warm-up outliers). Default 1. */
  skipFirst?: number;
}

/** One finished optimizer step as the trainer measured it. */
export interface StepTiming {
  /** Tokens this device processed in the step (all micro-batches). */
  deviceTokens: number;
  /** Tokens all ranks have processed since the start of training, this step included. */
  globalTotalTokens: number;
  /** Wall seconds from asking for the step's first batch to the end of the optimizer step. */
  stepSeconds: number;
  /** Of those, seconds spent waiting for the data loader. Default 0. */
  dataSeconds?: number;
}

/**
 * Rolling-window throughput. Differences from OLMo v0.2.5, which times from batch start to batch
 * start: the trainer passes each step's measured duration, so time spent in checkpointing or eval
 * between steps is not charged to throughput (OLMo resets its window after a checkpoint for that).
 */
export class SpeedMonitor {
  private readonly windowSize: number;
  private readonly skipFirst: number;
  private readonly flopsPerToken: number | undefined;
  private readonly peakFlops: number | undefined;
  private window: Array<{ tokens: number; seconds: number; data: number }> = [];
  private skipped = 0;
  private totalTokens = 0;

  constructor(opts: SpeedMonitorOptions = {}) {
    this.windowSize = opts.windowSize ?? 100;
    this.skipFirst = opts.skipFirst ?? 1;
    this.flopsPerToken = opts.flopsPerToken;
    this.peakFlops = opts.peakFlopsPerDevice;
    if (!Number.isSafeInteger(this.windowSize) || this.windowSize < 1) {
      throw new RangeError(`speed_monitor.window_size must be a positive integer, got ${String(opts.windowSize)}`);
    }
    if (!Number.isSafeInteger(this.skipFirst) || this.skipFirst < 0) {
      throw new RangeError(`skipFirst must be a non-negative integer, got ${String(opts.skipFirst)}`);
    }
    for (const [key, v] of [['speed_monitor.gpu_flops_available', this.peakFlops], ['flopsPerToken', this.flopsPerToken]] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
        throw new RangeError(`${key} must be a positive number, got ${String(v)}`);
      }
    }
  }

  /** Records one finished step (see {@link StepTiming}). */
  record(t: StepTiming): void {
    const data = t.dataSeconds ?? 0;
    if (!(t.stepSeconds >= 0) || !(data >= 0) || !(t.deviceTokens >= 0)) {
      throw new RangeError(`bad step timing: ${JSON.stringify(t)}`);
    }
    this.totalTokens = t.globalTotalTokens;
    if (this.skipped < this.skipFirst) {
      this.skipped++;
      return;
    }
    if (this.window.length >= this.windowSize) this.window.shift();
    this.window.push({ tokens: t.deviceTokens, seconds: t.stepSeconds, data });
  }

  /** Forgets the window (and skips the next `skipFirst` steps again), as OLMo does after a checkpoint. */
  reset(): void {
    this.window = [];
    this.skipped = 0;
  }

  /**
   * `throughput/total_tokens` always; once a step is in the window also tokens/s, batches/s,
   * data-loading seconds and %, and MFU % when FLOPs per token and the peak are known.
   */
  check(): Metrics {
    const m: Metrics = { [METRIC.totalTokens]: this.totalTokens };
    const n = this.window.length;
    if (n === 0) return m;
    let tokens = 0, seconds = 0, data = 0;
    for (const s of this.window) {
      tokens += s.tokens;
      seconds += s.seconds;
      data += s.data;
    }
    if (!(seconds > 0)) return m;
    const tps = tokens / seconds;
    m[METRIC.tokensPerSecond] = tps;
    m[METRIC.batchesPerSecond] = n / seconds;
    m[METRIC.dataLoadingSeconds] = data / n;
    m[METRIC.dataLoadingPercent] = (100 * data) / seconds;
    if (this.flopsPerToken !== undefined && this.peakFlops !== undefined) {
      m[METRIC.mfuPercent] = (100 * tps * this.flopsPerToken) / this.peakFlops;
    }
    return m;
  }
}

/**
 * Training FLOPs per token of a decoder-only transformer, PaLM's estimate (as OLMo-core uses):
 * 6 × non-embedding parameters + 12 × layers × d_model × sequence length (attention scores).
 */
export function transformerFlopsPerToken(p: {
  nonEmbeddingParams: number; nLayers: number; dModel: number; seqLen: number;
}): number {
  return 6 * p.nonEmbeddingParams + 12 * p.nLayers * p.dModel * p.seqLen;
}
