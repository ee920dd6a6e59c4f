// Initialisation: for each init_fn the empirical std of every parameter matches OLMo's rule for its
// kind (olmo/initialization.py), truncated inits respect their cutoff, biases start at 0, norms at 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, tidy, zeros } from '../../../src/index';
import { OLMo } from '../../../src/model/olmo';
import { truncNormal_ } from '../../../src/model/init';
import { InitFnType, ModelConfig, modelConfig } from '../../../src/config/model';

const D = 128;
const L = 4;
const FF_IN = 256; // swiglu: mlp_ratio 4 * d_model / 2

/** std of N(0, 1) truncated to [-c, c]. */
function truncatedStd(c: number): number {
  const phi = Math.exp((-c * c) / 2) / Math.sqrt(2 * Math.PI);
  const mass = erf(c / Math.SQRT2);
  return Math.sqrt(1 - (2 * c * phi) / mass);
}
function erf(x: number): number {
  // Series expansion; plenty accurate for |x| < 3.
  let sum = 0;
  let term = x;
  for (let n = 0; n < 60; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** OLMo's std (before truncation) and cutoff in stds (null = none) for a parameter. */
function expected(fn: InitFnType, name: string, c: ModelConfig): { std: number; cut: number | null } {
  const layer = Number(/blocks\.(\d+)\./.exec(name)?.[1] ?? -1);
  const isWte = name === 'transformer.wte.weight';
  const isFinal = name === 'transformer.ff_out.weight';
  const isAttnOut = name.endsWith('attn_out.weight');
  const isFfOut = layer >= 0 && name.endsWith('.ff_out.weight');
  const dIn = isFfOut ? FF_IN : D;
  switch (fn) {
    case 'normal': {
      let std = c.init_std * (isWte && c.scale_logits ? 0.5 * Math.sqrt(D) : 1);
      if (isFfOut) std /= Math.sqrt(2 * L); // the residual ff_out
      return { std, cut: c.init_cutoff_factor };
    }
    case 'mitchell': {
      let std = 1 / Math.sqrt(dIn);
      if (isAttnOut || isFfOut) std /= Math.sqrt(2 * (layer + 1));
      return { std, cut: 3 };
    }
    case 'kaiming_normal':
      return { std: Math.sqrt(2 / (isFfOut ? FF_IN : D)), cut: null };
    case 'fan_in':
      return { std: 1 / Math.sqrt(dIn), cut: null };
    case 'full_megatron': {
      const std = isFinal ? D ** -0.5 : isAttnOut || isFfOut ? c.init_std / Math.sqrt(2 * L) : c.init_std;
      return { std, cut: c.init_cutoff_factor ?? 3 };
    }
  }
}

const CASES: [string, Partial<ModelConfig>][] = [
  ['normal', { init_fn: 'normal' }],
  ['normal, cutoff 2, scale_logits', { init_fn: 'normal', init_cutoff_factor: 2, scale_logits: true }],
  ['mitchell', { init_fn: 'mitchell' }],
  ['kaiming_normal', { init_fn: 'kaiming_normal' }],
  ['fan_in', { init_fn: 'fan_in' }],
  ['full_megatron', { init_fn: 'full_megatron', init_std: 0.03 }],
  ['full_megatron, cutoff 2', { init_fn: 'full_megatron', init_cutoff_factor: 2 }],
];

for (const [label, over] of CASES) {
  test(`init statistics per parameter kind: ${label}`, () => {
    manualSeed(42);
    const c = modelConfig({ d_model: D, n_heads: 4, n_layers: L, mlp_ratio: 4, vocab_size: 512, embedding_size: 512, max_sequence_length: 256, weight_tying: false, ...over });
    const model = new OLMo(c);
    try {
      for (const p of model.namedParameters()) {
        const [mean, std, maxAbs] = tidy(() => [p.tensor.mean().item(), p.tensor.std().item(), p.tensor.abs().max().item()]);
        if (p.kind === 'linear_bias' || p.kind === 'norm_bias') {
          assert.equal(maxAbs, 0, `${p.name} should start at 0`);
          continue;
        }
        if (p.kind === 'norm_weight') {
          assert.equal(mean, 1, `${p.name} should start at 1`);
          assert.equal(std, 0, `${p.name} should be all ones`);
          continue;
        }
        const e = expected(c.init_fn, p.name, c);
        const target = e.std * (e.cut === null ? 1 : truncatedStd(e.cut));
        assert.ok(Math.abs(std / target - 1) < 0.03, `${p.name}: std ${std}, expected ${target}`);
        assert.ok(Math.abs(mean) < 0.05 * e.std, `${p.name}: mean ${mean}`);
        if (e.cut !== null) {
          // (The normal init divides the residual ff_out after truncating, so its bound scales too.)
          const bound = e.cut * e.std;
          assert.ok(maxAbs <= bound * (1 + 1e-6), `${p.name}: max |w| ${maxAbs} beyond the cutoff ${bound}`);
          assert.ok(maxAbs >= 0.9 * bound, `${p.name}: max |w| ${maxAbs} far inside the cutoff ${bound} (truncation too tight?)`);
        } else {
          assert.ok(maxAbs > 3.5 * e.std, `${p.name}: untruncated init should have tails, max |w| ${maxAbs}`);
        }
      }
    } finally {
      model.dispose();
    }
  });
}

test('truncNormal_ samples N(mean, std) restricted to [a, b]', () => {
  manualSeed(0);
  tidy(() => {
    const t = truncNormal_(zeros([200000]), 1, 2, -1, 5); // one-sided-ish window around the mean
    const v = t.toFloat64Array();
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of v) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    assert.ok(lo >= -1 && lo < -0.99, `min ${lo}`);
    assert.ok(hi <= 5 && hi > 4.99, `max ${hi}`);
    // N(1, 2) truncated to [-1, 5] = standard normal on [-1, 2] scaled: mean 1 + 2(φ(-1) - φ(2))/(Φ(2) - Φ(-1)).
    const phi = (z: number) => Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI);
    const Phi = (z: number) => (1 + erf(z / Math.SQRT2)) / 2;
    const expectedMean = 1 + (2 * (phi(-1) - phi(2))) / (Phi(2) - Phi(-1));
    assert.ok(Math.abs(t.mean().item() - expectedMean) < 0.01, `mean ${t.mean().item()} vs ${expectedMean}`);
  });
});
