// SpeedMonitor: rolling-window tokens/s and batches/s (OLMo semantics: first step skipped, window
// of window_size steps, reset after checkpoints), MFU and data-loading %, and the step metrics helper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRIC, learningRateMetric, trainStepMetrics } from '../../../src/train/logging/metrics';
import { SpeedMonitor, transformerFlopsPerToken } from '../../../src/train/logging/speed-monitor';

const close = (a: number | undefined, b: number, msg?: string) =>
  assert.ok(a !== undefined && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${msg ?? ''} ${a} != ${b}`);

test('skips the first step, then reports window throughput, data-loading % and MFU', () => {
  const m = new SpeedMonitor({ windowSize: 3, flopsPerToken: 6e6, peakFlopsPerDevice: 1e12 });
  assert.deepEqual(m.check(), { [METRIC.totalTokens]: 0 });
  m.record({ deviceTokens: 1000, globalTotalTokens: 2000, stepSeconds: 30, dataSeconds: 29 }); // compile outlier: skipped
  assert.deepEqual(m.check(), { [METRIC.totalTokens]: 2000 });
  m.record({ deviceTokens: 1000, globalTotalTokens: 4000, stepSeconds: 0.5, dataSeconds: 0.1 });
  m.record({ deviceTokens: 1000, globalTotalTokens: 6000, stepSeconds: 0.5, dataSeconds: 0 });
  let r = m.check();
  close(r[METRIC.tokensPerSecond], 2000);
  close(r[METRIC.batchesPerSecond], 2);
  close(r[METRIC.dataLoadingPercent], 10);
  close(r[METRIC.dataLoadingSeconds], 0.05);
  close(r[METRIC.mfuPercent], (100 * 2000 * 6e6) / 1e12); // 1.2 %
  assert.equal(r[METRIC.totalTokens], 6000);
  // Two more steps push the first two out of the 3-step window.
  m.record({ deviceTokens: 3000, globalTotalTokens: 12000, stepSeconds: 1, dataSeconds: 0.5 });
  m.record({ deviceTokens: 3000, globalTotalTokens: 18000, stepSeconds: 1, dataSeconds: 0.5 });
  r = m.check();
  close(r[METRIC.tokensPerSecond], 7000 / 2.5);
  close(r[METRIC.batchesPerSecond], 3 / 2.5);
  close(r[METRIC.dataLoadingPercent], 40);
  assert.equal(r[METRIC.totalTokens], 18000);
});

test('reset forgets the window and skips the next step again; no MFU without a peak', () => {
  const m = new SpeedMonitor({ windowSize: 10, flopsPerToken: 6e6 });
  m.record({ deviceTokens: 10, globalTotalTokens: 10, stepSeconds: 1 });
  m.record({ deviceTokens: 10, globalTotalTokens: 20, stepSeconds: 1 });
  assert.ok(METRIC.tokensPerSecond in m.check());
  assert.ok(!(METRIC.mfuPercent in m.check()));
  m.reset();
  m.record({ deviceTokens: 10, globalTotalTokens: 30, stepSeconds: 100 }); // e.g. the step after a checkpoint
  assert.deepEqual(m.check(), { [METRIC.totalTokens]: 30 });
  m.record({ deviceTokens: 10, globalTotalTokens: 40, stepSeconds: 2 });
  close(m.check()[METRIC.tokensPerSecond], 5);
  const noSkip = new SpeedMonitor({ skipFirst: 0 });
  noSkip.record({ deviceTokens: 8, globalTotalTokens: 8, stepSeconds: 2 });
  close(noSkip.check()[METRIC.tokensPerSecond], 4);
});

test('misuse: bad options and timings throw RangeError naming the setting', () => {
  assert.throws(() => new SpeedMonitor({ windowSize: 0 }), /speed_monitor\.window_size must be a positive integer, got 0/);
  assert.throws(() => new SpeedMonitor({ peakFlopsPerDevice: -1 }), /speed_monitor\.gpu_flops_available must be a positive number, got -1/);
  assert.throws(() => new SpeedMonitor({ flopsPerToken: NaN }), /flopsPerToken must be a positive number/);
  assert.throws(() => new SpeedMonitor({ skipFirst: -1 }), /skipFirst/);
  const m = new SpeedMonitor();
  assert.throws(() => m.record({ deviceTokens: 1, globalTotalTokens: 1, stepSeconds: -1 }), /bad step timing/);
  assert.throws(() => m.record({ deviceTokens: 1, globalTotalTokens: 1, stepSeconds: NaN }), /bad step timing/);
});

test('transformerFlopsPerToken is 6N + 12·L·d·T', () => {
  // OLMo-1B-like: 1.07e9 non-embedding params, 16 layers, d_model 2048, seq 2048.
  assert.equal(transformerFlopsPerToken({ nonEmbeddingParams: 1.07e9, nLayers: 16, dModel: 2048, seqLen: 2048 }),
    6 * 1.07e9 + 12 * 16 * 2048 * 2048);
});

test('trainStepMetrics uses OLMo names and order, perplexity = exp(loss)', () => {
  const m = trainStepMetrics({ crossEntropyLoss: 2, zLoss: 0.01, totalGradNorm: 1.5, clippingRate: 0.25, learningRates: [1e-3, 5e-4] },
    { [METRIC.totalTokens]: 10 });
  assert.deepEqual(Object.keys(m), ['train/CrossEntropyLoss', 'train/Perplexity', 'train/ZLoss', 'optim/total_grad_norm',
    'optim/clipping_rate', 'optim/learning_rate_group0', 'optim/learning_rate_group1', 'throughput/total_tokens']);
  assert.equal(m['train/Perplexity'], Math.exp(2));
  assert.equal(m[learningRateMetric(1)], 5e-4);
  assert.deepEqual(Object.keys(trainStepMetrics({ crossEntropyLoss: 1 })), ['train/CrossEntropyLoss', 'train/Perplexity']);
});
