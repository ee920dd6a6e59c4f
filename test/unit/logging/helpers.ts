// Shared helpers for the logging tests: temp folders, a fake terminal stream and a synthetic
// training run (falling loss, warmup+cosine LR, grad norm, throughput) written as metrics.jsonl.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JsonlWriter } from '../../../src/train/logging/jsonl';
import { METRIC, trainStepMetrics } from '../../../src/train/logging/metrics';

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(prefix = 'olmo-ts-logging-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Collects what a logger writes; `isTTY`/`columns` as a terminal would report. */
export class FakeStream {
  chunks: string[] = [];
  constructor(public isTTY = false, public columns = 100) {}
  write(s: string): boolean { this.chunks.push(s); return true; }
  get text(): string { return this.chunks.join(''); }
}

/** The metrics a synthetic step `s` of `total` logs (deterministic). */
export function syntheticMetrics(s: number, total: number): Record<string, number> {
  const warm = Math.max(1, Math.floor(total / 10));
  const lr = s <= warm ? 4e-4 * s / warm : 4e-5 + 0.5 * (4e-4 - 4e-5) * (1 + Math.cos(Math.PI * (s - warm) / (total - warm)));
  const loss = 2.2 + 8.6 * Math.exp(-s / (total / 6)) + 0.08 * Math.sin(s * 1.7);
  return trainStepMetrics(
    { crossEntropyLoss: loss, zLoss: 2e-4 + 6e-4 * Math.exp(-s / (total / 3)), totalGradNorm: 0.6 + 3 / Math.sqrt(s), clippingRate: s < 20 ? 1 : 0, learningRates: [lr, lr] },
    {
      [METRIC.totalTokens]: s * 8192,
      [METRIC.tokensPerSecond]: 12000 + 800 * Math.sin(s / 7),
      [METRIC.batchesPerSecond]: (12000 + 800 * Math.sin(s / 7)) / 8192,
      [METRIC.mfuPercent]: 31 + 2 * Math.sin(s / 7),
      [METRIC.dataLoadingPercent]: 2 + Math.abs(Math.sin(s / 3)),
    },
  );
}

/** Writes `steps` synthetic steps (one second apart) to `dir/metrics.jsonl` and a config.yaml. */
export function writeSyntheticRun(dir: string, steps = 200, runName = 'synthetic-run'): void {
  let t = Date.UTC(2025, 0, 2, 3, 4, 5);
  const w = new JsonlWriter(dir, { mode: 'overwrite', now: () => t });
  for (let s = 1; s <= steps; s++) {
    t += 1000;
    w.log(s, syntheticMetrics(s, steps));
  }
  w.close();
  fs.writeFileSync(path.join(dir, 'config.yaml'), `run_name: ${runName}\nmax_duration: ${steps}\nseed: 6198\n`);
}
