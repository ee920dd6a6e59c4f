// Metrics and logging for the trainer: the sinks (console, metrics.jsonl, TensorBoard), the
// throughput monitor, and `createMetricsSinks`, which wires the usual set for a run folder.
// Nothing here loads the native addon: metrics are plain numbers.
import * as path from 'node:path';
import { ConsoleLogger, type ConsoleLoggerOptions } from './console';
import { JsonlWriter } from './jsonl';
import { type MetricsSink, MultiSink } from './metrics';
import { TensorBoardWriter } from './tensorboard';

export * from './metrics';
export * from './format';
export * from './console';
export * from './jsonl';
export * from './tensorboard';
export * from './speed-monitor';
export { crc32c, maskCrc, frameRecord } from './tfrecord';

/** Options of {@link createMetricsSinks}. */
export interface MetricsSinksOptions {
  /** The run folder (OLMo's `save_folder`): metrics.jsonl goes here, TensorBoard files in `tensorboard/`. */
  runDir?: string;
  /** Console options (`totalSteps`, `interval` = console_log_interval, ...), or `false` for no console output. */
  console?: ConsoleLoggerOptions | false;
  /** Write metrics.jsonl (default true when `runDir` is set). */
  jsonl?: boolean;
  /** Write TensorBoard event files (default true when `runDir` is set). */
  tensorboard?: boolean;
  /** `'append'` (default, for resumed runs) or `'overwrite'` for metrics.jsonl. */
  jsonlMode?: 'append' | 'overwrite';
  /** Global rank: only rank 0 writes files and prints, as in OLMo. Default `RANK` or 0. */
  rank?: number;
}

/** The sinks a run uses, fanned out; `console` is exposed for `info()` messages. */
export interface RunSinks extends MetricsSink {
  /** The console logger, when there is one (rank 0 with console enabled). */
  readonly console: ConsoleLogger | undefined;
  /** Every sink, in call order. */
  readonly sinks: readonly MetricsSink[];
}

/** Builds the console + metrics.jsonl + TensorBoard sinks for a run; other ranks get a no-op sink. */
export function createMetricsSinks(opts: MetricsSinksOptions = {}): RunSinks {
  const rank = opts.rank ?? (Number(process.env.RANK) || 0);
  const sinks: MetricsSink[] = [];
  let consoleLogger: ConsoleLogger | undefined;
  if (rank === 0) {
    if (opts.runDir && (opts.jsonl ?? true)) sinks.push(new JsonlWriter(opts.runDir, { mode: opts.jsonlMode }));
    if (opts.runDir && (opts.tensorboard ?? true)) sinks.push(new TensorBoardWriter(path.join(opts.runDir, 'tensorboard')));
    if (opts.console !== false) sinks.push((consoleLogger = new ConsoleLogger(opts.console ?? {})));
  }
  const multi = new MultiSink(sinks);
  return {
    console: consoleLogger,
    sinks,
    log: (step, metrics) => multi.log(step, metrics),
    close: () => multi.close(),
  };
}
