// OLMo's transformer blocks (sequential, parallel, llama) with OLMo's parameter names and order of
// operations, plus the layer-norm and activation factories they share.
import { Tensor } from '../tensor/tensor';
import { cat } from '../tensor/creation';
import { ModelConfig, effectiveNKvHeads, mlpHiddenSize, layerNormHasBias } from '../config/model';
import { Module } from '../nn/module';
import { Linear, ParamOptions } from '../nn/linear';
import { Dropout } from '../nn/dropout';
import { AMDLayerNorm, LayerNorm, LayerNormBase, RMSLayerNorm, autocastDtypeFor } from '../nn/layer-norm';
import { BufferCache, applyRotary, explicitAttention, fusedAttention, repeatKv } from './attention';
import type { CheckpointTape } from '../tensor/checkpoint';

/** Keys and values of one block, (B, nkv, T, hs) each, before RoPE (as OLMo caches them). */
export type LayerPast = [Tensor, Tensor];

/**
 * OLMo's LayerNormBase.build: the configured norm type; `affine` null means layer_norm_with_affine.
 * The bias follows bias_for_layer_norm (or include_bias).
 */
export function buildLayerNorm(c: ModelConfig, size: number, affine: boolean | null, p: ParamOptions): LayerNormBase {
  const opts = { ...p, affine: affine ?? c.layer_norm_with_affine, bias: layerNormHasBias(c) };
  switch (c.layer_norm_type) {
    case 'default':
      return new LayerNorm(size, opts);
    case 'low_precision':
      return new LayerNorm(size, { ...opts, lowPrecision: true });
    case 'rms':
      return new RMSLayerNorm(size, opts);
    case 'amd_compatible':
      return new AMDLayerNorm(size, opts);
  }
}

/** The MLP activation; swiglu halves the last dim: `x, gate = chunk(2); silu(gate) * x`. */
export function activation(c: ModelConfig, x: Tensor): Tensor {
  switch (c.activation_type) {
    case 'swiglu': {
      const [h, gate] = x.chunk(2, -1);
      return gate!.silu().mul(h!);
    }
    case 'gelu':
      return x.gelu('none');
    case 'relu':
      return x.relu();
  }
}
/** ff_out's input size relative to ff_proj's output (0.5 for swiglu). */
export function activationOutputMultiplier(c: ModelConfig): number {
  return c.activation_type === 'swiglu' ? 0.5 : 1;
}

/** Which of OLMo's init rules a linear layer follows (initialization.py's ModuleType). */
export type InitModuleType = 'in' | 'out' | 'emb' | 'final_out' | null;
/** One weight to initialise: the module, its effective input size d, layer id and module type. */
export interface InitTarget {
  module: Linear;
  d: number;
  layerId: number | null;
  type: InitModuleType;
  /** OLMo's `_is_residual` flag (the blocks' ff_out): the normal init divides by sqrt(2 n_layers). */
  residual: boolean;
}

/** A block's output: the new hidden state (B, T, C) and, with useCache, its keys/values. */
export interface BlockOutput {
  x: Tensor;
  present: LayerPast | null;
}

/** What every block has: residual dropout, optional QK norms, attn_out and ff_out. */
export abstract class OLMoBlock extends Module {
  readonly layerId: number;
  readonly config: ModelConfig;
  readonly hiddenSize: number;
  protected readonly cache: BufferCache;
  readonly dropout: Dropout;
  readonly kNorm: LayerNormBase | null = null;
  readonly qNorm: LayerNormBase | null = null;
  readonly attnOut: Linear;
  readonly ffOut: Linear;

  constructor(layerId: number, c: ModelConfig, cache: BufferCache, p: ParamOptions) {
    super();
    this.layerId = layerId;
    this.config = c;
    this.cache = cache;
    this.hiddenSize = mlpHiddenSize(c);
    this.dropout = this.registerModule('dropout', new Dropout(c.residual_dropout));
    const hs = c.d_model / c.n_heads;
    if (c.attention_layer_norm) {
      this.kNorm = this.registerModule('k_norm', buildLayerNorm(c, hs * effectiveNKvHeads(c), c.attention_layer_norm_with_affine, p));
      this.qNorm = this.registerModule('q_norm', buildLayerNorm(c, c.d_model, c.attention_layer_norm_with_affine, p));
    }
    this.attnOut = this.registerModule('attn_out', new Linear(c.d_model, c.d_model, { ...p, bias: c.include_bias }));
    const ffIn = activationOutputMultiplier(c) * this.hiddenSize;
    this.ffOut = this.registerModule('ff_out', new Linear(ffIn, c.d_model, { ...p, bias: c.include_bias }));
  }

