// Renders the run report as one self-contained HTML page: summary header, Chart.js line charts
// (the UMD bundle is inlined, so the page works offline and from a file:// URL) and the config.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatCount, formatDuration, formatFloat } from './format';
import type { ReportData, RunSummary } from './report-data';

/** Reads the Chart.js UMD bundle from the installed chart.js package. */
export function chartJsSource(): string {
  // The package exports map hides dist/ files, so resolve the main entry and look beside it.
  const dist = path.dirname(require.resolve('chart.js'));
  return fs.readFileSync(path.join(dist, 'chart.umd.js'), 'utf8');
}

/** HTML-escapes text for element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside a <script> element: `<` is escaped so no `</script>` or `<!--` can appear. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Options of {@link renderReportHtml}. */
export interface RenderOptions {
  /** Chart.js UMD source; default {@link chartJsSource}(). */
  chartJs?: string;
  /** Time shown as "generated"; default now. */
  generatedAt?: Date;
}

/** The complete HTML page for `data`. The page sets `window.olmoReport = {charts: {id: Chart}}` once drawn. */
export function renderReportHtml(data: ReportData, opts: RenderOptions = {}): string {
  const chartJs = (opts.chartJs ?? chartJsSource()).replace(/<\/script/gi, '<\\/script');
  const s = data.summary;
  const cards = data.charts.map((c) =>
    `<section class="card"><h2>${escapeHtml(c.title)}</h2><div class="plot"><canvas id="chart-${escapeHtml(c.id)}" role="img" aria-label="${escapeHtml(c.title)}"></canvas></div></section>`,
  ).join('\n');
  const warn = s.truncatedLastLine
    ? '<p class="warn">The last line of metrics.jsonl was cut short (the run crashed while writing it); it is left out.</p>'
    : '';
  const empty = data.charts.length ? '' : '<p class="warn">metrics.jsonl has no metrics yet.</p>';
  const config = data.configText === undefined ? ''
    : `<details><summary>config.yaml</summary><pre>${escapeHtml(data.configText)}</pre></details>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(s.runName)} · olmo-ts run report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(s.runName)}</h1>
<p class="sub">olmo-ts run report · ${escapeHtml(data.runDir)} · generated ${escapeHtml((opts.generatedAt ?? new Date()).toISOString().replace('T', ' ').slice(0, 19))} UTC</p>
<dl class="summary">${summaryItems(s).map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join('')}</dl>
${warn}${empty}
</header>
<main>
${cards}
</main>
${config}
<script type="application/json" id="report-data">${scriptJson({ charts: data.charts })}</script>
<script>${chartJs}</script>
<script>${PAGE_JS}</script>
</body>
</html>
`;
}

/** The header's label/value pairs (exported for tests). */
export function summaryItems(s: RunSummary): Array<[string, string]> {
  const num = (v: number | undefined, f: (x: number) => string) => (v === undefined ? '—' : f(v));
  const steps = s.lastStep === undefined ? '—'
    : s.maxSteps ? `${s.lastStep.toLocaleString('en-US')} / ${s.maxSteps.toLocaleString('en-US')}` : s.lastStep.toLocaleString('en-US');
  const items: Array<[string, string]> = [
    ['Steps', steps],
    ['Final loss', num(s.finalLoss, (v) => v.toFixed(4))],
    ['Best loss', num(s.minLoss, (v) => v.toFixed(4))],
    ['Final perplexity', num(s.finalPerplexity, formatFloat)],
    ['Tokens', num(s.totalTokens, formatCount)],
    ['Time', formatDuration(s.wallSeconds)],
    ['Tokens/s (device)', num(s.lastTokensPerSecond, formatCount)],
  ];
  if (s.finalEvalLoss) items.splice(4, 0, [`Eval loss (${s.finalEvalLoss.name})`, s.finalEvalLoss.value.toFixed(4)]);
  if (s.lastMfuPercent !== undefined) items.push(['MFU', `${s.lastMfuPercent.toFixed(1)}%`]);
  if (s.startTime !== undefined) items.push(['Started', new Date(s.startTime * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC']);
  return items;
}

const CSS = `
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #dde3ea; --bg: #f5f7fa; --card: #fff; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 20px 28px 8px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 22px; }
.sub { margin: 2px 0 14px; color: var(--muted); font-size: 12px; word-break: break-all; }
.summary { display: flex; flex-wrap: wrap; gap: 10px 28px; margin: 0 0 12px; }
.summary div { min-width: 110px; }
.summary dt { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }
.summary dd { margin: 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.warn { color: #9a4d00; background: #fff4e0; border: 1px solid #f3d19c; padding: 6px 10px; border-radius: 6px; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; padding: 16px 28px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px 8px; min-width: 0; }
.card h2 { margin: 0 0 6px; font-size: 15px; }
.plot { position: relative; height: 260px; }
details { margin: 0 28px 28px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
summary { cursor: pointer; font-weight: 600; }
pre { overflow: auto; font-size: 12px; }
`;

// Runs in the browser: one Chart per spec; NaN steps arrive as null and show as gaps.
const PAGE_JS = `
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#1f6feb', '#d1495b', '#2a9d8f', '#e9a03b', '#7b4fd6', '#5c6b73', '#c2185b', '#00897b'];
  var charts = {};
  data.charts.forEach(function (spec) {
    var hasY2 = spec.series.some(function (s) { return s.axis === 'y2'; });
    var datasets = spec.series.map(function (s, i) {
      var color = palette[i % palette.length];
      return {
        label: s.label, yAxisID: s.axis, borderColor: color, backgroundColor: color,
        data: s.points.map(function (p) { return { x: p[0], y: p[1] }; }),
        borderWidth: s.axis === 'y2' ? 1 : 1.6, borderDash: s.axis === 'y2' ? [5, 3] : [],
        pointRadius: s.markers ? 3 : s.points.length > 60 ? 0 : 2, pointStyle: s.markers ? 'rectRot' : 'circle',
        tension: 0, spanGaps: false,
      };
    });
    var scales = {
      x: { type: 'linear', title: { display: true, text: 'step' }, ticks: { maxTicksLimit: 8 } },
      y: { type: spec.yLog ? 'logarithmic' : 'linear', title: { display: true, text: spec.yLabel } },
    };
    if (hasY2) scales.y2 = { type: 'linear', position: 'right', grid: { drawOnChartArea: false },
      title: { display: true, text: spec.y2Label || '' } };
    charts[spec.id] = new Chart(document.getElementById('chart-' + spec.id), {
      type: 'line',
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: true, normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        plugins: { legend: { display: datasets.length > 1, labels: { boxWidth: 12 } } },
        scales: scales,
      },
    });
  });
  window.olmoReport = { charts: charts, ready: true };
})();
`;
