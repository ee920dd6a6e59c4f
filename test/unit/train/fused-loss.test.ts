// The fused LM head + loss in training (src/train/loss.ts: fusedNextTokenLoss, microBatchLoss):
// - on every PyTorch parity fixture (tied and untied heads, ff_out bias, scale_logits, embedding_size
//   > vocab_size with unsliced logits, label masks) its loss and gradients equal PyTorch's;
// - on a tiny model, for each head option x z-loss x fp32/bf16 autocast, it equals the unfused path
//   (the model's logits, then nextTokenLoss) within the dtype's rounding;
// - the trainer uses it by default, `fused_loss: false` switches it off, and both train alike.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { OLMo, Tensor, autocast, dispose, liveTensors, manualSeed, randint, tidy, zeroGrad } from '../../../src';
import type { ModelConfig } from '../../../src/config/model';
import { readSafetensors } from '../../../src/io/safetensors';
import { fusedNextTokenLoss, microBatchLoss, nextTokenLoss, usesFusedLoss } from '../../../src/train/loss';
import { tinyConfig } from '../model/helpers';

const DIR = path.resolve(__dirname, '../../fixtures/model');
const U = { float32: 2 ** -24, bfloat16: 2 ** -8 }; // unit roundoff

function maxAbs(a: Tensor, b: Tensor): number {
  return tidy(() => a.to('float64').sub(b.to('float64')).abs().max().item());
}
/** ||a - b|| / ||b|| */
function relErr(a: Tensor, b: Tensor): number {
  return tidy(() => {
    const d = a.to('float64').sub(b.to('float64')).square().sum().sqrt().item();
    const n = b.to('float64').square().sum().sqrt().item();
    return d / Math.max(n, 1e-300);
  });
}

for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith('.safetensors')).sort()) {
  test(`fused head + loss equals PyTorch on the parity fixture ${file.replace('.safetensors', '')}`, () => {
    const { tensors, metadata } = readSafetensors(path.join(DIR, file));
    const model = new OLMo(JSON.parse(metadata.config!), { initParams: false });
    try {
      const params = new Map<string, Tensor>();
      for (const [k, t] of tensors) if (k.startsWith('param.')) params.set(k.slice(6), t);
      model.loadStateDict(params);
      model.eval();
      const ids = tensors.get('input_ids')!;
      const mask = tensors.get('attention_mask') ?? null;
      const bias = tensors.get('attention_bias') ?? null;
      const r = tidy(() => {
        // The fixture's loss is OLMo's mean next-token CE with the attention mask as label mask.
        const labels = mask ? ids.maskedFill(mask.eq(0), -100) : ids;
        const m = fusedNextTokenLoss(model, ids, labels, { attentionMask: mask, attentionBias: bias, zLoss: false, divisor: 1, chunkRows: 5 });
        m.loss.backward();
        let dGrad = 0, maxGrad = 0;
        for (const p of model.namedParameters()) {
          const ref = tensors.get(`grad.${p.name}`)!;
          assert.ok(p.tensor.grad, `no gradient for ${p.name}`);
          dGrad = Math.max(dGrad, maxAbs(p.tensor.grad, ref));
          maxGrad = Math.max(maxGrad, ref.abs().max().item());
        }
        return { dLoss: Math.abs(m.loss.item() - tensors.get('loss')!.item()), dGrad, maxGrad };
      });
      // The parity test's float32 bounds for the unfused model (test/unit/model/parity.test.ts).
      assert.ok(r.dLoss <= 1e-5, `loss differs by ${r.dLoss}`);
      assert.ok(r.dGrad <= 1e-5, `gradients differ by ${r.dGrad} (largest gradient ${r.maxGrad})`);
    } finally {
      model.dispose();
      dispose([...tensors.values()]);
    }
  });
}

const HEADS: [string, Partial<ModelConfig>][] = [
  ['tied', { weight_tying: true, include_bias: false }],
  ['untied with ff_out bias', { weight_tying: false, include_bias: true }],
  ['tied, scale_logits', { weight_tying: true, include_bias: false, scale_logits: true }],
  ['untied, scale_logits, embedding_size = vocab_size', { weight_tying: false, include_bias: false, scale_logits: true, embedding_size: 40 }],
];

