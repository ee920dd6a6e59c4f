// The console metrics sink: on a terminal a live single progress line (step/total, bar, loss,
// tokens/s, MFU, elapsed, ETA) redrawn in place; elsewhere OLMo-style plain log blocks every
// `console_log_interval` steps, so CI logs and `tee`d files stay greppable.
import * as os from 'node:os';
import { formatCount, formatDuration, formatFloat, shortExp } from './format';
import { METRIC, type Metrics, type MetricsSink, assertStep, learningRateMetric } from './metrics';

/** The part of a stream the logger uses; `process.stdout` fits, and so does a test double. */
export interface ConsoleStream {
  write(chunk: string): unknown;
  /** True on a terminal. */
  isTTY?: boolean;
  /** Terminal width in characters. */
  columns?: number;
}

/** Options of {@link ConsoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Where to write; default `process.stdout`. */
  stream?: ConsoleStream;
  /** Total steps of the run (OLMo's `max_steps`), for `step/total`, the bar and the ETA. */
  totalSteps?: number;
  /** OLMo's `console_log_interval`: plain mode prints steps divisible by it; live mode keeps such a line. Default 1. */
  interval?: number;
  /** `'live'`, `'plain'` or `'auto'` (default): live when the stream is a TTY and `OLMo_NONINTERACTIVE` is unset. */
  mode?: 'auto' | 'live' | 'plain';
  /** Clock in milliseconds; tests inject one. Default `Date.now`. */
  now?: () => number;
  /** Host name shown in plain lines (as OLMo's log format does). Default `os.hostname()`. */
  hostname?: string;
  /** Local rank shown in plain lines. Default `LOCAL_RANK` or 0. */
  localRank?: number;
  /** Minimum milliseconds between redraws of the live line (the last step always draws). Default 100. */
  redrawMs?: number;
}

/** OLMo's plain console format: a timestamped `[step=N/M]` line, then `    name=value` per metric (no `optim/*`). */
export function formatPlainBlock(
  step: number, totalSteps: number | undefined, metrics: Metrics,
  opts: { time: Date; hostname: string; localRank: number },
): string {
  const lines = Object.entries(metrics)
    .filter(([name]) => !name.startsWith('optim/')) // OLMo: "there's too many optimizer metrics"
    .map(([name, v]) => `    ${name}=${formatFloat(v)}`);
  const head = `${logTimestamp(opts.time)}\t${opts.hostname}:${opts.localRank}\tolmo.train\tINFO\t` +
    `[step=${step}/${totalSteps ?? '?'}]`;
  return [head, ...lines].join('\n') + '\n';
}

/** `2024-01-31 13:05:09.042`, local time, like Python logging's default with milliseconds. */
export function logTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** What the live line shows; everything optional except the step. */
export interface ProgressState {
  step: number;
  totalSteps?: number;
  loss?: number;
  /** Learning rate (of the first parameter group). */
  lr?: number;
  /** Total gradient norm (before clipping). */
  gradNorm?: number;
  tokensPerSecond?: number;
  mfuPercent?: number;
  elapsedSeconds?: number;
  etaSeconds?: number;
}

/**
 * The live progress line, fitted to `columns`: `step 120/1000 [████▌     ] 12.0% | loss 3.457 |
 * 12.3k tok/s | MFU 41.2% | 1m02s < ETA 8m20s`. Parts drop from the right of the bar when narrow.
 */
export function formatProgressLine(s: ProgressState, columns = 100): string {
  const width = String(s.totalSteps ?? s.step).length;
  const head = s.totalSteps
    ? `step ${String(s.step).padStart(width)}/${s.totalSteps}`
    : `step ${s.step}`;
  const parts: string[] = [];
  if (s.loss !== undefined) parts.push(`loss ${formatFloat(s.loss)}`);
  if (s.lr !== undefined) parts.push(`lr ${s.lr === 0 ? '0' : shortExp(s.lr).replace(/e([+-])0(\d)$/, 'e$1$2')}`);
  if (s.gradNorm !== undefined) parts.push(`gnorm ${formatFloat(s.gradNorm)}`);
  if (s.tokensPerSecond !== undefined) parts.push(`${formatCount(s.tokensPerSecond)} tok/s`);
  if (s.mfuPercent !== undefined) parts.push(`MFU ${s.mfuPercent.toFixed(1)}%`);
  if (s.elapsedSeconds !== undefined || s.etaSeconds !== undefined) {
    parts.push(`${formatDuration(s.elapsedSeconds)} < ETA ${formatDuration(s.etaSeconds)}`);
  }
  const frac = s.totalSteps ? Math.min(1, Math.max(0, s.step / s.totalSteps)) : undefined;
  const pct = frac === undefined ? '' : ` ${(frac * 100).toFixed(1).padStart(5)}%`;
  // Keep what fits: drop trailing parts first, then shrink the bar (minimum 10 cells).
  for (let keep = parts.length; keep >= 0; keep--) {
    const tail = parts.slice(0, keep).map((p) => ` | ${p}`).join('');
    if (frac === undefined) {
      const line = head + tail;
      if (line.length <= columns || keep === 0) return line.slice(0, columns);
      continue;
    }
    const room = columns - head.length - pct.length - tail.length - 3; // " [" + "]"
    if (room >= 10 || keep === 0) return `${head} [${bar(frac, Math.max(10, Math.min(30, room)))}]${pct}${tail}`.slice(0, columns);
  }
  return head.slice(0, columns);
}

