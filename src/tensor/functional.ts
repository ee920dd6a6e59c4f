// Neural-network functions over tensors (PyTorch's torch.nn.functional): linear, norms,
// embedding, losses, dropout and fused attention. Modules in src/nn build on these.
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { Tensor, tid, wrap } from './tensor';

const N = native;
const opt = (t: Tensor | null | undefined, what: string): number => (t ? tid(t, what) : -1);

/** x @ weight^T + bias. x: (..., in), weight: (out, in). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(N.linear(tid(x, 'input'), tid(weight, 'weight'), opt(bias, 'bias')));
}
/** LayerNorm over the trailing `normalizedShape` dims; weight/bias optional (non-parametric). */
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return wrap(N.layerNorm(tid(x, 'input'), normalizedShape, opt(weight, 'weight'), opt(bias, 'bias'), eps));
}
/** RMS norm over the last dim, computed in float32 and returned in x's dtype, then `weight * y (+ bias)`. */
export function rmsNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  if (bias && !weight) throw new ArgumentError('rmsNorm: a bias needs a weight');
  return wrap(N.rmsNorm(tid(x, 'input'), opt(weight, 'weight'), opt(bias, 'bias'), eps));
}
/** Rows of `weight` (V, d) at integer `ids`. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  return wrap(N.embedding(tid(weight, 'weight'), tid(ids, 'ids')));
}

export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

/** Cross-entropy of logits (N, C) against int64 targets (N); targets equal to ignoreIndex count for nothing. */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  opts: { ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {},
): Tensor {
  const red = REDUCTION[opts.reduction ?? 'mean'];
  if (red === undefined) throw new ArgumentError(`crossEntropy: unknown reduction '${opts.reduction}' (none, mean, sum)`);
  return wrap(N.crossEntropy(tid(logits, 'logits'), tid(targets, 'targets'), opts.ignoreIndex ?? -100, red, opts.labelSmoothing ?? 0));
}
/** Dropout with probability p when training (identity otherwise). Uses the default generator. */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`dropout probability must be in [0, 1], got ${p}`);
  return wrap(N.dropout(tid(x, 'input'), p, training));
}
/**
 * Scaled-dot-product attention over q, k, v of shape (B, nh, T, hs): libtorch's fused kernel on
 * torch 2.x when there is no mask, the math path (matmul, softmax, matmul) with a mask and on 1.13
 * (see native/compat.h for why). `attnMask` is a bool mask (true = attend) or an additive float
 * bias broadcastable to (B, nh, Tq, Tk).
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { attnMask?: Tensor | null; dropoutP?: number; isCausal?: boolean } = {},
): Tensor {
  return wrap(N.sdpa(tid(q, 'query'), tid(k, 'key'), tid(v, 'value'), opt(opts.attnMask, 'attnMask'), opts.dropoutP ?? 0, opts.isCausal ?? false));
}
export function softmax(x: Tensor, dim: number): Tensor {
  return x.softmax(dim);
}
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return x.logSoftmax(dim);
}
export function silu(x: Tensor): Tensor {
  return x.silu();
}
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return x.gelu(approximate);
}
export function relu(x: Tensor): Tensor {
  return x.relu();
}
