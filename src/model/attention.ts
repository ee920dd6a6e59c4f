// Attention helpers shared by OLMo's blocks: the cached causal / ALiBi biases and RoPE tables
// (OLMo's BufferCache), GPT-NeoX-style rotary embedding, and scaled-dot-product attention in its
// two forms (the fused kernel for sequential/parallel blocks, explicit matmuls for llama blocks).
import { Tensor } from '../tensor/tensor';
import { arange, cat, full, ones } from '../tensor/creation';
import { keep } from '../tensor/scope';
import { noGrad } from '../tensor/autograd';
import { dropout, scaledDotProductAttention } from '../tensor/functional';
import { Device } from '../tensor/dtype';
import { ModelConfig } from '../config/model';

/** torch.finfo(torch.float32).min: OLMo's "masked" value (finite, so SDPA never sees -inf rows). */
export const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * Non-parameter tensors computed once and grown on demand (OLMo keeps them out of the state dict
 * for FSDP's sake). All entries are kept tensors, freed by dispose().
 */
export class BufferCache {
  private readonly entries = new Map<string, Tensor>();
  /** The entry `name` if it exists on `device` with last-dim size >= size, else a fresh one from make(). */
  get(name: string, size: number, device: Device, make: () => Tensor): Tensor {
    const hit = this.entries.get(name);
    if (hit && !hit.isDisposed && hit.device === device && hit.shape[hit.ndim - 2]! >= size) return hit;
    hit?.dispose();
    const t = keep(noGrad(make));
    this.entries.set(name, t);
    return t;
  }
  dispose(): void {
    for (const t of this.entries.values()) t.dispose();
    this.entries.clear();
  }
}

/** (1, 1, S, S): 0 on and below the diagonal, FLOAT32_MIN above it (OLMo's causal_attention_bias). */
export function causalAttentionBias(seqLen: number, device: Device): Tensor {
  const m = ones([seqLen, seqLen], { device }).triu(1);
  return m.maskedFill(m.eq(1), FLOAT32_MIN).view(1, 1, seqLen, seqLen);
}

/** (1, nh, S, S): -|i - j| / 2^(m_h) with m_h = (h+1) * alibi_bias_max / n_heads (OLMo's alibi_attention_bias). */
export function alibiAttentionBias(seqLen: number, c: ModelConfig, device: Device): Tensor {
  const r = arange(1 - seqLen, 1, 1, { dtype: 'float32', device });
  const bias = r.view(1, 1, 1, seqLen).sub(r.view(1, 1, seqLen, 1)).abs().mul(-1); // (1, 1, S, S)
  const m = arange(1, c.n_heads + 1, 1, { dtype: 'float32', device }).mul(c.alibi_bias_max / c.n_heads); // (nh)
  const slopes = full([c.n_heads], 2, { device }).pow(m).reciprocal().view(1, c.n_heads, 1, 1);
  return bias.mul(slopes); // (1, nh, S, S)
}

/** RoPE tables sin, cos of shape (1, 1, S, hs), float32 (OLMo's RotaryEmbedding.get_rotary_embedding). */
export function rotaryTables(seqLen: number, headSize: number, theta: number, device: Device): [Tensor, Tensor] {
  const exps = arange(0, headSize, 2, { device }).float().div(headSize); // (hs/2)
  const invFreq = full([exps.shape[0]!], theta, { device }).pow(exps).reciprocal(); // (hs/2)
  const seq = arange(seqLen, undefined, 1, { dtype: 'float32', device });
  const freqs = seq.unsqueeze(1).mul(invFreq.unsqueeze(0)); // (S, hs/2)
  const pos = cat([freqs, freqs], -1); // (S, hs)
  return [pos.sin().view(1, 1, seqLen, headSize), pos.cos().view(1, 1, seqLen, headSize)];
}

/** [-x2, x1] for x = [x1, x2] split in halves along the last dim. */
function rotateHalf(x: Tensor): Tensor {
  const [x1, x2] = x.chunk(2, -1);
  return cat([x2!.neg(), x1!], -1);
}

/**
 * Applies RoPE to q (B, nh, Tq, hs) and k (B, nkv, Tk, hs); q's positions are the last Tq of k's.
 * In float32 when rope_full_precision, returned in the inputs' dtypes.
 */
export function applyRotary(q: Tensor, k: Tensor, c: ModelConfig, cache: BufferCache): [Tensor, Tensor] {
  const qf = c.rope_full_precision ? q.float() : q;
  const kf = c.rope_full_precision ? k.float() : k;
  const hs = q.shape[3]!;
  const qLen = q.shape[2]!;
  const kLen = k.shape[2]!;
  const dev = q.device;
  const sinAll = cache.get('rope_pos_sin', kLen, dev, () => rotaryTables(Math.max(kLen, c.max_sequence_length), hs, c.rope_theta, dev)[0]);
  const cosAll = cache.get('rope_pos_cos', kLen, dev, () => rotaryTables(Math.max(kLen, c.max_sequence_length), hs, c.rope_theta, dev)[1]);
  const sin = sinAll.slice(2, 0, kLen).to(qf.dtype); // (1, 1, Tk, hs)
  const cos = cosAll.slice(2, 0, kLen).to(qf.dtype);
  const rot = (t: Tensor, s: Tensor, co: Tensor) => t.mul(co).add(rotateHalf(t).mul(s)).to(t.dtype);
  const qr = rot(qf, sin.slice(2, kLen - qLen, kLen), cos.slice(2, kLen - qLen, kLen));
  const kr = rot(kf, sin, cos);
  return [qr.to(q.dtype), kr.to(k.dtype)];
}

/** Repeats kv heads (B, nkv, T, hs) -> (B, nh, T, hs) for grouped/multi-query attention. */
export function repeatKv(x: Tensor, nHeads: number): Tensor {
  const nkv = x.shape[1]!;
  return nkv === nHeads ? x : x.repeatInterleave(nHeads / nkv, 1);
}

/**
 * Attention as torch's fused scaled_dot_product_attention (sequential and parallel blocks):
 * causal when no bias is given, else the float bias is added to the scores.
 */
export function fusedAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, dropoutP: number): Tensor {
  return scaledDotProductAttention(q, k, v, { attnMask: bias, dropoutP, isCausal: bias === null }); // (B, nh, Tq, hs)
}

/**
 * OLMo's llama block attention, spelled out: softmax(q kᵀ / sqrt(hs) + bias) v, with the cached
 * causal bias when no bias is given.
 */
export function explicitAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  bias: Tensor | null,
  dropoutP: number,
  cache: BufferCache,
): Tensor {
  const hs = q.shape[3]!;
  const qLen = q.shape[2]!;
  const kLen = k.shape[2]!;
  let w = q.matmul(k.transpose(-2, -1)).div(Math.sqrt(hs)); // (B, nh, Tq, Tk)
  let b: Tensor;
  if (bias === null) {
    b = cache.get('causal_attention_bias', kLen, q.device, () => causalAttentionBias(kLen, q.device)).slice(2, 0, qLen).slice(3, 0, kLen);
  } else {
    b = bias.to(q.dtype);
  }
  w = w.add(b).softmax(-1).to(q.dtype);
  // OLMo calls F.dropout(w, p) here, which is active whenever p > 0 (p is 0 outside training).
  if (dropoutP > 0) w = dropout(w, dropoutP, true);
  return w.matmul(v); // (B, nh, Tq, hs)
}
