// Parity with PyTorch: for every config in test/fixtures/model (written by reference.py, a plain
// PyTorch implementation of OLMo's forward), the same weights must give the same logits (max abs
// diff <= 1e-5 in float32), the same loss and the same gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor, tidy, dispose } from '../../../src/index';
import { readSafetensors } from '../../../src/io/safetensors';
import { OLMo } from '../../../src/model/olmo';

const DIR = path.resolve(__dirname, '../../fixtures/model');
const cases = fs.readdirSync(DIR).filter((f) => f.endsWith('.safetensors')).sort();

function maxAbsDiff(a: Tensor, b: Tensor): number {
  return tidy(() => a.to('float64').sub(b.to('float64')).abs().max().item());
}

test('the fixture matrix is present', () => {
  assert.ok(cases.length >= 9, `expected the PyTorch fixtures in ${DIR}, found ${cases.length}`);
});

for (const file of cases) {
  test(`parity with PyTorch: ${file.replace('.safetensors', '')}`, () => {
    const { tensors, metadata } = readSafetensors(path.join(DIR, file));
    const model = new OLMo(JSON.parse(metadata.config!), { initParams: false });
    try {
      const params = new Map<string, Tensor>();
      for (const [k, t] of tensors) if (k.startsWith('param.')) params.set(k.slice(6), t);
      model.loadStateDict(params); // strict: names and shapes must be OLMo's
      model.eval();
      const ids = tensors.get('input_ids')!;
      const mask = tensors.get('attention_mask') ?? null;
      const bias = tensors.get('attention_bias') ?? null;
      const measured = tidy(() => {
        const { logits } = model.forward(ids, { attentionMask: mask, attentionBias: bias });
        const loss = model.loss(logits, ids, { labelMask: mask });
        loss.backward();
        const dLogits = maxAbsDiff(logits, tensors.get('logits')!);
        const dLoss = Math.abs(loss.item() - tensors.get('loss')!.item());
        let dGrad = 0;
        let maxGrad = 0;
        for (const p of model.namedParameters()) {
          const g = p.tensor.grad;
          assert.ok(g, `no gradient for ${p.name}`);
          const ref = tensors.get(`grad.${p.name}`)!;
          dGrad = Math.max(dGrad, maxAbsDiff(g, ref));
          maxGrad = Math.max(maxGrad, ref.abs().max().item());
        }
        return { dLogits, dLoss, dGrad, maxGrad };
      });
      if (process.env.OLMO_TS_PARITY_LOG) console.log(file, JSON.stringify(measured));
      assert.ok(measured.dLogits <= 1e-5, `logits differ by ${measured.dLogits}`);
      assert.ok(measured.dLoss <= 1e-5, `loss differs by ${measured.dLoss}`);
      assert.ok(measured.dGrad <= 1e-5, `gradients differ by ${measured.dGrad} (largest gradient ${measured.maxGrad})`);
    } finally {
      model.dispose();
      dispose([...tensors.values()]);
    }
  });
}
