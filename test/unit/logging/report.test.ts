// The run report without a browser: chart specs and summary from metrics.jsonl + config.yaml,
// downsampling, escaping, the `olmo-ts report` command end to end; plus createMetricsSinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildProgram } from '../../../src/cli/main';
import { createMetricsSinks, readMetricsJsonl } from '../../../src/train/logging';
import { downsample, loadReportData } from '../../../src/train/logging/report-data';
import { renderReportHtml, summaryItems } from '../../../src/train/logging/report-html';
import { FakeStream, syntheticMetrics, tempDir, writeSyntheticRun } from './helpers';

test('report data: one chart per curve with every logged point, summary from the last records', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeSyntheticRun(dir, 120, 'tiny-olmo');
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), '{"step":121,"time":1'); // crash mid-line
    const d = loadReportData(dir);
    assert.deepEqual(d.charts.map((c) => c.id), ['loss', 'perplexity', 'lr', 'grad-norm', 'throughput']);
    const byId = Object.fromEntries(d.charts.map((c) => [c.id, c]));
    assert.deepEqual(byId.loss!.series.map((s) => [s.label, s.axis, s.points.length]), [['CrossEntropyLoss', 'y', 120], ['ZLoss', 'y2', 120]]);
    assert.deepEqual(byId.lr!.series.map((s) => s.label), ['group 0', 'group 1']);
    assert.deepEqual(byId.loss!.series[0]!.points[9], [10, syntheticMetrics(10, 120)['train/CrossEntropyLoss']]);
    assert.equal(byId.perplexity!.yLog, true);
    const s = d.summary;
    assert.equal(s.runName, 'tiny-olmo');
    assert.equal(s.lastStep, 120);
    assert.equal(s.maxSteps, 120);
    assert.equal(s.totalTokens, 120 * 8192);
    assert.equal(s.wallSeconds, 119);
    assert.equal(s.finalLoss, syntheticMetrics(120, 120)['train/CrossEntropyLoss']);
    assert.equal(s.truncatedLastLine, true);
    assert.ok(s.minLoss! <= s.finalLoss!);
    const items = Object.fromEntries(summaryItems(s));
    assert.equal(items.Steps, '120 / 120');
    assert.equal(items.Tokens, '983k');
    assert.equal(items.Time, '1m59s');
  } finally {
    cleanup();
  }
});

test('report data: NaN becomes a gap, resumed steps fold, eval curves join the training charts, other metrics get their own chart, no config ok', () => {
  const { dir, cleanup } = tempDir();
  try {
    const lines = [
      { step: 1, time: 10, 'train/CrossEntropyLoss': 5 },
      { step: 2, time: 11, 'train/CrossEntropyLoss': 'NaN', 'eval/c4/Perplexity': 30 },
      { step: 3, time: 12, 'train/CrossEntropyLoss': 9 },
      { step: 2, time: 20, 'train/CrossEntropyLoss': 4.5 }, // resumed from the step-1 checkpoint
      { step: 3, time: 21, 'train/CrossEntropyLoss': 4, 'eval/c4/Perplexity': 20, 'System/Peak GPU Memory (MB)': 7 },
    ];
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const d = loadReportData(dir);
    assert.deepEqual(d.charts.find((c) => c.id === 'loss')!.series[0]!.points, [[1, 5], [2, 4.5], [3, 4]]);
    assert.deepEqual(d.charts.map((c) => c.id), ['loss', 'perplexity', 'extra-System'], 'other metrics get a chart per prefix');
    assert.deepEqual(d.charts[1]!.series.map((x) => [x.label, x.markers, x.points]), [['eval: c4', true, [[3, 20]]]], 'eval perplexity beside training perplexity');
    assert.equal(d.summary.runName, path.basename(dir));
    assert.equal(d.configText, undefined);
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), '{"step":1,"time":1,"train/CrossEntropyLoss":"NaN"}\n{"step":2,"time":2,"train/CrossEntropyLoss":3}\n');
    assert.deepEqual(loadReportData(dir).charts[0]!.series[0]!.points, [[1, null], [2, 3]]);
    assert.throws(() => loadReportData(path.join(dir, 'missing')), /no metrics\.jsonl in .*missing/);
  } finally {
    cleanup();
  }
});

