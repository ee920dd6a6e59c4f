// Checkpoints and interop: safetensors save/load under OLMo's names (any block grouping), the HF
// OlmoForCausalLM round trip (identical tensors, identical logits) and the errors for what HF cannot hold.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, tensor, tidy, randn, Tensor, dispose } from '../../../src/index';
import { OLMo } from '../../../src/model/olmo';
import { toHfConfig, fromHfConfig, toHfStateDict, loadHfOlmo } from '../../../src/model/hf';
import { loadCheckpoint, normalizeStateDict } from '../../../src/model/checkpoint';
import { readSafetensors, serializeSafetensors, loadSafetensors, SafetensorsError } from '../../../src/io/safetensors';
import { ConfigError } from '../../../src/config/errors';
import { maxAbsDiff, tinyConfig } from './helpers';

const made: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-model-'));
  made.push(d);
  return d;
};
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const IDS = () => tensor([[3, 7, 1, 9, 4, 12], [2, 5, 6, 11, 30, 1]], { dtype: 'int64' });

function sameTensors(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.deepEqual(u.shape, t.shape, k);
    assert.equal(u.dtype, t.dtype, k);
    assert.ok(tidy(() => t.eq(u).all().item()), `${k} differs`);
  }
}

test('save + load restores identical weights, config and logits', () => {
  manualSeed(0);
  const dir = tmp();
  const a = new OLMo(tinyConfig({ rope: true, block_type: 'llama', n_kv_heads: 2, init_std: 0.2 }));
  a.save(dir);
  const b = OLMo.fromCheckpoint(dir);
  try {
    assert.ok(fs.existsSync(path.join(dir, 'config.yaml')));
    assert.deepEqual(b.config, a.config);
    sameTensors(a.stateDict(), b.stateDict());
    const { tensors } = readSafetensors(path.join(dir, 'model.safetensors'));
    assert.ok(tensors.has('transformer.blocks.1.q_proj.weight') && tensors.has('transformer.wte.weight'));
    dispose([...tensors.values()]);
    assert.equal(tidy(() => maxAbsDiff(a.eval().forward(IDS()).logits, b.eval().forward(IDS()).logits)), 0);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('a checkpoint saved with one block_group_size loads into another (OLMo regrouping)', () => {
  manualSeed(1);
  const dir = tmp();
  const grouped = new OLMo(tinyConfig({ n_layers: 4, block_group_size: 2 }));
  grouped.save(dir);
  const flat = new OLMo(tinyConfig({ n_layers: 4, block_group_size: 1 }), { initParams: false });
  const by4 = new OLMo(tinyConfig({ n_layers: 4, block_group_size: 4 }), { initParams: false });
  try {
    flat.loadStateDict(normalizeStateDict(grouped.stateDict(), 1));
    by4.loadStateDict(normalizeStateDict(flat.stateDict(), 4));
    assert.ok(tidy(() => grouped.stateDict().get('transformer.block_groups.1.1.att_proj.weight')!.eq(flat.stateDict().get('transformer.blocks.3.att_proj.weight')!).all().item()));
    assert.ok(tidy(() => by4.stateDict().get('transformer.block_groups.0.3.ff_out.weight')!.eq(flat.stateDict().get('transformer.blocks.3.ff_out.weight')!).all().item()));
    // hf_olmo's "model." prefix and FSDP's wrapper names are accepted too
    const prefixed = new Map([...flat.stateDict()].map(([k, t]) => [`model.${k.replace('blocks.', '_fsdp_wrapped_module.blocks.')}`, t]));
    by4.loadStateDict(normalizeStateDict(prefixed, 4));
  } finally {
    grouped.dispose();
    flat.dispose();
    by4.dispose();
  }
});

for (const [label, over] of [
  ['tied, MHA (OLMo-1B-like)', {}],
  ['untied, GQA, clip_qkv, rope_theta', { weight_tying: false, n_kv_heads: 2, clip_qkv: 0.4, rope_theta: 50000 }],
  ['llama block, MQA', { block_type: 'llama', multi_query_attention: true }],
] as const) {
  test(`HF OlmoForCausalLM round trip is exact and keeps the logits: ${label}`, () => {
    manualSeed(2);
    const cfg = tinyConfig({ rope: true, include_bias: false, layer_norm_with_affine: false, init_std: 0.2, ...over });
    const model = new OLMo(cfg);
    const dir = tmp();
    model.saveHf(dir);
    const hfCfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(hfCfg.model_type, 'olmo');
    assert.deepEqual(hfCfg.architectures, ['OlmoForCausalLM']);
    assert.equal(hfCfg.intermediate_size, 32);
    assert.equal(hfCfg.vocab_size, 48);
    assert.equal(hfCfg.tie_word_embeddings, cfg.weight_tying);
    const { tensors } = readSafetensors(path.join(dir, 'model.safetensors'));
    try {
      // HF names and the split of the fused projections
      assert.equal(tensors.has('lm_head.weight'), !cfg.weight_tying);
      const hs = 8;
      const kv = cfg.multi_query_attention ? 1 : cfg.n_kv_heads ?? 4;
      assert.deepEqual(tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape, [hs * kv, 32]);
      if (cfg.block_type === 'sequential') {
        const ffProj = model.stateDict().get('transformer.blocks.1.ff_proj.weight')!;
        assert.ok(tidy(() => ffProj.slice(0, 0, 32).eq(tensors.get('model.layers.1.mlp.up_proj.weight')!).all().item()), 'up_proj is the first half');
        assert.ok(tidy(() => ffProj.slice(0, 32, 64).eq(tensors.get('model.layers.1.mlp.gate_proj.weight')!).all().item()), 'gate_proj is the second half');
        assert.ok(tidy(() => model.stateDict().get('transformer.blocks.0.att_proj.weight')!.slice(0, 32, 32 + hs * kv).eq(tensors.get('model.layers.0.self_attn.k_proj.weight')!).all().item()));
      }
      const back = loadHfOlmo(dir);
      try {
        assert.equal(back.config.block_type, 'sequential');
        const [d, mag] = tidy(() => {
          const a = model.eval().forward(IDS()).logits;
          return [maxAbsDiff(a, back.eval().forward(IDS()).logits), a.abs().max().item() as number];
        });
        if (cfg.block_type === 'sequential') {
          // the same tensors run through the same ops: bit-identical on any CPU
          assert.equal(d, 0, `logits differ by ${d} after the HF round trip`);
        } else {
          // A llama block comes back as a sequential one: q/k/v become one fused projection, so the
          // same dot products are summed in another order (BLAS blocking depends on the matrix
          // shape and the CPU). Bound: fp32 unit roundoff u times the longest dot product K per
          // matmul stage (Higham's gamma_K ~ K*u), over the 2 stages per block plus the head,
          // relative to the logits' magnitude. A wrong split or head layout differs by O(mag).
          const u = 2 ** -24;
          const K = Math.max(cfg.d_model, cfg.mlp_hidden_size ?? cfg.d_model * cfg.mlp_ratio);
          const tol = u * K * (2 * cfg.n_layers + 1) * mag;
          assert.ok(d <= tol, `logits differ by ${d} after the HF round trip (fp32 reassociation bound ${tol.toExponential(2)}, |logits| <= ${mag.toFixed(2)})`);
        }
        if (cfg.block_type === 'sequential') sameTensors(model.stateDict(), back.stateDict());
        // and HF -> OLMo -> HF gives the same HF tensors back
        const dir2 = tmp();
        back.saveHf(dir2);
        const again = readSafetensors(path.join(dir2, 'model.safetensors')).tensors;
        sameTensors(tensors, again);
        dispose([...again.values()]);
        // loadCheckpoint recognises an HF folder
        const viaLoad = loadCheckpoint(dir);
        assert.equal(viaLoad.config.d_model, 32);
        viaLoad.dispose();
      } finally {
        back.dispose();
      }
    } finally {
      dispose([...tensors.values()]);
      model.dispose();
    }
  });
}

test('HF export rejects what OlmoForCausalLM cannot express, naming the key', () => {
  const base = { rope: true, include_bias: false, layer_norm_with_affine: false } as const;
  const bad: [Record<string, unknown>, string][] = [
    [{ ...base, block_type: 'parallel' }, 'model.block_type'],
    [{ ...base, activation_type: 'gelu' }, 'model.activation_type'],
    [{ ...base, rope: false }, 'model.rope'],
    [{ ...base, include_bias: true }, 'model.include_bias'],
    [{ ...base, layer_norm_with_affine: true }, 'model.layer_norm_with_affine'],
    [{ ...base, layer_norm_type: 'rms' }, 'model.layer_norm_type'],
    [{ ...base, attention_layer_norm: true }, 'model.attention_layer_norm'],
    [{ ...base, scale_logits: true }, 'model.scale_logits'],
  ];
  for (const [over, key] of bad) {
    assert.throws(() => toHfConfig(tinyConfig(over)), (e: unknown) => e instanceof ConfigError && e.key === key, key);
  }
  assert.throws(() => toHfStateDict(tinyConfig({ ...base, scale_logits: true }), new Map()), ConfigError);
  assert.throws(() => fromHfConfig({ model_type: 'llama' }), /expected "olmo"/);
  assert.throws(() => fromHfConfig({ model_type: 'olmo', hidden_size: 32 }), /num_attention_heads/);
  assert.throws(() => fromHfConfig({ model_type: 'olmo', attention_bias: true }), /attention_bias/);
});

test('safetensors: misuse table of bad files, each with a specific error', () => {
  const good = tidy(() => serializeSafetensors({ w: randn([2, 3]) }));
  const withHeader = (h: string) => {
    const j = Buffer.from(h);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([len, j, Buffer.alloc(24)]);
  };
  const cases: [Uint8Array, RegExp][] = [
    [Buffer.alloc(4), /too short/],
    [good.subarray(0, 20), /does not fit/],
    [withHeader('{not json'), /not valid JSON/],
    [withHeader('[1,2]'), /not a JSON object/],
    [withHeader('{"w":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}}'), /unsupported dtype "Q8"/],
    [withHeader('{"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}}'), /bad shape/],
    [withHeader('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}'), /bad data_offsets/],
    [withHeader('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}'), /outside the 24-byte data section/],
    [withHeader('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'), /has 8 bytes, expected 12/],
  ];
  for (const [buf, re] of cases) assert.throws(() => loadSafetensors(buf), (e: unknown) => e instanceof SafetensorsError && re.test((e as Error).message), String(re));
  assert.throws(() => loadSafetensors(good, { names: ['nope'] }), /no tensor named 'nope'/);
  const { tensors, metadata } = loadSafetensors(good);
  assert.deepEqual(tensors.get('w')!.shape, [2, 3]);
  assert.deepEqual(metadata, {});
  dispose([...tensors.values()]);
});

test('loading checks names and shapes', () => {
  const a = new OLMo(tinyConfig());
  const b = new OLMo(tinyConfig({ d_model: 64 }), { initParams: false });
  try {
    assert.throws(() => b.loadStateDict(a.stateDict()), /has shape \[48,64\], the source has \[48,32\]/);
    const missing = new Map(a.stateDict());
    missing.delete('transformer.ln_f.weight');
    assert.throws(() => a.loadStateDict(missing), /missing: transformer\.ln_f\.weight/);
    assert.throws(() => loadCheckpoint('/nonexistent/olmo'), /no checkpoint/);
  } finally {
    a.dispose();
    b.dispose();
  }
});