const PARTIAL = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A Unicode block bar `cells` wide with eighth-cell resolution. */
function bar(frac: number, cells: number): string {
  const eighths = Math.round(frac * cells * 8);
  const full = Math.floor(eighths / 8);
  const part = full < cells ? PARTIAL[eighths % 8]! : '';
  return ('█'.repeat(full) + part).padEnd(cells, ' ');
}

/** Console sink; see the file header. Call {@link ConsoleLogger.info} to print other messages without tearing the live line. */
export class ConsoleLogger implements MetricsSink {
  /** Whether this logger draws the live line (decided once, at construction). */
  readonly live: boolean;
  private readonly stream: ConsoleStream;
  private readonly interval: number;
  private readonly now: () => number;
  private readonly hostname: string;
  private readonly localRank: number;
  private readonly redrawMs: number;
  private totalSteps: number | undefined;
  private start: { step: number; t: number } | undefined;
  private lastDraw = -Infinity;
  private lastLine = '';
  private pending: ProgressState | undefined;
  private closed = false;

  constructor(opts: ConsoleLoggerOptions = {}) {
    this.stream = opts.stream ?? process.stdout;
    this.totalSteps = opts.totalSteps;
    this.interval = opts.interval ?? 1;
    if (!Number.isSafeInteger(this.interval) || this.interval < 1) {
      throw new RangeError(`console_log_interval must be a positive integer, got ${String(opts.interval)}`);
    }
    const mode = opts.mode ?? 'auto';
    this.live = mode === 'live' || (mode === 'auto' && !!this.stream.isTTY && !process.env.OLMo_NONINTERACTIVE);
    this.now = opts.now ?? Date.now;
    this.hostname = opts.hostname ?? os.hostname();
    this.localRank = opts.localRank ?? (Number(process.env.LOCAL_RANK) || 0);
    this.redrawMs = opts.redrawMs ?? 100;
  }

  /** Sets the total step count once the trainer knows it (e.g. max_duration in tokens resolved). */
  setTotalSteps(total: number | undefined): void {
    this.totalSteps = total;
  }

  log(step: number, metrics: Metrics): void {
    assertStep(step);
    if (this.closed) return;
    const t = this.now();
    // The ETA rate is measured from the first logged step, which excludes start-up and compile time.
    if (!this.start || step < this.start.step) this.start = { step, t };
    const onInterval = step % this.interval === 0 || step === this.totalSteps;
    if (!this.live) {
      if (onInterval) {
        this.stream.write(formatPlainBlock(step, this.totalSteps, metrics,
          { time: new Date(t), hostname: this.hostname, localRank: this.localRank }));
      }
      return;
    }
    const state = this.progress(step, metrics, t);
    if (onInterval && this.interval > 1) {
      // Keep a line in the scrollback every interval, like the plain mode's blocks; it is the
      // current state too, so no live line is drawn under it (the final step would show twice).
      this.clearLine();
      this.stream.write(formatProgressLine(state, this.columns()) + '\n');
      this.lastLine = '';
      this.pending = undefined;
      this.lastDraw = t;
      return;
    }
    if (t - this.lastDraw >= this.redrawMs || step === this.totalSteps || onInterval) this.draw(state, t);
    else this.pending = state;
  }

  /** Prints a message on its own line; the live line is cleared first and redrawn after. */
  info(message: string): void {
    if (this.closed || !this.live) {
      this.stream.write(this.live ? message + '\n' : `${logTimestamp(new Date(this.now()))}\t${this.hostname}:${this.localRank}\tolmo.train\tINFO\t${message}\n`);
      return;
    }
    const redraw = this.lastLine;
    this.clearLine();
    this.stream.write(message + '\n');
    if (redraw) this.writeLine(redraw);
  }

  /** Draws a pending throttled update and ends the live line with a newline. */
  close(): void {
    if (this.closed) return;
    if (this.live) {
      if (this.pending) this.draw(this.pending, this.now());
      if (this.lastLine) this.stream.write('\n');
      this.lastLine = '';
    }
    this.closed = true;
  }

  private progress(step: number, m: Metrics, t: number): ProgressState {
    const start = this.start!;
    const elapsed = (t - start.t) / 1000;
    const done = step - start.step;
    let eta: number | undefined;
    if (this.totalSteps !== undefined && done > 0 && elapsed > 0) {
      eta = Math.max(0, this.totalSteps - step) * (elapsed / done);
    } else if (this.totalSteps !== undefined && step >= this.totalSteps) {
      eta = 0;
    }
    return {
      step, totalSteps: this.totalSteps, loss: m[METRIC.crossEntropyLoss], lr: m[learningRateMetric(0)], gradNorm: m[METRIC.totalGradNorm],
      tokensPerSecond: m[METRIC.tokensPerSecond], mfuPercent: m[METRIC.mfuPercent],
      elapsedSeconds: elapsed, etaSeconds: eta,
    };
  }

  private columns(): number {
    return Math.max(20, (this.stream.columns ?? 100) - 1); // the last column would wrap on some terminals
  }

  private draw(state: ProgressState, t: number): void {
    this.pending = undefined;
    this.lastDraw = t;
    this.writeLine(formatProgressLine(state, this.columns()));
  }

  private writeLine(line: string): void {
    this.stream.write(`\r\x1b[2K${line}`);
    this.lastLine = line;
  }

  private clearLine(): void {
    if (this.lastLine) this.stream.write('\r\x1b[2K');
  }
}
