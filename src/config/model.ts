// ModelConfig: the `model:` section of an OLMo config, with OLMo's snake_case keys, defaults and
// meaning (olmo/config.py, v0.2.5, plus n_kv_heads and rope_theta from later OLMo releases), and
// parseModelConfig, which validates a raw object once and rejects what OLMo rejects.
import { ConfigError, showValue } from './errors';

/** Activation in the MLP. swiglu splits ff_proj's output in two: `x, gate = chunk(2); silu(gate) * x`. */
export type ActivationType = 'gelu' | 'relu' | 'swiglu';
/** Transformer block layout (OLMo's BlockType). */
export type BlockType = 'sequential' | 'parallel' | 'llama';
/** LayerNorm implementation (OLMo's LayerNormType). */
export type LayerNormType = 'default' | 'low_precision' | 'rms' | 'amd_compatible';
/** Weight initialisation strategy (OLMo's InitFnType). */
export type InitFnType = 'mitchell' | 'normal' | 'kaiming_normal' | 'fan_in' | 'full_megatron';

export const ACTIVATION_TYPES: readonly ActivationType[] = ['gelu', 'relu', 'swiglu'];
export const BLOCK_TYPES: readonly BlockType[] = ['sequential', 'parallel', 'llama'];
export const LAYER_NORM_TYPES: readonly LayerNormType[] = ['default', 'low_precision', 'rms', 'amd_compatible'];
export const INIT_FN_TYPES: readonly InitFnType[] = ['mitchell', 'normal', 'kaiming_normal', 'fan_in', 'full_megatron'];

/** OLMo model configuration. Defaults are OLMo's (equivalent to GPT-2 base). */
export interface ModelConfig {
  /** The hidden size of the model. */
  d_model: number;
  /** The number of self-attention heads. */
  n_heads: number;
  /**
   * The number of heads for keys and values: null (or n_heads) for multi-head attention, 1 for
   * multi-query attention, anything in between (dividing n_heads) for grouped-query attention.
   */
  n_kv_heads: number | null;
  /** Clip the q, k and v projections to [-clip_qkv, clip_qkv] when set (must be > 0). */
  clip_qkv: number | null;
  /** The number of layers/blocks. */
  n_layers: number;
  /** The ratio of the inner MLP dimensionality to d_model; used only when mlp_hidden_size is null. */
  mlp_ratio: number;
  /** The exact inner MLP size (ff_proj's output size); mlp_ratio * d_model when null. */
  mlp_hidden_size: number | null;
  /** The activation function within the MLP. */
  activation_type: ActivationType;
  /** The transformer block implementation. */
  block_type: BlockType;
  /**
   * The number of blocks grouped into one parent module (parameters named
   * transformer.block_groups.G.I.*); only changes names and FSDP wrapping, not the parameters.
   */
  block_group_size: number;
  /** Use ALiBi attention biases. Mutually exclusive with rope. */
  alibi: boolean;
  /** Maximum absolute value of the ALiBi bias. */
  alibi_bias_max: number;
  /** Use rotary positional embeddings (RoPE, GPT-NeoX style). Mutually exclusive with alibi. */
  rope: boolean;
  /** Apply RoPE in float32 whatever the input dtype; otherwise at the input's precision. */
  rope_full_precision: boolean;
  /** The RoPE base period (10000 in OLMo v0.2.5, where it is not configurable). */
  rope_theta: number;
  /** Use the fused (flash) attention kernel when the libtorch has one. */
  flash_attention: boolean;
  /** The dropout probability within the attention modules. */
  attention_dropout: number;
  /** Use PaLM's multi-query attention (one key/value head). Same as n_kv_heads = 1. */
  multi_query_attention: boolean;
  /** Apply layer norm to the queries and keys within attention (QK-norm). */
  attention_layer_norm: boolean;
  /** The dropout probability for the MLP and attention outputs within each block. */
  residual_dropout: number;
  /** The dropout probability for embeddings. */
  embedding_dropout: number;
  /** The layer norm implementation. */
  layer_norm_type: LayerNormType;
  /**
   * Whether layer norms immediately followed by a linear layer (everything but the QK norms) have
   * weight and bias parameters. When false they are non-parametric.
   */
  layer_norm_with_affine: boolean;
  /** Whether the QK norms have weight and bias parameters. */
  attention_layer_norm_with_affine: boolean;
  /** The maximum input sequence length (size of the learned positional embedding when used). */
  max_sequence_length: number;
  /** Whether linear layers have biases. */
  include_bias: boolean;
  /** Whether layer norms have a bias; null inherits include_bias. */
  bias_for_layer_norm: boolean | null;
  /** Scale the output logits by 1 / sqrt(d_model). */
  scale_logits: boolean;
  /** Vocabulary size of the tokenizer. */
  vocab_size: number;
  /**
   * The number of embedding rows (and logits); null means vocab_size. Padding vocab_size up to a
   * multiple of 128 improves throughput.
   */
  embedding_size: number | null;
  /** Tie the output projection to the input embedding (logits = x @ wte.weight^T). */
  weight_tying: boolean;
  /** The ID of the end-of-sequence token. */
  eos_token_id: number;
  /** The ID of the padding token. */
  pad_token_id: number;
  /** The device to initialise parameters on ("cpu", "cuda:0", "meta"); null picks cuda if available. */
  init_device: string | null;
  /** The weight initialisation strategy. */
  init_fn: InitFnType;
  /** The standard deviation for "fixed distribution" init_fns (normal, full_megatron). */
  init_std: number;
  /** Truncate "fixed distribution" inits at ±init_cutoff_factor·std; null means no cutoff (3 for full_megatron). */
  init_cutoff_factor: number | null;
  /** Precision used to train/evaluate; set from TrainConfig.precision, not directly. */
  precision: string | null;
}

