// OLMo model parity on CUDA: for every config of test/fixtures/model (weights and inputs written by
// reference.py), olmo-ts's model on the GPU and reference.py's forward run by this machine's
// PyTorch on the same GPU (model_ref.py, at test time) give the same float32 logits, loss and
// parameter gradients.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { OLMo, Tensor, dispose, tidy } from '../../src';
import { readSafetensors } from '../../src/io/safetensors';
import { DEVICE, PY_DEVICE, cudaMissing, runReference, tempDir } from './cuda-env';

const FIXTURES = path.resolve(__dirname, '../fixtures/model');
const cases = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.safetensors')).sort();

const missing = cudaMissing();
test(`a CUDA device is present (${DEVICE})`, () => {
  if (missing) assert.fail(missing);
});

const refDir = tempDir('cuda-model');
after(() => fs.rmSync(refDir, { recursive: true, force: true }));
if (!missing) runReference('model_ref.py', [refDir, PY_DEVICE]);

// The same bound as the CPU parity test (test/unit/model/parity.test.ts), for the same reason: the
// tiny models' values are O(1) and their reductions short (d_model 64, 2 layers), so float32
// results that compute the same sums in another order or through another kernel (olmo-ts's fused
// SDPA against the written-out softmax) agree to ~1e-6. TF32 is off on both sides; with it, matmuls
// keep 10 mantissa bits and differences reach ~1e-3.
const TOL = 1e-5;

function maxAbsDiff(a: Tensor, b: Tensor): number {
  return tidy(() => a.to('float64').cpu().sub(b.to('float64').cpu()).abs().max().item());
}

for (const file of cases) {
  test(`parity on ${DEVICE} with PyTorch on ${DEVICE}: ${file.replace('.safetensors', '')}`, { skip: missing ?? false }, () => {
    const fx = readSafetensors(path.join(FIXTURES, file));
    const ref = readSafetensors(path.join(refDir, file));
    const model = new OLMo(JSON.parse(fx.metadata.config!), { initParams: false, device: DEVICE });
    try {
      const params = new Map<string, Tensor>();
      for (const [k, t] of fx.tensors) if (k.startsWith('param.')) params.set(k.slice(6), t);
      model.loadStateDict(params);
      model.eval();
      const measured = tidy(() => {
        const ids = fx.tensors.get('input_ids')!.to(DEVICE);
        const mask = fx.tensors.get('attention_mask')?.to(DEVICE) ?? null;
        const bias = fx.tensors.get('attention_bias')?.to(DEVICE) ?? null;
        const { logits } = model.forward(ids, { attentionMask: mask, attentionBias: bias });
        assert.equal(logits.device, DEVICE, 'logits are on the device');
        const loss = model.loss(logits, ids, { labelMask: mask });
        loss.backward();
        const dLogits = maxAbsDiff(logits, ref.tensors.get('logits')!);
        const dLoss = Math.abs(loss.item() - ref.tensors.get('loss')!.item());
        let dGrad = 0;
        let maxGrad = 0;
        let worst = '';
        for (const p of model.namedParameters()) {
          const g = p.tensor.grad;
          assert.ok(g, `no gradient for ${p.name}`);
          assert.equal(g.device, DEVICE, `gradient of ${p.name} is on the device`);
          const r = ref.tensors.get(`grad.${p.name}`);
          assert.ok(r, `the reference has no gradient for ${p.name}`);
          const d = maxAbsDiff(g, r);
          if (d > dGrad) [dGrad, worst] = [d, p.name];
          maxGrad = Math.max(maxGrad, r.abs().max().item());
        }
        return { dLogits, dLoss, dGrad, maxGrad, worst };
      });
      console.log(`${file}: ${JSON.stringify(measured)}`);
      assert.ok(measured.dLogits <= TOL, `logits differ by ${measured.dLogits}`);
      assert.ok(measured.dLoss <= TOL, `loss differs by ${measured.dLoss}`);
      assert.ok(measured.dGrad <= TOL, `gradients differ by ${measured.dGrad} at ${measured.worst} (largest gradient ${measured.maxGrad})`);
    } finally {
      model.dispose();
      dispose([...fx.tensors.values(), ...ref.tensors.values()]);
    }
  });
}