for (const [name, over] of HEADS) {
  for (const amp of [false, true]) {
    test(`fused = unfused (${name}; ${amp ? 'bf16 autocast' : 'float32'}; z-loss on and off; ignored labels)`, () => {
      manualSeed(11);
      const model = new OLMo(tinyConfig(over));
      const before = liveTensors();
      try {
        tidy(() => {
          const ids = randint(0, 40, [3, 13], { dtype: 'int64' });
          const labels = ids.clone();
          tidy(() => labels.select(0, 1).slice(0, 4, 9).fill_(-100));
          for (const zLoss of [false, true]) {
            const run = (fused: boolean) => tidy(() => {
              zeroGrad(model.parameters());
              const m = microBatchLoss(model, ids, labels, { attentionMask: null, amp, fused, zLoss, divisor: 2 });
              m.loss.backward();
              return { loss: m.loss.item(), ce: m.ce.item(), z: m.z?.item() ?? null, grads: model.namedParameters().map((p) => ({ name: p.name, g: p.tensor.grad!.clone() })) };
            });
            const f = run(true), u = run(false);
            const uu = amp ? U.bfloat16 : U.float32;
            // float32: sums of up to K = 64 terms (logits, tokens, MLP width) in either order, sqrt(K)·u x8;
            // bf16: logits and their gradient
            // are rounded to bf16 on both paths, in different places (the unfused path also rounds the
            // scaled logits): the loss moves by a few u·|loss|, every gradient by a few u (relative norm).
            const lossTol = (amp ? 4 * uu : 8 * Math.sqrt(64) * uu) * Math.max(1, Math.abs(u.loss));
            const gradTol = amp ? 8 * uu : 8 * Math.sqrt(64) * uu;
            assert.ok(Math.abs(f.loss - u.loss) <= lossTol, `z-loss ${zLoss}: loss ${f.loss} vs ${u.loss}`);
            assert.ok(Math.abs(f.ce - u.ce) <= lossTol, `z-loss ${zLoss}: ce ${f.ce} vs ${u.ce}`);
            assert.equal(f.z === null, !zLoss);
            if (zLoss) assert.ok(Math.abs(f.z! - u.z!) <= (amp ? 8 * uu : 8 * Math.sqrt(64) * uu) * Math.abs(u.z!), `z ${f.z} vs ${u.z}`);
            for (let i = 0; i < f.grads.length; i++) {
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

test('forward with headLoss: the loss instead of the logits; targets checked; not with lastLogitsOnly', () => {
  manualSeed(13);
  const model = new OLMo(tinyConfig({ weight_tying: false, include_bias: true, scale_logits: true }));
  try {
    tidy(() => {
      const ids = randint(0, 40, [2, 7], { dtype: 'int64' });
      const targets = randint(0, 40, [2, 7], { dtype: 'int64' });
      const out = model.forward(ids, { headLoss: { targets, zWeight: 1e-4 } });
      assert.equal('logits' in out, false);
      // The same numbers as the head applied by hand to forward()'s logits (every embedding row).
      const logits = model.forward(ids).logits.reshape(-1, 48); // (14, 48)
      const ce = logits.logSoftmax(-1).gather(1, targets.reshape(-1, 1)).mean().neg().item();
      const z = logits.logsumexp(-1).pow(2).mean().mul(1e-4).item();
      assert.ok(Math.abs(out.ce.item() - ce) <= 1e-5 * Math.abs(ce), `ce ${out.ce.item()} vs ${ce}`);
      assert.ok(Math.abs(out.z.item() - z) <= 1e-5 * Math.abs(z), `z ${out.z.item()} vs ${z}`);
      assert.throws(() => model.forward(ids, { headLoss: { targets: targets.reshape(-1) } }), /headLoss.targets must be \(batch, seq\) = \(2, 7\)/);
      assert.throws(() => model.forward(ids, { lastLogitsOnly: true, headLoss: { targets } }), /headLoss and lastLogitsOnly cannot be combined/);
    });
  } finally {
    model.dispose();
  }
});

test('usesFusedLoss: on unless fused_loss is false', () => {
  assert.equal(usesFusedLoss({ fused_loss: null } as never), true);
  assert.equal(usesFusedLoss({ fused_loss: true } as never), true);
  assert.equal(usesFusedLoss({ fused_loss: false } as never), false);
});

test('fusedNextTokenLoss: the last position has no target, the z-loss covers it (as nextTokenLoss)', () => {
  manualSeed(12);
  const model = new OLMo(tinyConfig({ weight_tying: true }));
  try {
    tidy(() => {
      const ids = randint(0, 40, [2, 6], { dtype: 'int64' });
      const logits = model.forward(ids).logits;
      const f = fusedNextTokenLoss(model, ids, ids, { zLoss: true, divisor: 1 });
      const u = nextTokenLoss(logits, ids, { zLoss: true, divisor: 1 });
      assert.ok(Math.abs(f.ce.item() - u.ce.item()) < 1e-5);
      assert.ok(Math.abs(f.z!.item() - u.z!.item()) < 1e-8);
      // Under autocast too.
      const fa = autocast(() => fusedNextTokenLoss(model, ids, ids, { zLoss: false, divisor: 1 }));
      const ua = nextTokenLoss(autocast(() => model.forward(ids).logits), ids, { zLoss: false, divisor: 1 });
      assert.ok(Math.abs(fa.ce.item() - ua.ce.item()) < 4 * U.bfloat16 * ua.ce.item());
    });
  } finally {
    model.dispose();
  }
});