/** OLMo's defaults for every ModelConfig key. */
export const MODEL_CONFIG_DEFAULTS: Readonly<ModelConfig> = Object.freeze({
  d_model: 768,
  n_heads: 12,
  n_kv_heads: null,
  clip_qkv: null,
  n_layers: 12,
  mlp_ratio: 4,
  mlp_hidden_size: null,
  activation_type: 'swiglu',
  block_type: 'sequential',
  block_group_size: 1,
  alibi: false,
  alibi_bias_max: 8.0,
  rope: false,
  rope_full_precision: true,
  rope_theta: 10000,
  flash_attention: false,
  attention_dropout: 0.1,
  multi_query_attention: false,
  attention_layer_norm: false,
  residual_dropout: 0.1,
  embedding_dropout: 0.1,
  layer_norm_type: 'default',
  layer_norm_with_affine: true,
  attention_layer_norm_with_affine: true,
  max_sequence_length: 1024,
  include_bias: true,
  bias_for_layer_norm: null,
  scale_logits: false,
  vocab_size: 50257,
  embedding_size: 50304,
  weight_tying: true,
  eos_token_id: 50256,
  pad_token_id: 50256,
  init_device: null,
  init_fn: 'normal',
  init_std: 0.02,
  init_cutoff_factor: null,
  precision: null,
} satisfies ModelConfig);

type Kind =
  | { t: 'int'; min?: number; nullable?: boolean }
  | { t: 'float'; min?: number; max?: number; exclusiveMin?: boolean; nullable?: boolean }
  | { t: 'bool'; nullable?: boolean }
  | { t: 'string'; nullable?: boolean }
  | { t: 'enum'; values: readonly string[] };

