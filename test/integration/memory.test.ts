// Long-loop memory behaviour: 10,000 forward/backward/update steps of a small MLP must keep the
// live-tensor count exactly flat and the process RSS flat (no native leak, no heap fragmentation).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { F, Tensor, keep, liveTensors, manualSeed, noGrad, ones, randn, tidy, zeroGrad, zeros } from '../../src';

const rssMB = () => process.memoryUsage.rss() / 2 ** 20;

test('10,000 MLP training steps hold the live-tensor count and RSS flat', () => {
  manualSeed(0);
  const params = tidy(() => [randn([256, 64]).mul(0.05), zeros([256]), randn([64, 256]).mul(0.05), zeros([64])]).map((p) => keep(p.requiresGrad_()));
  const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
  const x = keep(randn([32, 64]));
  const y = keep(randn([32, 64]));
  const base = liveTensors();
  let rssWarm = 0;
  let firstLoss = 0, lastLoss = 0;
  for (let step = 0; step < 10_000; step++) {
    const loss = tidy(() => {
      const h = F.linear(x, w1, b1).silu();              // (32, 256)
      const out = F.linear(h, w2, b2);                   // (32, 64)
      const l = out.sub(y).square().mean();
      l.backward();
      noGrad(() => { for (const p of params) p.sub_(p.grad!, 0.05); });
      zeroGrad(params);
      return step % 1000 === 0 || step === 9999 ? l.item() : 0;
    });
    if (step === 0) firstLoss = loss;
    if (step === 9999) lastLoss = loss;
    assert.equal(liveTensors(), base, `live tensors grew at step ${step}`);
    if (step === 1000) rssWarm = rssMB();
  }
  const growth = rssMB() - rssWarm;
  assert.ok(lastLoss < firstLoss * 0.5, `the MLP trained (loss ${firstLoss} -> ${lastLoss})`);
  assert.ok(growth < 25, `RSS grew by ${growth.toFixed(1)} MB between step 1000 and 10000`);
  for (const t of [...params, x, y]) t.dispose();
});

test('repeatedly allocating and freeing 4 MB tensors keeps RSS bounded', () => {
  const start = rssMB();
  for (let i = 0; i < 3000; i++) tidy(() => ones([1024, 1024]).mul(2).sum().item());
  const growth = rssMB() - start;
  assert.ok(growth < 100, `RSS grew by ${growth.toFixed(1)} MB over 3000 x 4 MB allocations`);
});
