// Conversion between OLMo checkpoints and Hugging Face's native OlmoForCausalLM layout
// (config.json + model.safetensors), with the mapping of transformers' convert_olmo_weights_to_hf:
// att_proj -> q/k/v_proj, ff_proj -> [up_proj; gate_proj], ff_out -> down_proj, attn_out -> o_proj.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../tensor/tensor';
import { cat } from '../tensor/creation';
import { dispose, tidy } from '../tensor/scope';
import { Device } from '../tensor/dtype';
import { ConfigError } from '../config/errors';
import { ModelConfig, effectiveNKvHeads, embeddingSize, mlpHiddenSize, parseModelConfig } from '../config/model';
import { readSafetensors, saveSafetensors } from '../io/safetensors';
import { OLMo } from './olmo';
import { normalizeStateDict } from './checkpoint';

/** The fields of transformers' OlmoConfig that the conversion reads and writes. */
export interface HfOlmoConfig {
  architectures: string[];
  model_type: 'olmo';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  hidden_act: string;
  max_position_embeddings: number;
  initializer_range: number;
  use_cache: boolean;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  tie_word_embeddings: boolean;
  rope_theta: number;
  rope_scaling: null;
  attention_bias: boolean;
  attention_dropout: number;
  clip_qkv: number | null;
  torch_dtype: string;
  [extra: string]: unknown;
}

/**
 * Checks that HF's OlmoForCausalLM can express the model (sequential or llama block, SwiGLU, RoPE,
 * no biases, non-parametric LayerNorm, no QK norm, no logit scaling); throws ConfigError keyed on
 * the first offending key, whose message lists every key to change (with the value HF needs).
 */
export function checkHfCompatible(c: ModelConfig): void {
  const bad: [key: string, why: string, need: string][] = [];
  if (c.block_type === 'parallel') bad.push(['block_type', 'got "parallel" (HF Olmo has sequential blocks)', 'sequential']);
  if (c.activation_type !== 'swiglu') bad.push(['activation_type', `got "${c.activation_type}", expected "swiglu"`, 'swiglu']);
  if (!c.rope) bad.push(['rope', 'got false (learned or ALiBi positions)', 'true']);
  if (c.include_bias) bad.push(['include_bias', 'got true (HF Olmo has no linear biases)', 'false']);
  if (c.layer_norm_with_affine) bad.push(['layer_norm_with_affine', 'got true (HF Olmo layer norms have no weights)', 'false']);
  if (c.layer_norm_type === 'rms') bad.push(['layer_norm_type', 'got "rms" (HF Olmo uses LayerNorm)', 'default']);
  if (c.attention_layer_norm) bad.push(['attention_layer_norm', 'got true (HF Olmo has no QK norm)', 'false']);
  if (c.scale_logits) bad.push(['scale_logits', 'got true', 'false']);
  if (!bad.length) return;
  const [key, why] = bad[0]!;
  const change = bad.map(([k, , need]) => `model.${k}: ${need}`).join(', ');
  throw new ConfigError(`model.${key}`, `${why}; Hugging Face's OlmoForCausalLM cannot express it. A model exports when trained with ${change} (as OLMo's own configs are)`);
}

/** OLMo ModelConfig -> HF OlmoConfig (config.json). */
export function toHfConfig(c: ModelConfig): HfOlmoConfig {
  checkHfCompatible(c);
  return {
    architectures: ['OlmoForCausalLM'],
    model_type: 'olmo',
    vocab_size: embeddingSize(c),
    hidden_size: c.d_model,
    intermediate_size: mlpHiddenSize(c) / 2,
    num_hidden_layers: c.n_layers,
    num_attention_heads: c.n_heads,
    num_key_value_heads: effectiveNKvHeads(c),
    hidden_act: 'silu',
    max_position_embeddings: c.max_sequence_length,
    initializer_range: c.init_std,
    use_cache: true,
    pad_token_id: c.pad_token_id,
    bos_token_id: null,
    eos_token_id: c.eos_token_id,
    tie_word_embeddings: c.weight_tying,
    rope_theta: c.rope_theta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: c.attention_dropout,
    clip_qkv: c.clip_qkv,
    torch_dtype: 'float32',
  };
}

