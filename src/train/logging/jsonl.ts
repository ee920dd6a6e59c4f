// metrics.jsonl in the run folder: one JSON object per logged step, written with one write(2) per
// line so a crash loses at most the line being written; and the reader that tolerates a
// truncated last line and folds a resumed run's repeated steps.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Metrics, type MetricsSink, assertStep } from './metrics';

/** The file name inside a run folder. */
export const METRICS_JSONL = 'metrics.jsonl';

/** One line of metrics.jsonl: the step, the wall-clock time (Unix seconds) and the metrics. */
export interface MetricsRecord {
  step: number;
  /** Unix time in seconds when the line was written. */
  time: number;
  metrics: Metrics;
}

/** Options of {@link JsonlWriter}. */
export interface JsonlWriterOptions {
  /** `'append'` (default; a resumed run continues the file) or `'overwrite'`. */
  mode?: 'append' | 'overwrite';
  /** Clock in milliseconds; tests inject one. */
  now?: () => number;
}

// JSON has no NaN/Infinity; they are written as these strings so the file stays valid JSON for jq & co.
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/** The JSON text of one line (without the newline). Keys `step` and `time` come first. */
export function encodeRecord(r: MetricsRecord): string {
  const obj: Record<string, number | string> = { step: r.step, time: r.time };
  for (const [k, v] of Object.entries(r.metrics)) {
    if (k === 'step' || k === 'time') throw new Error(`metric name '${k}' is reserved in ${METRICS_JSONL}`);
    obj[k] = Number.isFinite(v) ? v : String(v);
  }
  return JSON.stringify(obj);
}

/** Parses one line; throws SyntaxError (from JSON.parse) or Error when it is not a metrics record. */
export function decodeRecord(line: string): MetricsRecord {
  const obj = JSON.parse(line) as unknown;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error('not a JSON object');
  const { step, time, ...rest } = obj as Record<string, unknown>;
  if (typeof step !== 'number' || typeof time !== 'number') throw new Error('missing numeric "step" or "time"');
  const metrics: Metrics = {};
  for (const [k, v] of Object.entries(rest)) {
    if (typeof v === 'number') metrics[k] = v;
    else if (typeof v === 'string' && v in NON_FINITE) metrics[k] = NON_FINITE[v]!;
    else throw new Error(`metric '${k}' is not a number: ${JSON.stringify(v)}`);
  }
  return { step, time, metrics };
}

/** Writes metrics.jsonl. Each `log` is one synchronous write of one whole line. */
export class JsonlWriter implements MetricsSink {
  /** The file being written. */
  readonly path: string;
  private fd: number | undefined;
  private readonly now: () => number;

  /** `target` is a run folder (the file is `target/metrics.jsonl`) or a path ending in `.jsonl`. */
  constructor(target: string, opts: JsonlWriterOptions = {}) {
    this.path = target.endsWith('.jsonl') ? target : path.join(target, METRICS_JSONL);
    this.now = opts.now ?? Date.now;
    fs.mkdirSync(path.dirname(this.path), { recursive: true });
    if ((opts.mode ?? 'append') === 'append') dropPartialLastLine(this.path);
    this.fd = fs.openSync(this.path, opts.mode === 'overwrite' ? 'w' : 'a');
  }

  log(step: number, metrics: Metrics): void {
    assertStep(step);
    if (this.fd === undefined) return;
    const line = encodeRecord({ step, time: this.now() / 1000, metrics }) + '\n';
    // One writeSync of the whole line: after a process crash the file ends at a line boundary unless
    // the crash hit this very call. (No fsync per step: that costs milliseconds; close() does one.)
    writeFully(this.fd, Buffer.from(line, 'utf8'));
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fsyncAndClose(fd);
  }
}

/** write(2) may write less than asked (rare on regular files); loop until all bytes are out. */
/** Flushes a file to disk and closes it (the sinks' close()). */
export function fsyncAndClose(fd: number): void {
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeFully(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/** When a crash left a partial last line, cut it so appended lines do not glue onto it. */
function dropPartialLastLine(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return;
    // Scan backwards in chunks for the last newline.
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = fs.readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) {
        if (start + nl + 1 < size) fs.ftruncateSync(fd, start + nl + 1);
        return;
      }
      end = start;
    }
    fs.ftruncateSync(fd, 0); // one partial line and nothing else
  } finally {
    fs.closeSync(fd);
  }
}

/** What {@link readMetricsJsonl} found. */
export interface MetricsLog {
  /** The records in file order (see {@link foldResumed} for a run's final history). */
  records: MetricsRecord[];
  /** True when the last line was cut short (a crash mid-write) and was skipped. */
  truncatedLastLine: boolean;
}

/**
 * Reads metrics.jsonl (a run folder or the file). A bad last line without its newline is skipped
 * and reported; a bad line anywhere else is corruption and throws, naming the file and line.
 */
export function readMetricsJsonl(target: string): MetricsLog {
  const file = target.endsWith('.jsonl') ? target : path.join(target, METRICS_JSONL);
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const endsClean = text.endsWith('\n') || text.length === 0;
  if (endsClean) lines.pop(); // the empty string after the final newline
  const records: MetricsRecord[] = [];
  let truncatedLastLine = false;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(decodeRecord(line));
    } catch (e) {
      if (i === lines.length - 1 && !endsClean) {
        truncatedLastLine = true;
        return;
      }
      throw new Error(`${file}:${i + 1}: bad metrics line (${(e as Error).message})`);
    }
  });
  return { records, truncatedLastLine };
}

/**
 * A resumed run restarts from a checkpoint at an earlier step, so the file can hold steps
 * 1..130 then 101..200. Keeps, for each step, the record from the latest attempt: when the step
 * goes back to `s`, earlier records with step >= s are dropped. Consecutive lines of the same
 * step (the training metrics, then the evaluators' at that step) merge into one record.
 */
export function foldResumed(records: readonly MetricsRecord[]): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  records.forEach((r, i) => {
    const last = out[out.length - 1];
    if (i > 0 && records[i - 1]!.step === r.step && last && last.step === r.step) {
      out[out.length - 1] = { step: r.step, time: r.time, metrics: { ...last.metrics, ...r.metrics } };
      return;
    }
    while (out.length && out[out.length - 1]!.step >= r.step) out.pop();
    out.push(r);
  });
  return out;
}
