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

/** Options of {@link headLoss}. */
export interface HeadLossOptions {
  /** Targets equal to this count for nothing (default -100). */
  ignoreIndex?: number;
  /** Weight of the mean cross-entropy in `loss` (default 1). */
  ceWeight?: number;
  /** Weight of the mean logsumexp² over every row (the z-loss) in `loss` (default 0: off). */
  zWeight?: number;
  /** Multiplies the logits (OLMo's scale_logits: 1/sqrt(d_model)); default 1. */
  scale?: number;
  /** Rows of logits computed at a time; default {@link headChunkRows}. */
  chunkRows?: number;
  /** 'aten': the device-generic implementation (what CUDA runs) also on CPU; for tests. */
  impl?: 'auto' | 'aten';
}

/** What {@link headLoss} returns: 0-dim float32 tensors. */
export interface HeadLossResult {
  /** ceWeight·ce + zWeight·z: the differentiable one. */
  loss: Tensor;
  /** ceWeight · mean cross-entropy (not differentiable). */
  ce: Tensor;
  /** zWeight · mean logsumexp² (0 when zWeight is 0; not differentiable). */
  z: Tensor;
}

/**
 * Default rows per chunk of {@link headLoss} for `tokens` rows of `vocab` logits: the fewest chunks
 * of at most 256 MiB of bf16 logits each (2668 rows at vocab 50304), split evenly so no chunk is
 * left short. Bigger chunks keep the gradient matmuls deep (their depth is the chunk's rows) and
 * accumulate d weight fewer times (measured: one chunk of 2048 x 50304 is 2% faster than two of
 * 1024, bench/RESULTS.md); the bound keeps a chunk at most 1/4 of the float32 logits of 10k tokens.
 */
export function headChunkRows(vocab: number, tokens: number): number {
  const maxRows = Math.max(128, Math.floor((256 << 20) / (2 * Math.max(1, vocab))));
  const chunks = Math.max(1, Math.ceil(tokens / maxRows));
  return Math.max(1, Math.ceil(tokens / chunks));
}

/**
 * The LM head and its loss as one autograd operation: logits = (hidden @ weight^T + bias)·scale
 * for hidden (N, d) and weight (V, d), cross-entropy against int64 targets (N), and the z-loss.
 * Rows are processed in chunks: the (N, V) logits never exist in float32 and their gradient never
 * exists whole. Under autocast the matmuls run in the autocast dtype, the loss in float32, as the
 * unfused linear + float cast + crossEntropy would. The gradients of hidden, weight and bias are
 * computed during this call (when they require grad) and handed over by backward().
 */
export function headLoss(hidden: Tensor, weight: Tensor, bias: Tensor | null, targets: Tensor, opts: HeadLossOptions = {}): HeadLossResult {
  const chunk = opts.chunkRows ?? headChunkRows(weight.shape[0] ?? 1, hidden.shape[0] ?? 1);
  if (!Number.isInteger(chunk) || chunk < 1) throw new ArgumentError(`headLoss: chunkRows must be a positive integer, got ${chunk}`);
  const [loss, ce, z] = N.headLoss(
    tid(hidden, 'hidden'), tid(weight, 'weight'), opt(bias, 'bias'), tid(targets, 'targets'), opts.ignoreIndex ?? -100,
    opts.ceWeight ?? 1, opts.zWeight ?? 0, opts.scale ?? 1, chunk, (opts.impl ?? 'auto') === 'auto',
  );
  return { loss: wrap(loss), ce: wrap(ce), z: wrap(z) };
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
