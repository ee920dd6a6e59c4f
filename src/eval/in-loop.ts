// Evaluation inside a training run, behind the small interface the trainer calls: build the
// config's evaluators once, say when an eval is due (every eval_interval steps, as OLMo), run them
// and send the results to every sink — metrics.jsonl and TensorBoard as a record at the step, the
// console as one compact table.
import type { TrainConfig } from '../config/train';
import type { OLMo } from '../model/olmo';
import { BuildEvaluatorsOptions, EvalReport, buildEvaluators, runEvaluators } from './build';
import type { EvalMetrics, Evaluator } from './evaluator';

/** The part of the trainer's sinks evaluation logs to (structurally the trainer's RunSinks). */
export interface EvalSinks {
  /** Every sink; each gets the metrics except `console`, which gets the table. */
  readonly sinks: readonly { log(step: number, metrics: Record<string, number>): void }[];
  readonly console?: { info(message: string): void };
}

/** A value as OLMo's console prints metrics (format_float): 4 decimals below 1, fewer above, commas above 1000. */
export function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && Math.abs(v) < 0.0001) return v.toExponential(3);
  if (v > 1000) return Math.trunc(v).toLocaleString('en-US');
  return v.toFixed(v > 100 ? 1 : v > 10 ? 2 : v > 1 ? 3 : 4);
}

/** The console table of one evaluation: evaluator, metric (OLMo's name without `eval/`), value. */
export function formatEvalTable(report: EvalReport, step?: number): string {
  const tokens = report.results.reduce((a, r) => a + r.tokens, 0);
  const head = `eval${step === undefined ? '' : ` at step ${step}`}: ${report.results.length} evaluator${report.results.length === 1 ? '' : 's'}, ` +
    `${report.seconds.toFixed(1)} s, ${Math.round(tokens / Math.max(report.seconds, 1e-9)).toLocaleString('en-US')} tokens/s`;
  const rows: Array<[string, string, string]> = [['evaluator', 'metric', 'value']];
  for (const r of report.results) {
    const names = Object.keys(r.metrics);
    if (!names.length) rows.push([r.label, '(no instances evaluated)', '']);
    names.forEach((n, i) => rows.push([i === 0 ? r.label : '', n.replace(/^eval\//, ''), formatMetric(r.metrics[n]!)]));
  }
  const w0 = Math.max(...rows.map((r) => r[0].length)), w1 = Math.max(...rows.map((r) => r[1].length));
  return [head, ...rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd())].join('\n');
}

/** Sends eval metrics to the file sinks (metrics.jsonl, TensorBoard) at `step` and the table to the console. */
export function logEvalReport(sinks: EvalSinks | null, step: number, report: EvalReport): void {
  if (!sinks) return;
  const metrics: EvalMetrics = report.metrics;
  if (Object.keys(metrics).length) for (const s of sinks.sinks) if (s !== (sinks.console as unknown)) s.log(step, metrics);
  sinks.console?.info(formatEvalTable(report, step));
}

/** The trainer's view of evaluation: `due(step)`, `run(model, step, sinks)`, `close()`. */
export class InLoopEvaluation {
  private constructor(private readonly cfg: TrainConfig, readonly evaluators: Evaluator[]) {}

  /** Builds the config's evaluators (reading and tokenizing their data now); null when there are none. */
  static async create(cfg: TrainConfig, o: BuildEvaluatorsOptions = {}): Promise<InLoopEvaluation | null> {
    if (!cfg.evaluators.length) return null;
    return new InLoopEvaluation(cfg, await buildEvaluators(cfg, o));
  }

  /** OLMo evaluates after every step that is a multiple of eval_interval. */
  due(step: number): boolean {
    return step > 0 && step % this.cfg.eval_interval === 0;
  }

  /** Runs every evaluator once and logs the results at `step`. The model's mode is restored. */
  async run(model: OLMo, step: number, sinks: EvalSinks | null): Promise<EvalReport> {
    const report = await runEvaluators(model, this.evaluators, { precision: this.cfg.precision });
    logEvalReport(sinks, step, report);
    return report;
  }

  close(): void {
    for (const e of this.evaluators) e.close();
  }
}