/** HF OlmoConfig -> OLMo ModelConfig (sequential block, non-parametric LayerNorm, no dropout). */
export function fromHfConfig(raw: Record<string, unknown>): ModelConfig {
  const num = (k: string): number => {
    const v = raw[k];
    if (typeof v !== 'number') throw new ConfigError(k, `got ${JSON.stringify(v)} in config.json, expected a number`);
    return v;
  };
  if (raw.model_type !== 'olmo') throw new ConfigError('model_type', `got ${JSON.stringify(raw.model_type)} in config.json, expected "olmo"`);
  if (raw.attention_bias === true) throw new ConfigError('attention_bias', 'got true; olmo-ts biases cover every linear layer, HF Olmo only attention');
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu') throw new ConfigError('hidden_act', `got ${JSON.stringify(raw.hidden_act)}, expected "silu"`);
  if (raw.rope_scaling != null) throw new ConfigError('rope_scaling', 'RoPE scaling is not supported');
  const nHeads = num('num_attention_heads');
  const nkv = typeof raw.num_key_value_heads === 'number' ? raw.num_key_value_heads : nHeads;
  const vocab = num('vocab_size');
  return parseModelConfig(
    {
      d_model: num('hidden_size'),
      n_heads: nHeads,
      n_kv_heads: nkv === nHeads ? null : nkv,
      n_layers: num('num_hidden_layers'),
      mlp_hidden_size: 2 * num('intermediate_size'),
      activation_type: 'swiglu',
      block_type: 'sequential',
      rope: true,
      rope_theta: typeof raw.rope_theta === 'number' ? raw.rope_theta : 10000,
      clip_qkv: typeof raw.clip_qkv === 'number' ? raw.clip_qkv : null,
      attention_dropout: typeof raw.attention_dropout === 'number' ? raw.attention_dropout : 0,
      residual_dropout: 0,
      embedding_dropout: 0,
      layer_norm_type: 'default',
      layer_norm_with_affine: false,
      include_bias: false,
      max_sequence_length: num('max_position_embeddings'),
      vocab_size: vocab,
      embedding_size: vocab,
      weight_tying: raw.tie_word_embeddings !== false,
      eos_token_id: typeof raw.eos_token_id === 'number' ? raw.eos_token_id : vocab - 1,
      pad_token_id: typeof raw.pad_token_id === 'number' ? raw.pad_token_id : typeof raw.eos_token_id === 'number' ? raw.eos_token_id : vocab - 1,
      init_std: typeof raw.initializer_range === 'number' ? raw.initializer_range : 0.02,
    },
    'config.json',
  );
}

function need(sd: Map<string, Tensor>, name: string): Tensor {
  const t = sd.get(name);
  if (!t) throw new ConfigError(name, 'missing from the state dict');
  return t;
}

/**
 * OLMo state dict (OLMo names, any block grouping) -> HF tensors. New tensors are views or
 * slices of the inputs; the caller disposes them. lm_head.weight is omitted when tied, as HF saves it.
 */