const SCHEMA: Record<keyof ModelConfig, Kind> = {
  d_model: { t: 'int', min: 1 },
  n_heads: { t: 'int', min: 1 },
  n_kv_heads: { t: 'int', min: 1, nullable: true },
  clip_qkv: { t: 'float', min: 0, exclusiveMin: true, nullable: true },
  n_layers: { t: 'int', min: 1 },
  mlp_ratio: { t: 'int', min: 1 },
  mlp_hidden_size: { t: 'int', min: 1, nullable: true },
  activation_type: { t: 'enum', values: ACTIVATION_TYPES },
  block_type: { t: 'enum', values: BLOCK_TYPES },
  block_group_size: { t: 'int', min: 1 },
  alibi: { t: 'bool' },
  alibi_bias_max: { t: 'float', min: 0, exclusiveMin: true },
  rope: { t: 'bool' },
  rope_full_precision: { t: 'bool' },
  rope_theta: { t: 'float', min: 0, exclusiveMin: true },
  flash_attention: { t: 'bool' },
  attention_dropout: { t: 'float', min: 0, max: 1 },
  multi_query_attention: { t: 'bool' },
  attention_layer_norm: { t: 'bool' },
  residual_dropout: { t: 'float', min: 0, max: 1 },
  embedding_dropout: { t: 'float', min: 0, max: 1 },
  layer_norm_type: { t: 'enum', values: LAYER_NORM_TYPES },
  layer_norm_with_affine: { t: 'bool' },
  attention_layer_norm_with_affine: { t: 'bool' },
  max_sequence_length: { t: 'int', min: 1 },
  include_bias: { t: 'bool' },
  bias_for_layer_norm: { t: 'bool', nullable: true },
  scale_logits: { t: 'bool' },
  vocab_size: { t: 'int', min: 1 },
  embedding_size: { t: 'int', min: 1, nullable: true },
  weight_tying: { t: 'bool' },
  eos_token_id: { t: 'int', min: 0 },
  pad_token_id: { t: 'int', min: 0 },
  init_device: { t: 'string', nullable: true },
  init_fn: { t: 'enum', values: INIT_FN_TYPES },
  init_std: { t: 'float', min: 0, exclusiveMin: true },
  init_cutoff_factor: { t: 'float', min: 0, exclusiveMin: true, nullable: true },
  precision: { t: 'string', nullable: true },
};

/** The keys ModelConfig accepts, in declaration order. */
export const MODEL_CONFIG_KEYS = Object.keys(SCHEMA) as (keyof ModelConfig)[];

function checkValue(key: string, v: unknown, k: Kind): unknown {
  if (v === null && 'nullable' in k && k.nullable) return null;
  const nullNote = 'nullable' in k && k.nullable ? ' or null' : '';
  switch (k.t) {
    case 'bool':
      if (typeof v !== 'boolean') throw new ConfigError(key, `got ${showValue(v)}, expected true or false${nullNote}`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new ConfigError(key, `got ${showValue(v)}, expected a string${nullNote}`);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !k.values.includes(v)) {
        throw new ConfigError(key, `got ${showValue(v)}, expected one of ${k.values.join(', ')}`);
      }
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(key, `got ${showValue(v)}, expected an integer${nullNote}`);
      if (k.min !== undefined && v < k.min) throw new ConfigError(key, `got ${v}, expected an integer >= ${k.min}${nullNote}`);
      return v;
    case 'float': {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(key, `got ${showValue(v)}, expected a number${nullNote}`);
      const lo = k.min !== undefined && (k.exclusiveMin ? v <= k.min : v < k.min);
      const hi = k.max !== undefined && v > k.max;
      if (lo || hi) {
        const range = `${k.min !== undefined ? (k.exclusiveMin ? `> ${k.min}` : `>= ${k.min}`) : ''}${k.max !== undefined ? ` and <= ${k.max}` : ''}`;
        throw new ConfigError(key, `got ${v}, expected a number ${range.trim()}${nullNote}`);
      }
      return v;
    }
  }
}

/** The number of key/value heads attention uses (OLMo's effective_n_kv_heads). */
export function effectiveNKvHeads(c: ModelConfig): number {
  if (c.n_kv_heads === null) return c.multi_query_attention ? 1 : c.n_heads;
  return c.n_kv_heads;
}
/** ff_proj's output size: mlp_hidden_size, or mlp_ratio * d_model. */
export function mlpHiddenSize(c: ModelConfig): number {
  return c.mlp_hidden_size ?? c.mlp_ratio * c.d_model;
}
/** The number of embedding rows and logits: embedding_size, or vocab_size. */
export function embeddingSize(c: ModelConfig): number {
  return c.embedding_size ?? c.vocab_size;
}
/** Whether layer norms with affine parameters also have a bias. */
export function layerNormHasBias(c: ModelConfig): boolean {
  return c.bias_for_layer_norm ?? c.include_bias;
}