test('downsample keeps first/last, the spike and the gaps, and at most max points', () => {
  const pts: Array<[number, number | null]> = Array.from({ length: 10000 }, (_, i) => [i + 1, Math.sin(i / 500)]);
  pts[4321]![1] = 50; // a loss spike
  pts[7777]![1] = null; // a NaN step
  const d = downsample(pts, 500);
  assert.ok(d.length <= 500);
  assert.deepEqual(d[0], [1, pts[0]![1]]);
  assert.deepEqual(d.at(-1), [10000, pts[9999]![1]]);
  assert.ok(d.some((p) => p[1] === 50), 'spike kept');
  assert.ok(d.some((p) => p[0] === 7778 && p[1] === null), 'gap kept');
  assert.ok(d.every((p, i) => i === 0 || p[0] > d[i - 1]![0]), 'steps increase');
  assert.equal(downsample(pts.slice(0, 10), 500).length, 10);
});

test('HTML is self-contained and escapes run names and config text', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeSyntheticRun(dir, 20, '"</script><img src=x onerror=alert(1)>');
    fs.appendFileSync(path.join(dir, 'config.yaml'), 'note: "</script><!--"\n');
    const html = renderReportHtml(loadReportData(dir), { chartJs: '/* chart.js stub */' });
    assert.ok(!html.includes('<img src=x'), 'run name escaped');
    assert.equal(html.match(/<\/script>/g)!.length, 3, 'only the three real script ends');
    assert.ok(!/\b(src|href)=["']?(https?:)?\/\//i.test(html), 'no external resources');
    assert.match(html, /<canvas id="chart-loss"/);
    const full = renderReportHtml(loadReportData(dir));
    assert.ok(full.includes('Chart.js v4'), 'Chart.js inlined');
  } finally {
    cleanup();
  }
});

test('`olmo-ts report RUN_DIR -o FILE` writes the page and reports what it did; errors are clear', async () => {
  const { dir, cleanup } = tempDir();
  const logs: string[] = [];
  const orig = console.log;
  try {
    writeSyntheticRun(dir, 30);
    console.log = (...a: unknown[]) => { logs.push(a.join(' ')); };
    const out = path.join(dir, 'sub', 'r.html');
    await buildProgram().exitOverride().parseAsync(['node', 'olmo-ts', 'report', dir, '-o', out]);
    assert.ok(fs.statSync(out).size > 150_000, 'page with the inlined Chart.js');
    assert.match(logs.join('\n'), /wrote .*r\.html \(30 logged steps, final loss \d+\.\d{4}\)/);
    await buildProgram().exitOverride().parseAsync(['node', 'olmo-ts', 'report', dir]);
    assert.ok(fs.existsSync(path.join(dir, 'report.html')), 'default output in the run folder');
    await assert.rejects(buildProgram().exitOverride().parseAsync(['node', 'olmo-ts', 'report', path.join(dir, 'nope')]), /run folder not found/);
    const prog = buildProgram();
    for (const c of [prog, ...prog.commands]) c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    await assert.rejects(prog.parseAsync(['node', 'olmo-ts', 'report', dir, '--max-points', '2']), /expected an integer >= 3/);
  } finally {
    console.log = orig;
    cleanup();
  }
});

test('report --help describes the argument and options', () => {
  const help = buildProgram().commands.find((c) => c.name() === 'report')!.helpInformation();
  assert.match(help, /Usage: olmo-ts report \[options\] <run_dir>/);
  assert.match(help, /-o, --output <file>/);
  assert.match(help, /--max-points <n>/);
});

test('createMetricsSinks: rank 0 writes metrics.jsonl, TensorBoard and console; other ranks nothing', () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = new FakeStream(false);
    const sinks = createMetricsSinks({ runDir: dir, console: { stream: out, totalSteps: 2 }, rank: 0 });
    sinks.log(1, syntheticMetrics(1, 2));
    sinks.console!.info('hello');
    sinks.log(2, syntheticMetrics(2, 2));
    sinks.close();
    sinks.close();
    assert.equal(readMetricsJsonl(dir).records.length, 2);
    const tb = fs.readdirSync(path.join(dir, 'tensorboard'));
    assert.equal(tb.length, 1);
    assert.ok(fs.statSync(path.join(dir, 'tensorboard', tb[0]!)).size > 400);
    assert.match(out.text, /\[step=2\/2\]/);
    assert.match(out.text, /INFO\thello\n/);
    const other = tempDir();
    const none = createMetricsSinks({ runDir: other.dir, rank: 1 });
    none.log(1, { a: 1 });
    none.close();
    assert.deepEqual(fs.readdirSync(other.dir), []);
    assert.equal(none.console, undefined);
    other.cleanup();
  } finally {
    cleanup();
  }
});