  /** Sizes of q, k and v in the fused projection. */
  protected qkvDims(): [number, number, number] {
    const c = this.config;
    const kv = (c.d_model / c.n_heads) * effectiveNKvHeads(c);
    return [c.d_model, kv, kv];
  }
  protected clip(t: Tensor): Tensor {
    const m = this.config.clip_qkv;
    return m === null ? t : t.clamp(-m, m);
  }
  /** The linear layers and their init rules, in OLMo's reset_parameters order. */
  initTargets(): InitTarget[] {
    const c = this.config;
    return [
      { module: this.attnOut, d: c.d_model, layerId: this.layerId, type: 'out', residual: false },
      { module: this.ffOut, d: this.ffOut.inFeatures, layerId: this.layerId, type: 'out', residual: true },
    ];
  }
  /** Norms to reset to weight 1 / bias 0. */
  norms(): LayerNormBase[] {
    return [this.kNorm, this.qNorm].filter((n): n is LayerNormBase => n !== null);
  }

  /**
   * Multi-head attention over projected q (B, T, C), k and v (B, T, nkv·hs): QK norm, heads,
   * cache concat, RoPE, attention with the (already causal/padded/ALiBi) bias or causal mask,
   * and the output projection.
   */
  attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, layerPast: LayerPast | null, useCache: boolean): BlockOutput {
    const c = this.config;
    const [B, T, C] = q.shape as [number, number, number];
    const nh = c.n_heads;
    const hs = C / nh;
    const nkv = effectiveNKvHeads(c);
    const dtype = k.dtype;
    if (this.qNorm && this.kNorm) {
      q = this.qNorm.forward(q).to(dtype);
      k = this.kNorm.forward(k).to(dtype);
    }
    q = q.view(B, T, nh, hs).transpose(1, 2); // (B, nh, T, hs)
    k = k.view(B, T, nkv, hs).transpose(1, 2); // (B, nkv, T, hs)
    v = v.view(B, T, nkv, hs).transpose(1, 2); // (B, nkv, T, hs)
    if (layerPast) {
      k = cat([layerPast[0], k], -2); // (B, nkv, Tpast + T, hs)
      v = cat([layerPast[1], v], -2);
    }
    const present: LayerPast | null = useCache ? [k, v] : null;
    const qLen = q.shape[2]!;
    const kLen = k.shape[2]!;
    if (c.rope) [q, k] = applyRotary(q, k, c, this.cache);
    let b: Tensor | null = null;
    if (bias) {
      b = bias.slice(2, kLen - qLen, kLen).slice(3, 0, kLen); // (B|1, nh|1, Tq, Tk)
      const target = autocastDtypeFor(b) ?? dtype;
      if (b.dtype !== target) b = b.to(target).clamp(-maxFinite(target), null);
    }
    const kk = repeatKv(k, nh);
    const vv = repeatKv(v, nh);
    const p = this.training ? c.attention_dropout : 0;
    const att =
      c.block_type === 'llama' ? explicitAttention(q, kk, vv, b, p, this.cache) : fusedAttention(q, kk, vv, b, p); // (B, nh, T, hs)
    const y = att.transpose(1, 2).contiguous().view(B, T, C); // (B, T, C)
    return { x: this.attnOut.forward(y), present };
  }

  /**
   * x (B, T, C) -> (B, T, C). bias: (B|1, nh|1, S, S) float, or null for plain causal attention.
   * With `tape` (training under OLMo's fine_grained checkpointing) the parts listed in
   * FINE_GRAINED_PARTS are recomputed in backward instead of keeping their activations.
   */
  abstract forward(x: Tensor, bias: Tensor | null, layerPast: LayerPast | null, useCache: boolean, tape?: CheckpointTape | null): BlockOutput;

  /**
   * fn(inputs, extras), recomputed in backward when a tape is given (OLMo's _activation_checkpoint_fn).
   * With or without a tape, fn sees its inputs through a view (an identity autograd node): the
   * gradients of fn's own uses of an input (an RMS norm reads x twice) sum there first, then meet
   * the residual's, so the sums are the same whether or not fn is recomputed, bitwise.
   */
  protected part(tape: CheckpointTape | null, fn: (inputs: Tensor[], extras: (Tensor | null)[]) => Tensor, inputs: Tensor[], extras: (Tensor | null)[] = []): Tensor {
    const run = (ins: Tensor[], ex: (Tensor | null)[]) => fn(ins.map((t) => t.view(t.shape)), ex);
    return tape ? tape.recompute((i, e) => [run(i, e)], inputs, extras)[0]! : run(inputs, extras);
  }
  /**
   * A cut point for a tensor used both inside and outside recomputed parts (the residual stream),
   * so all its gradient meets before the segment behind it runs backward; x itself without a tape.
   */
  protected cut(tape: CheckpointTape | null, x: Tensor): Tensor {
    return tape ? tape.cut([x])[0]! : x;
  }
  /** attention() as a recomputed part under a tape (training: no cache), else directly. */
  protected attentionPart(tape: CheckpointTape | null, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, layerPast: LayerPast | null, useCache: boolean): BlockOutput {
    if (!tape) return this.attention(q, k, v, bias, layerPast, useCache);
    return { x: this.part(tape, ([a, b, c], [m]) => this.attention(a!, b!, c!, m ?? null, null, false).x, [q, k, v], [bias]), present: null };
  }
}

