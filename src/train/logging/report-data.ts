// The data behind `olmo-ts report`: reads a run folder (metrics.jsonl, config.yaml), folds resumed
// steps, builds the summary header and one chart spec per curve, downsampled for the page.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { METRICS_JSONL, type MetricsRecord, foldResumed, readMetricsJsonl } from './jsonl';
import { LEARNING_RATE_RE, METRIC } from './metrics';

/** One curve: `[step, value]` points; `null` marks a NaN/inf value (drawn as a gap). */
export interface SeriesSpec {
  label: string;
  /** `'y'` is the left axis, `'y2'` the right one. */
  axis: 'y' | 'y2';
  points: Array<[number, number | null]>;
  /** Draw every point (eval curves: the steps the evaluators ran). */
  markers?: boolean;
}

/** One chart of the report. */
export interface ChartSpec {
  /** DOM id of the chart's canvas (`chart-<id>`) and key in the page's `olmoReport.charts`. */
  id: string;
  title: string;
  yLabel: string;
  y2Label?: string;
  /** Log-scale left axis (perplexity, learning rate). */
  yLog?: boolean;
  series: SeriesSpec[];
}

/** The header numbers; undefined when the run did not log them. */
export interface RunSummary {
  runName: string;
  /** Records after folding resumed steps. */
  loggedSteps: number;
  firstStep?: number;
  lastStep?: number;
  /** Planned steps, when config.yaml gives max_duration in steps. */
  maxSteps?: number;
  finalLoss?: number;
  minLoss?: number;
  finalPerplexity?: number;
  /** The last value of the first (by name) eval/<name>/CrossEntropyLoss, when evaluators ran. */
  finalEvalLoss?: { name: string; value: number };
  totalTokens?: number;
  /** Seconds between the first and the last logged line. */
  wallSeconds?: number;
  startTime?: number;
  endTime?: number;
  lastTokensPerSecond?: number;
  lastMfuPercent?: number;
  truncatedLastLine: boolean;
}

/** Everything the HTML page shows. */
export interface ReportData {
  summary: RunSummary;
  charts: ChartSpec[];
  /** config.yaml text, when present. */
  configText?: string;
  runDir: string;
}

/** Options of {@link loadReportData}. */
export interface ReportDataOptions {
  /** Most points per curve on the page (largest-triangle-three-buckets downsampling). Default 2000. */
  maxPoints?: number;
}

/** Reads `runDir` and builds the report data; throws a clear error when metrics.jsonl is missing. */
export function loadReportData(runDir: string, opts: ReportDataOptions = {}): ReportData {
  const jsonl = path.join(runDir, METRICS_JSONL);
  if (!fs.existsSync(jsonl)) {
    throw Object.assign(new Error(`no ${METRICS_JSONL} in ${runDir} (is it a run folder written by olmo-ts train?)`), { code: 'ENOMETRICS' });
  }
  const log = readMetricsJsonl(jsonl);
  const records = foldResumed(log.records);
  const configPath = path.join(runDir, 'config.yaml');
  const configText = fs.existsSync(configPath) ? fs.readFileSync(configPath, 'utf8') : undefined;
  const config = configText === undefined ? {} : parseConfig(configText);
  return buildReportData(records, {
    runDir, configText, truncatedLastLine: log.truncatedLastLine, maxPoints: opts.maxPoints,
    runName: typeof config.run_name === 'string' && config.run_name ? config.run_name : path.basename(path.resolve(runDir)),
    maxSteps: parseMaxSteps(config.max_duration),
  });
}

function parseConfig(text: string): Record<string, unknown> {
  try {
    // Lazy: the yaml package is only needed here.
    const v = (require('yaml') as typeof import('yaml')).parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {}; // the report still renders from metrics alone; the raw text is shown as is
  }
}

