// The HTML run report in a real headless browser (Debian's chromium through playwright-core): every
// chart is a live Chart.js instance with the logged number of points, its series colour is on the
// canvas, nothing errors in the console and nothing is fetched from the network.
// Set OLMO_TS_REPORT_SCREENSHOT=/path.png to keep a full-page screenshot for a look.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { JsonlWriter } from '../../../src/train/logging/jsonl';
import { loadReportData } from '../../../src/train/logging/report-data';
import { renderReportHtml } from '../../../src/train/logging/report-html';
import { syntheticMetrics, tempDir, writeSyntheticRun } from './helpers';

const CHROMIUM = process.env.OLMO_TS_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

// Runs in the page. A string, not a function: tsx's transform adds helpers (__name) that do not
// exist in the browser when playwright serialises a function.
const INSPECT_CHARTS = `(() => {
  const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
  return Object.entries(window.olmoReport.charts).map(([id, chart]) => {
    const canvas = chart.canvas;
    const img = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const [r, g, b] = hex(chart.data.datasets[0].borderColor);
    let seriesPixels = 0, inkedPixels = 0;
    for (let i = 0; i < img.length; i += 4) {
      if (img[i + 3] > 0) inkedPixels++;
      if (img[i + 3] > 200 && Math.abs(img[i] - r) < 40 && Math.abs(img[i + 1] - g) < 40 && Math.abs(img[i + 2] - b) < 40) seriesPixels++;
    }
    return {
      id, seriesPixels, inkedPixels, width: canvas.width, height: canvas.height,
      points: chart.data.datasets.map((d) => d.data.length),
      labels: chart.data.datasets.map((d) => d.label),
      gaps: chart.data.datasets[0].data.filter((p) => p.y === null).map((p) => p.x),
      yMin: chart.scales.y.min, yMax: chart.scales.y.max,
    };
  });
})()`;

interface ChartInfo {
  id: string;
  points: number[];
  labels: string[];
  /** Steps of the first series drawn as gaps (NaN). */
  gaps: number[];
  /** Canvas pixels close to the first series' colour. */
  seriesPixels: number;
  /** Canvas pixels with any ink. */
  inkedPixels: number;
  width: number;
  height: number;
  yMin: number;
  yMax: number;
}

test('report renders in headless chromium: charts drawn with all points, no errors, no network', { timeout: 120_000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    t.skip(`no chromium at ${CHROMIUM}: apt-get install -y --no-install-recommends chromium (scripts/setup.sh --test does)`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const { dir, cleanup } = tempDir();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    // 240 steps, a NaN loss at step 150, then a resume from step 200 that re-logs 201..240.
    writeSyntheticRun(dir, 240, 'browser-check');
    const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n');
    lines[149] = lines[149]!.replace(/"train\/CrossEntropyLoss":[^,]+/, '"train/CrossEntropyLoss":"NaN"');
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n'));
    const w = new JsonlWriter(dir, { now: () => Date.UTC(2025, 0, 2, 4) });
    for (let s = 201; s <= 240; s++) w.log(s, syntheticMetrics(s, 240));
    w.close();
    const html = path.join(dir, 'report.html');
    fs.writeFileSync(html, renderReportHtml(loadReportData(dir)));

    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => { if (!/^(file|data|blob):/.test(r.url())) requests.push(r.url()); });
    await page.goto(pathToFileURL(html).href);
    await page.waitForFunction('window.olmoReport && window.olmoReport.ready === true', undefined, { timeout: 30_000 });

    const charts = await page.evaluate(INSPECT_CHARTS) as ChartInfo[];

    const shot = process.env.OLMO_TS_REPORT_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot, fullPage: true });

    assert.deepEqual(problems, [], 'no console errors or warnings');
    assert.deepEqual(requests, [], 'no network requests');
    assert.deepEqual(charts.map((c) => c.id), ['loss', 'perplexity', 'lr', 'grad-norm', 'throughput']);
    const byId = Object.fromEntries(charts.map((c) => [c.id, c]));
    // Folding the resume leaves steps 1..240 once each.
    assert.deepEqual(byId.loss!.points, [240, 240]);
    assert.deepEqual(byId.loss!.labels, ['CrossEntropyLoss', 'ZLoss']);
    assert.deepEqual(byId.loss!.gaps, [150], 'the NaN loss is a gap');
    assert.deepEqual(byId.perplexity!.gaps, []);
    assert.deepEqual(byId.lr!.points, [240, 240]);
    assert.deepEqual(byId['grad-norm']!.points, [240, 240]);
    assert.deepEqual(byId.throughput!.points, [240, 240]);
    // The loss axis spans the synthetic loss (about 2.1 .. 10.7).
    assert.ok(byId.loss!.yMin <= 2.2 && byId.loss!.yMax >= 10.7, `loss axis ${byId.loss!.yMin}..${byId.loss!.yMax}`);
    for (const c of charts) {
      assert.ok(c.width > 300 && c.height > 200, `${c.id} canvas has a size (${c.width}x${c.height})`);
      assert.ok(c.inkedPixels > 2000, `${c.id} canvas is not blank (${c.inkedPixels} inked pixels)`);
      assert.ok(c.seriesPixels > 150, `${c.id}: the first series' line is drawn (${c.seriesPixels} pixels)`);
    }
    // The summary header shows the folded run.
    const header = await page.locator('dl.summary').innerText();
    assert.match(header, /STEPS\s+240 \/ 240/i);
    assert.match(header, /FINAL LOSS\s+\d+\.\d{4}/i);
    assert.equal(await page.title(), 'browser-check · olmo-ts run report');
  } finally {
    await browser.close();
    cleanup();
  }
});