/**
 * Validates a raw `model:` object (from YAML, JSON or code) and fills in OLMo's defaults. Throws
 * ConfigError naming the dotted key (under `keyPath`), the bad value and what was expected, for
 * unknown keys, wrong types, out-of-range values and the combinations OLMo rejects.
 */
export function parseModelConfig(raw: unknown, keyPath = 'model'): ModelConfig {
  const at = (k: string) => (keyPath ? `${keyPath}.${k}` : k);
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(keyPath, `got ${showValue(raw)}, expected a mapping of model options`);
  const src = raw as Record<string, unknown>;
  const out: Record<string, unknown> = { ...MODEL_CONFIG_DEFAULTS };
  for (const [k, v] of Object.entries(src)) {
    const kind = SCHEMA[k as keyof ModelConfig];
    if (!kind) throw new ConfigError(at(k), `unknown model option (expected one of ${MODEL_CONFIG_KEYS.join(', ')})`);
    if (v === undefined) continue;
    out[k] = checkValue(at(k), v, kind);
  }
  const c = out as unknown as ModelConfig;
  validateCombinations(c, at);
  return c;
}

function validateCombinations(c: ModelConfig, at: (k: string) => string): void {
  const fail = (key: string, msg: string) => {
    throw new ConfigError(at(key), msg);
  };
  if (c.d_model % c.n_heads !== 0) fail('n_heads', `d_model (${c.d_model}) must be divisible by n_heads (${c.n_heads})`);
  if (c.n_kv_heads !== null && c.multi_query_attention && c.n_kv_heads !== 1) {
    fail('n_kv_heads', `got ${c.n_kv_heads} with multi_query_attention=true; you can't set multi_query_attention and n_kv_heads at the same time`);
  }
  const kv = effectiveNKvHeads(c);
  if (c.n_heads % kv !== 0) fail('n_kv_heads', `got ${kv}, expected a divisor of n_heads (${c.n_heads})`);
  if (c.alibi && c.rope) fail('rope', 'alibi and rope are mutually exclusive (both are true)');
  if (c.alibi && c.flash_attention) fail('flash_attention', 'ALiBi is not supported with flash_attention (alibi is true)');
  if (c.embedding_size !== null && c.embedding_size < c.vocab_size) {
    fail('embedding_size', `got ${c.embedding_size}, expected at least vocab_size (${c.vocab_size})`);
  }
  if (c.block_group_size > c.n_layers || c.n_layers % c.block_group_size !== 0) {
    fail('block_group_size', `got ${c.block_group_size}, expected a divisor of n_layers (${c.n_layers})`);
  }
  const hidden = mlpHiddenSize(c);
  if (c.activation_type === 'swiglu' && hidden % 2 !== 0) {
    fail(c.mlp_hidden_size !== null ? 'mlp_hidden_size' : 'mlp_ratio', `swiglu halves the MLP hidden size, which must be even (got ${hidden})`);
  }
  if (c.rope && (c.d_model / c.n_heads) % 2 !== 0) {
    fail('rope', `RoPE needs an even head size, got d_model / n_heads = ${c.d_model / c.n_heads}`);
  }
  if (c.init_fn === 'full_megatron' && c.block_type === 'llama') {
    fail('init_fn', `full_megatron needs a module type for every linear layer, which block_type "llama" does not give (OLMo raises at init)`);
  }
}

/** A complete config from defaults plus overrides (validated). Handy in code and tests. */
export function modelConfig(overrides: Partial<ModelConfig> = {}, keyPath = 'model'): ModelConfig {
  return parseModelConfig(overrides, keyPath);
}

/** The config as a plain JSON-ready object with every key (for checkpoints and config.yaml). */
export function modelConfigToJSON(c: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of MODEL_CONFIG_KEYS) out[k] = c[k];
  return out;
}