export function toHfStateDict(c: ModelConfig, olmo: Map<string, Tensor>): Map<string, Tensor> {
  checkHfCompatible(c);
  const sd = normalizeStateDict(olmo, 1);
  const out = new Map<string, Tensor>();
  const hs = c.d_model / c.n_heads;
  const kvd = hs * effectiveNKvHeads(c);
  out.set('model.embed_tokens.weight', need(sd, 'transformer.wte.weight'));
  for (let i = 0; i < c.n_layers; i++) {
    const p = `transformer.blocks.${i}`;
    const h = `model.layers.${i}`;
    let q: Tensor, k: Tensor, v: Tensor;
    if (c.block_type === 'llama') {
      [q, k, v] = [need(sd, `${p}.q_proj.weight`), need(sd, `${p}.k_proj.weight`), need(sd, `${p}.v_proj.weight`)];
    } else {
      [q, k, v] = need(sd, `${p}.att_proj.weight`).split([c.d_model, kvd, kvd], 0) as [Tensor, Tensor, Tensor];
    }
    const [up, gate] = need(sd, `${p}.ff_proj.weight`).chunk(2, 0);
    out.set(`${h}.self_attn.q_proj.weight`, q);
    out.set(`${h}.self_attn.k_proj.weight`, k);
    out.set(`${h}.self_attn.v_proj.weight`, v);
    out.set(`${h}.self_attn.o_proj.weight`, need(sd, `${p}.attn_out.weight`));
    out.set(`${h}.mlp.gate_proj.weight`, gate!);
    out.set(`${h}.mlp.up_proj.weight`, up!);
    out.set(`${h}.mlp.down_proj.weight`, need(sd, `${p}.ff_out.weight`));
  }
  if (!c.weight_tying) out.set('lm_head.weight', need(sd, 'transformer.ff_out.weight'));
  return out;
}

/** HF tensors -> OLMo state dict for `c` (from fromHfConfig): q/k/v and up/gate are concatenated. */
export function fromHfStateDict(c: ModelConfig, hf: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  out.set('transformer.wte.weight', need(hf, 'model.embed_tokens.weight'));
  for (let i = 0; i < c.n_layers; i++) {
    const h = `model.layers.${i}`;
    const p = `transformer.blocks.${i}`;
    out.set(`${p}.att_proj.weight`, cat([need(hf, `${h}.self_attn.q_proj.weight`), need(hf, `${h}.self_attn.k_proj.weight`), need(hf, `${h}.self_attn.v_proj.weight`)], 0));
    out.set(`${p}.attn_out.weight`, need(hf, `${h}.self_attn.o_proj.weight`));
    out.set(`${p}.ff_proj.weight`, cat([need(hf, `${h}.mlp.up_proj.weight`), need(hf, `${h}.mlp.gate_proj.weight`)], 0));
    out.set(`${p}.ff_out.weight`, need(hf, `${h}.mlp.down_proj.weight`));
  }
  if (!c.weight_tying) out.set('transformer.ff_out.weight', need(hf, 'lm_head.weight'));
  return normalizeStateDict(out, c.block_group_size);
}

/** Writes `dir/config.json` and `dir/model.safetensors` in HF's OlmoForCausalLM layout. */
export function saveHfOlmo(model: OLMo, dir: string): void {
  const cfg = toHfConfig(model.config);
  fs.mkdirSync(dir, { recursive: true });
  tidy(() => {
    const sd = toHfStateDict(model.config, model.stateDict());
    saveSafetensors(path.join(dir, 'model.safetensors'), sd, { format: 'pt' });
  });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const gen = { _from_model_config: true, eos_token_id: cfg.eos_token_id, pad_token_id: cfg.pad_token_id };
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
}

/** Loads an HF OlmoForCausalLM folder (config.json + model.safetensors) as an OLMo model. */
export function loadHfOlmo(dir: string, opts: { device?: Device; blockGroupSize?: number } = {}): OLMo {
  const cfgFile = path.join(dir, 'config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError('', `${cfgFile} is unreadable: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('', `${cfgFile}: expected a JSON object`);
  let config = fromHfConfig(raw);
  if (opts.blockGroupSize) config = parseModelConfig({ ...config, block_group_size: opts.blockGroupSize });
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new ConfigError('', `${dir} has no model.safetensors (sharded or .bin HF checkpoints are not supported)`);
  const { tensors } = readSafetensors(file);
  const model = new OLMo(config, { device: opts.device, initParams: false });
  try {
    tidy(() => model.loadStateDict(fromHfStateDict(config, tensors)));
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    dispose([...tensors.values()]);
  }
  return model;
}
