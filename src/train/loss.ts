// The training loss of one micro-batch as olmo-ts's trainer computes it (OLMo's model_forward and
// cross_entropy_loss): next-token cross-entropy in float32 plus the optional z-loss, written so the
// vocabulary-sized intermediates (the biggest tensors of a step) are copied once and freed early.
import { crossEntropy } from '../tensor/functional';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

/** What {@link nextTokenLoss} returns; every tensor is a scalar. */
export interface MicroBatchLoss {
  /** ce (+ z), divided by the number of micro-batches: what backward() runs on. */
  loss: Tensor;
  /** Cross-entropy / divisor, detached (for the step's metric). */
  ce: Tensor;
  /** Z-loss (1e-4 · mean logsumexp²) / divisor, detached; null without z-loss. */
  z: Tensor | null;
}

/**
 * Loss of logits (b, T, V) — any float dtype, e.g. bf16 from autocast — against `labels` (b, T)
 * int64 (the input ids with -100 where a target is ignored), shifted by one position:
 * logits[:, :-1] predict labels[:, 1:]. Cross-entropy is computed in float32; the z-loss, as in
 * olmo-ts's trainer, covers every position of the float32 logits.
 *
 * Without z-loss the logits are sliced before the float32 cast: one float32 copy of (b, T-1, V)
 * instead of two (cast, then a contiguous slice), and the gradient is put back into the (b, T, V)
 * shape in the logits' own dtype. The values and gradients are the same as cast-then-slice (the
 * cast is exact and its backward rounds the same float32 gradient). Call inside tidy(); the caller
 * can dispose `logits` once this returns (autograd keeps what backward needs).
 */
export function nextTokenLoss(logits: Tensor, labels: Tensor, o: { zLoss: boolean; divisor: number }): MicroBatchLoss {
  return tidy(() => {
    const [, T, V] = logits.shape as [number, number, number];
    const targets = labels.slice(1, 1, T).reshape(-1); // (b·(T-1))
    if (!o.zLoss) {
      const lossLogits = logits.slice(1, 0, T - 1).float().reshape(-1, V); // (b·(T-1), V) float32
      const ce = crossEntropy(lossLogits, targets, { ignoreIndex: -100 }).div(o.divisor);
      return { loss: ce, ce: ce.detach(), z: null };
    }
    const full = logits.float(); // (b, T, V) float32: the z-loss needs every position
    // The contiguous copy only lives until cross-entropy has run (log-softmax keeps its output).
    const ce = tidy(() => crossEntropy(full.slice(1, 0, T - 1).contiguous().view(-1, V), targets, { ignoreIndex: -100 }).div(o.divisor));
    const z = full.logsumexp(-1).pow(2).mean().mul(1e-4).div(o.divisor);
    return { loss: ce.add(z), ce: ce.detach(), z: z.detach() };
  });
}
