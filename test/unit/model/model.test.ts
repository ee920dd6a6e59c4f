// The OLMo module: OLMo's parameter names and kinds per block type, parameter count and FLOPs,
// padding and packed-document masks, dropout in train vs eval mode, and no tensor leaks per step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, tensor, tidy, liveTensors, zeroGrad, cat, autocast } from '../../../src/index';
import { OLMo, documentAttentionBias } from '../../../src/model/olmo';
import { maxAbsDiff, tinyConfig } from './helpers';

test('parameter names and kinds follow OLMo\'s state dict for each block type', () => {
  const names = (over: object) => {
    const m = new OLMo(tinyConfig(over), { initParams: false });
    const out = m.namedParameters().map((p) => `${p.name}:${p.kind}`);
    m.dispose();
    return out;
  };
  const seq = names({});
  assert.deepEqual(seq.slice(0, 3), ['transformer.wte.weight:embedding', 'transformer.ln_f.weight:norm_weight', 'transformer.ln_f.bias:norm_bias']);
  for (const n of ['attn_out.weight:linear_weight', 'attn_out.bias:linear_bias', 'ff_out.weight:linear_weight', 'attn_norm.weight:norm_weight', 'ff_norm.bias:norm_bias', 'att_proj.weight:linear_weight', 'ff_proj.bias:linear_bias']) {
    assert.ok(seq.includes(`transformer.blocks.1.${n}`), n);
  }
  assert.ok(seq.includes('transformer.wpe.weight:embedding'));
  assert.ok(!seq.some((n) => n.startsWith('transformer.ff_out')), 'tied: no output projection');
  const llama = names({ block_type: 'llama', rope: true, weight_tying: false, include_bias: false });
  for (const n of ['q_proj', 'k_proj', 'v_proj', 'ff_proj']) assert.ok(llama.includes(`transformer.blocks.0.${n}.weight:linear_weight`), n);
  assert.ok(llama.includes('transformer.ff_out.weight:linear_weight'));
  assert.ok(!llama.some((n) => n.includes('.bias:linear_bias')));
  assert.ok(!llama.some((n) => n.includes('wpe')));
  const par = names({ block_type: 'parallel', alibi: true, attention_layer_norm: true, block_group_size: 2 });
  assert.ok(par.includes('transformer.block_groups.0.1.fused_attn_ff_proj.weight:linear_weight'));
  assert.ok(par.includes('transformer.block_groups.0.0.norm.weight:norm_weight'));
  assert.ok(par.includes('transformer.block_groups.0.0.q_norm.weight:norm_weight'));
  const nonParam = names({ layer_norm_with_affine: false, attention_layer_norm: true, attention_layer_norm_with_affine: false, rope: true });
  assert.ok(!nonParam.some((n) => n.includes('norm')), 'non-parametric norms have no parameters');
  const noLnBias = names({ bias_for_layer_norm: false });
  assert.ok(noLnBias.includes('transformer.blocks.0.att_proj.bias:linear_bias') && !noLnBias.some((n) => n.includes('norm.bias')));
});

test('numParams and FLOPs per token follow the closed forms', () => {
  const c = tinyConfig({ weight_tying: false });
  const m = new OLMo(c, { initParams: false });
  try {
    const d = 32, h = 64, V = 48, L = 2, S = 32;
    const block = d * 3 * d + 3 * d + d * d + d + d * h + h + (h / 2) * d + d + 4 * d; // att_proj, attn_out, ff_proj, ff_out, 2 norms
    const total = V * d + S * d + 2 * d + L * block + d * V + V;
    assert.equal(m.numParams(), total);
    assert.equal(m.numParams(false), total - V * d - S * d);
    assert.equal(m.flopsPerToken(16), 6 * (total - V * d - S * d) + 12 * L * d * 16);
    assert.equal(m.numFwdFlops(), 2 * total * S + L * 4 * d * S * S);
  } finally {
    m.dispose();
  }
});

test('a left-padded row gives the same logits as the unpadded sequence (attention mask)', () => {
  manualSeed(3);
  const m = new OLMo(tinyConfig({ rope: true, init_std: 0.2 })).eval();
  try {
    const d = tidy(() => {
      const alone = m.forward(tensor([[5, 9, 2, 14]], { dtype: 'int64' })).logits; // (1, 4, V)
      const ids = tensor([[0, 0, 5, 9, 2, 14], [1, 2, 3, 4, 5, 6]], { dtype: 'int64' });
      const mask = tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], { dtype: 'int64' });
      const padded = m.forward(ids, { attentionMask: mask }).logits;
      return maxAbsDiff(padded.slice(0, 0, 1).slice(1, 2, 6), alone);
    });
    assert.ok(d <= 1e-5, `padded logits differ by ${d}`);
  } finally {
    m.dispose();
  }
});

