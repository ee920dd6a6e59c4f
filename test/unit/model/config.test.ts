// ModelConfig: OLMo's defaults, derived sizes, and a misuse table of bad values and unsupported
// combinations, each rejected with a ConfigError naming the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/config/errors';
import { MODEL_CONFIG_DEFAULTS, effectiveNKvHeads, embeddingSize, mlpHiddenSize, modelConfigToJSON, parseModelConfig } from '../../../src/config/model';

test('defaults are OLMo v0.2.5 ModelConfig defaults (plus rope_theta 10000, n_kv_heads null)', () => {
  const c = parseModelConfig({});
  assert.equal(c.d_model, 768);
  assert.equal(c.n_heads, 12);
  assert.equal(c.n_layers, 12);
  assert.equal(c.mlp_ratio, 4);
  assert.equal(c.activation_type, 'swiglu');
  assert.equal(c.block_type, 'sequential');
  assert.equal(c.alibi_bias_max, 8);
  assert.equal(c.rope_full_precision, true);
  assert.equal(c.rope_theta, 10000);
  assert.equal(c.attention_dropout, 0.1);
  assert.equal(c.residual_dropout, 0.1);
  assert.equal(c.embedding_dropout, 0.1);
  assert.equal(c.layer_norm_type, 'default');
  assert.equal(c.max_sequence_length, 1024);
  assert.equal(c.vocab_size, 50257);
  assert.equal(c.embedding_size, 50304);
  assert.equal(c.weight_tying, true);
  assert.equal(c.eos_token_id, 50256);
  assert.equal(c.init_fn, 'normal');
  assert.equal(c.init_std, 0.02);
  assert.equal(c.init_cutoff_factor, null);
  assert.equal(c.n_kv_heads, null);
  assert.deepEqual(Object.keys(modelConfigToJSON(c)).sort(), Object.keys(MODEL_CONFIG_DEFAULTS).sort());
});

test('derived sizes: kv heads, MLP hidden size, embedding size', () => {
  assert.equal(effectiveNKvHeads(parseModelConfig({})), 12);
  assert.equal(effectiveNKvHeads(parseModelConfig({ multi_query_attention: true })), 1);
  assert.equal(effectiveNKvHeads(parseModelConfig({ n_kv_heads: 4 })), 4);
  assert.equal(effectiveNKvHeads(parseModelConfig({ multi_query_attention: true, n_kv_heads: 1 })), 1);
  assert.equal(mlpHiddenSize(parseModelConfig({ d_model: 64, n_heads: 4 })), 256);
  assert.equal(mlpHiddenSize(parseModelConfig({ mlp_hidden_size: 22016 })), 22016);
  assert.equal(embeddingSize(parseModelConfig({ embedding_size: null })), 50257);
});

test('misuse table: each bad model config names its key, value and expectation', () => {
  const cases: [unknown, string, RegExp][] = [
    [[1, 2], 'model', /expected a mapping/],
    [{ d_modle: 64 }, 'model.d_modle', /unknown model option/],
    [{ d_model: '64' }, 'model.d_model', /got "64", expected an integer/],
    [{ d_model: 64.5 }, 'model.d_model', /expected an integer/],
    [{ n_layers: 0 }, 'model.n_layers', /got 0, expected an integer >= 1/],
    [{ activation_type: 'silu' }, 'model.activation_type', /got "silu", expected one of gelu, relu, swiglu/],
    [{ block_type: 'moe' }, 'model.block_type', /expected one of sequential, parallel, llama/],
    [{ layer_norm_type: 'batch' }, 'model.layer_norm_type', /expected one of/],
    [{ init_fn: 'xavier' }, 'model.init_fn', /expected one of/],
    [{ attention_dropout: 1.5 }, 'model.attention_dropout', /got 1.5, expected a number >= 0 and <= 1/],
    [{ clip_qkv: 0 }, 'model.clip_qkv', /expected a number > 0 or null/],
    [{ rope: 'yes' }, 'model.rope', /expected true or false/],
    [{ init_std: -1 }, 'model.init_std', /> 0/],
    [{ d_model: 100, n_heads: 12 }, 'model.n_heads', /must be divisible by n_heads/],
    [{ n_kv_heads: 5 }, 'model.n_kv_heads', /expected a divisor of n_heads \(12\)/],
    [{ n_kv_heads: 4, multi_query_attention: true }, 'model.n_kv_heads', /can't set multi_query_attention and n_kv_heads/],
    [{ alibi: true, rope: true }, 'model.rope', /mutually exclusive/],
    [{ alibi: true, flash_attention: true }, 'model.flash_attention', /ALiBi is not supported with flash_attention/],
    [{ vocab_size: 100, embedding_size: 64 }, 'model.embedding_size', /expected at least vocab_size \(100\)/],
    [{ n_layers: 4, block_group_size: 3 }, 'model.block_group_size', /expected a divisor of n_layers \(4\)/],
    [{ mlp_hidden_size: 101 }, 'model.mlp_hidden_size', /must be even/],
    [{ d_model: 36, n_heads: 12, rope: true }, 'model.rope', /even head size/],
    [{ init_fn: 'full_megatron', block_type: 'llama' }, 'model.init_fn', /full_megatron/],
  ];
  for (const [raw, key, re] of cases) {
    assert.throws(
      () => parseModelConfig(raw),
      (e: unknown) => e instanceof ConfigError && e.key === key && re.test(e.message),
      `${JSON.stringify(raw)} should fail on ${key} with ${re}`,
    );
  }
  assert.throws(() => parseModelConfig({ d_model: 'x' }, 'train.model'), (e: unknown) => (e as ConfigError).key === 'train.model.d_model');
});

test('valid combinations pass and keep their values', () => {
  const c = parseModelConfig({ d_model: 4096, n_heads: 32, n_kv_heads: 8, rope: true, rope_theta: 500000, clip_qkv: 8, block_group_size: 4, n_layers: 32, embedding_size: null });
  assert.equal(c.n_kv_heads, 8);
  assert.equal(c.rope_theta, 500000);
  assert.equal(c.embedding_size, null);
  assert.deepEqual(parseModelConfig(modelConfigToJSON(c)), c);
});
