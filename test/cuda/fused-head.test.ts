// The fused LM head + loss (src/train/loss.ts microBatchLoss; native/fused_head.cc, whose ATen path
// is what CUDA runs) on CUDA against the unfused path (the model's logits, then the loss), on the
// same GPU: every head option x float32 / bf16 autocast x z-loss, then an OLMo-sized vocabulary whose
// tokens span several chunks. Losses and every parameter gradient must agree within the rounding
// of the dtype.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OLMo, Tensor, dispose, liveTensors, manualSeed, randint, tidy, zeroGrad } from '../../src';
import type { ModelConfig } from '../../src/config/model';
import * as lossModule from '../../src/train/loss';
import { tinyConfig } from '../unit/model/helpers';
import { DEVICE, U_BF16, U_F32, cudaMissing } from './cuda-env';

const missing = cudaMissing();
test(`a CUDA device is present (${DEVICE})`, () => {
  if (missing) assert.fail(missing);
});

type MicroBatchLoss = (model: OLMo, ids: Tensor, labels: Tensor, o: { attentionMask: Tensor | null; amp: boolean; fused: boolean; zLoss: boolean; divisor: number }) => { loss: Tensor; ce: Tensor; z: Tensor | null };
const microBatchLoss = (lossModule as Record<string, unknown>).microBatchLoss as MicroBatchLoss | undefined;

/** ||a - b|| / ||b|| (float64, on the host). */
function relErr(a: Tensor, b: Tensor): number {
  return tidy(() => {
    const d = a.to('float64').sub(b.to('float64')).square().sum().sqrt().item();
    const n = b.to('float64').square().sum().sqrt().item();
    return d / Math.max(n, 1e-300);
  });
}

/** Runs fused and unfused on the same model and batch; returns both losses and gradients. */
function compare(model: OLMo, ids: Tensor, labels: Tensor, amp: boolean, zLoss: boolean) {
  const run = (fused: boolean) => tidy(() => {
    zeroGrad(model.parameters());
    const m = microBatchLoss!(model, ids, labels, { attentionMask: null, amp, fused, zLoss, divisor: 2 });
    model.backward(m.loss);
    return { loss: m.loss.item(), ce: m.ce.item(), z: m.z?.item() ?? null, grads: model.namedParameters().map((p) => ({ name: p.name, g: p.tensor.grad!.clone() })) };
  });
  return { f: run(true), u: run(false) };
}

const HEADS: [string, Partial<ModelConfig>][] = [
  ['tied', { weight_tying: true, include_bias: false }],
  ['untied with ff_out bias', { weight_tying: false, include_bias: true }],
  ['tied, scale_logits', { weight_tying: true, include_bias: false, scale_logits: true }],
  ['untied, scale_logits, embedding_size = vocab_size', { weight_tying: false, include_bias: false, scale_logits: true, embedding_size: 40 }],
];

for (const [name, over] of HEADS) {
  for (const amp of [false, true]) {
    test(`fused = unfused on ${DEVICE} (${name}; ${amp ? 'bf16 autocast' : 'float32'}; z-loss on and off; ignored labels)`, { skip: missing ?? false }, () => {
      assert.ok(microBatchLoss, 'this checkout has no fused head (src/train/loss.ts exports no microBatchLoss)');
      manualSeed(11);
      const model = new OLMo(tinyConfig(over), { device: DEVICE });
      const before = liveTensors();
      try {
        tidy(() => {
          const ids = randint(0, 40, [3, 13], { dtype: 'int64', device: DEVICE });
          const labels = ids.clone();
          tidy(() => labels.select(0, 1).slice(0, 4, 9).fill_(-100));
          for (const zLoss of [false, true]) {
            const { f, u } = compare(model, ids, labels, amp, zLoss);
            // float32: sums of up to K = 64 terms in either order, 8·sqrt(K)·u; bf16: logits and their
            // gradient are rounded to bf16 on both paths, in different places: a few u (as the CPU test).
            const uu = amp ? U_BF16 : U_F32;
            const lossTol = (amp ? 4 * uu : 8 * Math.sqrt(64) * uu) * Math.max(1, Math.abs(u.loss));
            const gradTol = amp ? 8 * uu : 8 * Math.sqrt(64) * uu;
            assert.ok(Math.abs(f.loss - u.loss) <= lossTol, `z-loss ${zLoss}: loss ${f.loss} vs ${u.loss}`);
            assert.ok(Math.abs(f.ce - u.ce) <= lossTol, `z-loss ${zLoss}: ce ${f.ce} vs ${u.ce}`);
            assert.equal(f.z === null, !zLoss);
            for (let i = 0; i < f.grads.length; i++) {
              assert.equal(f.grads[i]!.g.device, DEVICE, `gradient of ${f.grads[i]!.name} on ${DEVICE}`);
              const e = relErr(f.grads[i]!.g, u.grads[i]!.g);
              assert.ok(e <= gradTol, `z-loss ${zLoss}: d ${f.grads[i]!.name} differs by ${e.toExponential(2)} (relative norm, tolerance ${gradTol.toExponential(2)})`);
            }
            dispose([...f.grads.map((x) => x.g), ...u.grads.map((x) => x.g)]);
          }
        });
        zeroGrad(model.parameters());
        assert.equal(liveTensors(), before, 'no tensor handle outlives the steps');
      } finally {
        model.dispose();
      }
    });
  }
}

test(`fused = unfused on ${DEVICE} at OLMo's vocabulary (50304 rows, 4096 tokens: several chunks; bf16 autocast)`, { skip: missing ?? false }, () => {
  assert.ok(microBatchLoss, 'this checkout has no fused head (src/train/loss.ts exports no microBatchLoss)');
  manualSeed(12);
  const model = new OLMo(tinyConfig({ d_model: 256, n_heads: 4, vocab_size: 50280, embedding_size: 50304, max_sequence_length: 1024 }), { device: DEVICE });
  try {
    tidy(() => {
      // (the CPU rehearsal keeps it to one chunk: several take minutes on a CPU)
      const ids = randint(0, 50280, DEVICE === 'cuda' ? [4, 1024] : [1, 128], { dtype: 'int64', device: DEVICE });
      const { f, u } = compare(model, ids, ids, true, true);
      console.log(`vocab 50304: loss fused ${f.loss} unfused ${u.loss}`);
      // bf16 logits: the loss (~ln 50304 ≈ 10.8) moves by a few u·|loss|; gradients by a few u.
      assert.ok(Math.abs(f.loss - u.loss) <= 4 * U_BF16 * Math.abs(u.loss), `loss ${f.loss} vs ${u.loss}`);
      for (let i = 0; i < f.grads.length; i++) {
        const e = relErr(f.grads[i]!.g, u.grads[i]!.g);
        assert.ok(e <= 8 * U_BF16, `d ${f.grads[i]!.name} differs by ${e.toExponential(2)} (relative norm)`);
      }
      dispose([...f.grads.map((x) => x.g), ...u.grads.map((x) => x.g)]);
    });
  } finally {
    zeroGrad(model.parameters());
    model.dispose();
  }
});