function maxFinite(d: string): number {
  return d === 'float16' ? 65504 : d === 'bfloat16' ? 3.3895313892515355e38 : 3.4028234663852886e38;
}

/** x + attn(LN(x)), then + MLP(LN(·)): the usual pre-norm block, with a fused att_proj. */
export class OLMoSequentialBlock extends OLMoBlock {
  readonly attnNorm: LayerNormBase;
  readonly ffNorm: LayerNormBase;
  readonly attProj: Linear;
  readonly ffProj: Linear;
  constructor(layerId: number, c: ModelConfig, cache: BufferCache, p: ParamOptions) {
    super(layerId, c, cache, p);
    this.attnNorm = this.registerModule('attn_norm', buildLayerNorm(c, c.d_model, null, p));
    this.ffNorm = this.registerModule('ff_norm', buildLayerNorm(c, c.d_model, null, p));
    const dims = this.qkvDims();
    this.attProj = this.registerModule('att_proj', new Linear(c.d_model, dims[0] + dims[1] + dims[2], { ...p, bias: c.include_bias }));
    this.ffProj = this.registerModule('ff_proj', new Linear(c.d_model, this.hiddenSize, { ...p, bias: c.include_bias }));
  }
  override initTargets(): InitTarget[] {
    const d = this.config.d_model;
    return [
      ...super.initTargets(),
      { module: this.attProj, d, layerId: null, type: 'in', residual: false },
      { module: this.ffProj, d, layerId: null, type: 'in', residual: false },
    ];
  }
  override norms(): LayerNormBase[] {
    return [...super.norms(), this.attnNorm, this.ffNorm];
  }
  forward(x: Tensor, bias: Tensor | null, layerPast: LayerPast | null, useCache: boolean, tape: CheckpointTape | null = null): BlockOutput {
    x = this.cut(tape, x);
    const n = this.part(tape, ([t]) => this.attnNorm.forward(t!), [x]);
    const qkv = this.clip(this.attProj.forward(n)); // (B, T, C + 2·nkv·hs)
    const [q, k, v] = qkv.split(this.qkvDims(), -1);
    const att = this.attentionPart(tape, q!, k!, v!, bias, layerPast, useCache);
    x = this.cut(tape, x.add(this.dropout.forward(att.x))); // (B, T, C)
    const f = this.ffProj.forward(this.part(tape, ([t]) => this.ffNorm.forward(t!), [x]));
    const h = this.ffOut.forward(this.part(tape, ([t]) => activation(this.config, t!), [f]));
    return { x: x.add(this.dropout.forward(h)), present: att.present };
  }
}