test('packed documents with documentAttentionBias match each document run alone', () => {
  manualSeed(4);
  const m = new OLMo(tinyConfig({ rope: true, init_std: 0.2 })).eval();
  try {
    const d = tidy(() => {
      const ids = tensor([[4, 8, 39, 6, 7, 3, 39, 12]], { dtype: 'int64' });
      const bias = documentAttentionBias(ids, 39);
      assert.deepEqual(bias.shape, [1, 1, 8, 8]);
      const packed = m.forward(ids, { attentionBias: bias }).logits;
      const docs = [[4, 8, 39], [6, 7, 3, 39], [12]].map((doc) => m.forward(tensor([doc], { dtype: 'int64' })).logits);
      return maxAbsDiff(packed, cat(docs, 1));
    });
    assert.ok(d <= 1e-5, `packed logits differ by ${d}`);
  } finally {
    m.dispose();
  }
});

test('dropout is active in train mode only; eval is deterministic', () => {
  manualSeed(5);
  const m = new OLMo(tinyConfig({ residual_dropout: 0.5, embedding_dropout: 0.5, attention_dropout: 0.5 }));
  try {
    const ids = tensor([[1, 2, 3, 4]], { dtype: 'int64' });
    const [t1, t2, e1, e2] = tidy(() => {
      const a = m.train().forward(ids).logits;
      const b = m.forward(ids).logits;
      const c = m.eval().forward(ids).logits;
      const d = m.forward(ids).logits;
      return [a, b, c, d].map((x) => x.clone());
    });
    assert.ok(maxAbsDiff(t1!, t2!) > 1e-3, 'two training forwards should differ');
    assert.equal(maxAbsDiff(e1!, e2!), 0);
    assert.ok(m.blocks.every((b) => !b.training && !b.dropout.training));
  } finally {
    m.dispose();
  }
});

test('a training step (forward, loss, backward) leaks no tensors', () => {
  manualSeed(6);
  const m = new OLMo(tinyConfig({ alibi: true, weight_tying: false }));
  try {
    const ids = tensor([[1, 2, 3, 4, 5, 6]], { dtype: 'int64' });
    const step = () => tidy(() => {
      const loss = m.loss(m.forward(ids).logits, ids);
      loss.backward();
      return loss.item();
    });
    step();
    zeroGrad(m.parameters());
    const before = liveTensors();
    const l1 = step();
    zeroGrad(m.parameters());
    const l2 = step();
    assert.equal(liveTensors(), before);
    assert.equal(l1, l2);
    assert.ok(Math.abs(l1 - Math.log(48)) < 0.5, `initial loss ${l1} should be near ln(V)`);
  } finally {
    m.dispose();
  }
});

test('forward rejects bad inputs', () => {
  const m = new OLMo(tinyConfig());
  try {
    assert.throws(() => m.forward(tensor([1, 2, 3], { dtype: 'int64' })), /\(batch, seq\)/);
    assert.throws(() => m.forward(tensor([new Array(40).fill(1)], { dtype: 'int64' })), /exceeds max_sequence_length 32/);
    assert.throws(() => m.forward(null), /inputIds or inputEmbeddings/);
  } finally {
    m.dispose();
  }
});

test('under bfloat16 autocast every block type runs forward and backward close to float32', () => {
  for (const over of [{ rope: true, layer_norm_type: 'low_precision' as const }, { alibi: true, block_type: 'llama' as const }, { block_type: 'parallel' as const, n_kv_heads: 2, rope: true, layer_norm_type: 'rms' as const, attention_layer_norm: true }]) {
    manualSeed(7);
    const m = new OLMo(tinyConfig(over)).eval();
    try {
      const ids = tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], { dtype: 'int64' });
      const mask = tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]], { dtype: 'int64' });
      const [dtype, d, gradOk] = tidy(() => {
        const ref = m.forward(ids, { attentionMask: mask }).logits;
        const low = autocast(() => m.forward(ids, { attentionMask: mask }).logits, { dtype: 'bfloat16' });
        m.loss(low.float(), ids, { labelMask: mask }).backward();
        const ok = m.parameters().every((p) => p.grad !== null && tidy(() => p.grad!.isfinite().all().item()));
        return [low.dtype, maxAbsDiff(low, ref), ok] as const;
      });
      assert.equal(dtype, 'bfloat16', JSON.stringify(over));
      assert.ok(d < 0.05, `${JSON.stringify(over)}: bf16 logits differ by ${d}`);
      assert.ok(gradOk, 'finite gradients for every parameter');
    } finally {
      m.dispose();
    }
  }
});