/** OLMo's max_duration: an int or "<n>" is steps; "…T" (tokens) and "…ep" (epochs) are not. */
function parseMaxSteps(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/** Builds the report from folded records (exported for tests and for callers that hold records). */
export function buildReportData(records: readonly MetricsRecord[], meta: {
  runDir: string; runName: string; maxSteps?: number; configText?: string; truncatedLastLine?: boolean; maxPoints?: number;
}): ReportData {
  const maxPoints = meta.maxPoints ?? 2000;
  const series = (name: string, label = shortLabel(name), axis: 'y' | 'y2' = 'y'): SeriesSpec | undefined => {
    const pts: Array<[number, number | null]> = [];
    for (const r of records) {
      const v = r.metrics[name];
      if (v !== undefined) pts.push([r.step, Number.isFinite(v) ? v : null]);
    }
    return pts.length ? { label, axis, points: downsample(pts, maxPoints) } : undefined;
  };
  const charts: ChartSpec[] = [];
  const add = (spec: Omit<ChartSpec, 'series'>, ...s: Array<SeriesSpec | undefined>) => {
    const present = s.filter((x): x is SeriesSpec => x !== undefined);
    if (present.some((x) => x.axis === 'y')) charts.push({ ...spec, series: present });
  };
  const used = new Set<string>();
  const take = (name: string, label?: string, axis?: 'y' | 'y2') => { used.add(name); return series(name, label, axis); };

  // Evaluators' curves (OLMo names eval/<name>/CrossEntropyLoss|Perplexity, eval/downstream/<task>_<metric>)
  // go beside the training curves, drawn with a marker at each step they ran.
  const names = metricNames(records).sort();
  const evalCe = names.filter((n) => /^eval\/.+\/CrossEntropyLoss$/.test(n));
  const evalSeries = (n: string) => { const sp = take(n, `eval: ${n.slice(5, n.lastIndexOf('/'))}`); if (sp) sp.markers = true; return sp; };
  add({ id: 'loss', title: evalCe.length ? 'Loss (training and evaluation)' : 'Training loss', yLabel: 'cross-entropy', y2Label: 'z-loss' },
    take(METRIC.crossEntropyLoss, 'CrossEntropyLoss'), ...evalCe.map(evalSeries), take(METRIC.zLoss, 'ZLoss', 'y2'));
  add({ id: 'perplexity', title: 'Perplexity', yLabel: 'perplexity', yLog: true }, take(METRIC.perplexity, 'Perplexity'),
    ...names.filter((n) => /^eval\/.+\/Perplexity$/.test(n)).map(evalSeries));
  add({ id: 'downstream', title: 'Downstream evaluation', yLabel: 'score' },
    ...names.filter((n) => n.startsWith('eval/downstream/')).map((n) => { const sp = take(n, n.slice('eval/downstream/'.length)); if (sp) sp.markers = true; return sp; }));
  const lrNames = metricNames(records).filter((n) => LEARNING_RATE_RE.test(n))
    .sort((a, b) => Number(LEARNING_RATE_RE.exec(a)![1]) - Number(LEARNING_RATE_RE.exec(b)![1]));
  add({ id: 'lr', title: 'Learning rate', yLabel: 'learning rate' },
    ...lrNames.map((n) => take(n, `group ${LEARNING_RATE_RE.exec(n)![1]}`)));
  add({ id: 'grad-norm', title: 'Gradient norm', yLabel: 'total grad norm', y2Label: 'clipping rate' },
    take(METRIC.totalGradNorm, 'total_grad_norm'), take(METRIC.clippingRate, 'clipping_rate', 'y2'));
  add({ id: 'throughput', title: 'Throughput (per device)', yLabel: 'tokens / s', y2Label: 'data loading, % of step time' },
    take(METRIC.tokensPerSecond, 'tokens/s'), take(METRIC.dataLoadingPercent, 'data loading %', 'y2'));
  // MFU and batches/s are constant multiples of tokens/s (fixed FLOPs/token and batch size): a
  // second curve would trace the first exactly, so they go in the header instead.
  for (const n of [METRIC.totalTokens, METRIC.dataLoadingSeconds, METRIC.mfuPercent, METRIC.batchesPerSecond]) used.add(n);
  // Anything else the trainer logged (eval/*, System/*, ...): one chart per name prefix.
  const groups = new Map<string, string[]>();
  for (const n of metricNames(records)) {
    if (used.has(n)) continue;
    const prefix = n.includes('/') ? n.slice(0, n.lastIndexOf('/')) : 'other';
    groups.set(prefix, [...(groups.get(prefix) ?? []), n]);
  }
  for (const [prefix, names] of groups) {
    add({ id: `extra-${prefix.replace(/[^A-Za-z0-9_-]+/g, '-')}`, title: prefix, yLabel: 'value' },
      ...names.slice(0, 12).map((n) => series(n)));
  }

  const last = <T>(get: (r: MetricsRecord) => T | undefined): T | undefined => {
    for (let i = records.length - 1; i >= 0; i--) { const v = get(records[i]!); if (v !== undefined) return v; }
    return undefined;
  };
  const finite = (name: string) => (r: MetricsRecord) => {
    const v = r.metrics[name];
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  };
  const losses = records.map(finite(METRIC.crossEntropyLoss)).filter((v): v is number => v !== undefined);
  const first = records[0], end = records[records.length - 1];
  return {
    runDir: meta.runDir,
    configText: meta.configText,
    charts,
    summary: {
      runName: meta.runName,
      loggedSteps: records.length,
      firstStep: first?.step,
      lastStep: end?.step,
      maxSteps: meta.maxSteps,
      finalLoss: last(finite(METRIC.crossEntropyLoss)),
      minLoss: losses.length ? Math.min(...losses) : undefined,
      finalPerplexity: last(finite(METRIC.perplexity)),
      finalEvalLoss: evalCe.length ? ((v) => (v === undefined ? undefined : { name: evalCe[0]!.slice(5, -'/CrossEntropyLoss'.length), value: v }))(last(finite(evalCe[0]!))) : undefined,
      totalTokens: last(finite(METRIC.totalTokens)),
      wallSeconds: first && end ? end.time - first.time : undefined,
      startTime: first?.time,
      endTime: end?.time,
      lastTokensPerSecond: last(finite(METRIC.tokensPerSecond)),
      lastMfuPercent: last(finite(METRIC.mfuPercent)),
      truncatedLastLine: meta.truncatedLastLine ?? false,
    },
  };
}

function metricNames(records: readonly MetricsRecord[]): string[] {
  const names = new Set<string>();
  for (const r of records) for (const k of Object.keys(r.metrics)) names.add(k);
  return [...names];
}

function shortLabel(name: string): string {
  return name.includes('/') ? name.slice(name.lastIndexOf('/') + 1) : name;
}

/**
 * Largest-triangle-three-buckets: keeps the first and last points and, per bucket, the point that
 * spans the largest triangle with its neighbours, so spikes survive. Gaps (null) are always kept.
 */
export function downsample(pts: Array<[number, number | null]>, max: number): Array<[number, number | null]> {
  if (pts.length <= max || max < 3) return pts;
  const out: Array<[number, number | null]> = [pts[0]!];
  const every = (pts.length - 2) / (max - 2);
  let a = 0;
  for (let i = 0; i < max - 2; i++) {
    const lo = Math.floor(i * every) + 1, hi = Math.min(Math.floor((i + 1) * every) + 1, pts.length - 1);
    const nlo = hi, nhi = Math.min(Math.floor((i + 2) * every) + 1, pts.length);
    let ax = 0, ay = 0, cnt = 0;
    for (let j = nlo; j < nhi; j++) { const y = pts[j]![1]; if (y !== null) { ax += pts[j]![0]; ay += y; cnt++; } }
    if (cnt) { ax /= cnt; ay /= cnt; } else { ax = pts[Math.min(nlo, pts.length - 1)]![0]; ay = 0; }
    const [px, py] = pts[a]!;
    let best = lo, bestArea = -1;
    for (let j = lo; j < hi; j++) {
      const [x, y] = pts[j]!;
      if (y === null) { best = j; break; } // a NaN step is news: show the gap
      const area = Math.abs((px - ax) * (y - (py ?? y)) - (px - x) * (ay - (py ?? y)));
      if (area > bestArea) { bestArea = area; best = j; }
    }
    out.push(pts[best]!);
    a = best;
  }
  out.push(pts[pts.length - 1]!);
  return out;
}