/** PaLM's parallel block: x + MLP(LN(x)) + attn(LN(x)), with one fused input projection. */
export class OLMoParallelBlock extends OLMoBlock {
  readonly norm: LayerNormBase;
  readonly fusedAttnFfProj: Linear;
  constructor(layerId: number, c: ModelConfig, cache: BufferCache, p: ParamOptions) {
    super(layerId, c, cache, p);
    this.norm = this.registerModule('norm', buildLayerNorm(c, c.d_model, null, p));
    const [a, b, d] = this.qkvDims();
    this.fusedAttnFfProj = this.registerModule(
      'fused_attn_ff_proj',
      new Linear(c.d_model, a + b + d + this.hiddenSize, { ...p, bias: c.include_bias }),
    );
  }
  override initTargets(): InitTarget[] {
    return [...super.initTargets(), { module: this.fusedAttnFfProj, d: this.config.d_model, layerId: null, type: 'in', residual: false }];
  }
  override norms(): LayerNormBase[] {
    return [...super.norms(), this.norm];
  }
  forward(x: Tensor, bias: Tensor | null, layerPast: LayerPast | null, useCache: boolean, tape: CheckpointTape | null = null): BlockOutput {
    x = this.cut(tape, x);
    const n = this.part(tape, ([t]) => this.norm.forward(t!), [x]);
    const [q0, k0, v0, ff0] = this.fusedAttnFfProj.forward(n).split([...this.qkvDims(), this.hiddenSize], -1);
    // One cut for all four: they share the projection's history, which must go backward once.
    let qkvf = [this.clip(q0!), this.clip(k0!), this.clip(v0!), ff0!];
    if (tape) qkvf = tape.cut(qkvf);
    const [q, k, v, ff] = qkvf;
    const att = this.attentionPart(tape, q!, k!, v!, bias, layerPast, useCache);
    const mlp = this.dropout.forward(this.ffOut.forward(this.part(tape, ([t]) => activation(this.config, t!), [ff!])));
    return { x: x.add(mlp).add(this.dropout.forward(att.x)), present: att.present };
  }
}

/** The sequential block with separate q/k/v projections and explicit (non-fused) attention, like Llama. */
export class OLMoLlamaBlock extends OLMoBlock {
  readonly attnNorm: LayerNormBase;
  readonly ffNorm: LayerNormBase;
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly ffProj: Linear;
  constructor(layerId: number, c: ModelConfig, cache: BufferCache, p: ParamOptions) {
    super(layerId, c, cache, p);
    this.attnNorm = this.registerModule('attn_norm', buildLayerNorm(c, c.d_model, null, p));
    this.ffNorm = this.registerModule('ff_norm', buildLayerNorm(c, c.d_model, null, p));
    const [qd, kd, vd] = this.qkvDims();
    const o = { ...p, bias: c.include_bias };
    this.qProj = this.registerModule('q_proj', new Linear(c.d_model, qd, o));
    this.kProj = this.registerModule('k_proj', new Linear(c.d_model, kd, o));
    this.vProj = this.registerModule('v_proj', new Linear(c.d_model, vd, o));
    this.ffProj = this.registerModule('ff_proj', new Linear(c.d_model, this.hiddenSize, o));
  }
  override initTargets(): InitTarget[] {
    const d = this.config.d_model;
    return [
      ...super.initTargets(),
      ...[this.qProj, this.kProj, this.vProj, this.ffProj].map((module) => ({ module, d, layerId: null, type: null, residual: false })),
    ];
  }
  override norms(): LayerNormBase[] {
    return [...super.norms(), this.attnNorm, this.ffNorm];
  }
  forward(x: Tensor, bias: Tensor | null, layerPast: LayerPast | null, useCache: boolean, tape: CheckpointTape | null = null): BlockOutput {
    const h = this.attnNorm.forward(x); // (B, T, C)
    const q = this.clip(this.qProj.forward(h));
    const k = this.clip(this.kProj.forward(h));
    const v = this.clip(this.vProj.forward(h));
    const att = this.attention(q, k, v, bias, layerPast, useCache);
    // OLMo's llama block checkpoints only the feed-forward side under fine_grained.
    x = this.cut(tape, x.add(this.dropout.forward(att.x)));
    const f = this.ffProj.forward(this.part(tape, ([t]) => this.ffNorm.forward(t!), [x]));
    const m = this.ffOut.forward(this.part(tape, ([t]) => activation(this.config, t!), [f]));
    return { x: x.add(this.dropout.forward(m)), present: att.present };
  }
}

/** OLMoBlock.build: the block class for config.block_type. */
export function buildBlock(layerId: number, c: ModelConfig, cache: BufferCache, p: ParamOptions): OLMoBlock {
  switch (c.block_type) {
    case 'sequential':
      return new OLMoSequentialBlock(layerId, c, cache, p);
    case 'parallel':
      return new OLMoParallelBlock(layerId, c, cache, p);
    case 'llama':
      return new OLMoLlamaBlock(layerId, c, cache, p);
  }
}
