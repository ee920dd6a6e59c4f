// The training loss of one micro-batch as olmo-ts's trainer computes it (OLMo's model_forward and
// cross_entropy_loss): next-token cross-entropy in float32 plus the optional z-loss. Two ways to the
// same numbers: the model's logits, then the loss (nextTokenLoss), or the LM head fused into the
// loss (fusedNextTokenLoss: never the full float32 logits; the default in training).
import type { TrainConfig } from '../config/train';
import type { OLMo } from '../model/olmo';
import { autocast } from '../tensor/autograd';
import { cat, full } from '../tensor/creation';
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

/**
 * nextTokenLoss with the LM head fused in: the model's forward pass on `ids` with its head (tied or
 * not, bias, scale_logits, all embedding_size rows) and the loss run as one native op, chunk by
 * chunk of tokens (forward()'s headLoss, F.headLoss). Same values and gradients as
 * nextTokenLoss(model's logits) within bf16/fp32 rounding: the cross-entropy covers positions
 * 0..T-2 against labels 1..T-1 (-100 ignored), the z-loss every position. The whole pass is one
 * model.forward() call, so whatever brackets forward (FSDP's gathering) brackets the head too.
 * Call inside autocast when the model trains under it (the op picks its matmul dtype from there).
 */
export function fusedNextTokenLoss(
  model: OLMo,
  ids: Tensor,
  labels: Tensor,
  o: { attentionMask?: Tensor | null; attentionBias?: Tensor | null; zLoss: boolean; divisor: number; chunkRows?: number },
): MicroBatchLoss {
  return tidy(() => {
    const [b, T] = labels.shape as [number, number];
    // Position (i, t) predicts labels[i, t+1]; the last position of each row has no target.
    const targets = cat([labels.slice(1, 1, T).long(), full([b, 1], -100, { dtype: 'int64', device: labels.device })], 1); // (b, T)
    const r = model.forward(ids, {
      attentionMask: o.attentionMask ?? null, attentionBias: o.attentionBias ?? null,
      headLoss: { targets, ignoreIndex: -100, ceWeight: 1 / o.divisor, zWeight: o.zLoss ? 1e-4 / o.divisor : 0, chunkRows: o.chunkRows },
    });
    return { loss: r.loss, ce: r.ce, z: o.zLoss ? r.z : null };
  });
}

/** Whether training uses the fused head + loss: `fused_loss` (null = yes). */
export function usesFusedLoss(cfg: TrainConfig): boolean {
  return cfg.fused_loss ?? true;
}

/**
 * One micro-batch's forward pass and loss, as Trainer.trainStep runs it: ids (b, T) int64, labels
 * (b, T) with -100 where a target is ignored; under bf16 autocast when `amp`. Call inside tidy();
 * backward() on the returned loss.
 */
export function microBatchLoss(
  model: OLMo,
  ids: Tensor,
  labels: Tensor,
  o: { attentionMask: Tensor | null; amp: boolean; fused: boolean; zLoss: boolean; divisor: number },
): MicroBatchLoss {
  const fwd = { attentionMask: o.attentionMask };
  const amp = <R>(fn: () => R): R => (o.amp ? autocast(fn, { device: model.device }) : fn());
  if (o.fused) return amp(() => fusedNextTokenLoss(model, ids, labels, o));
  // The inner tidy frees the logits before backward (only autograd's saved tensors stay).
  return tidy(() => nextTokenLoss(amp(() => model.forward(ids, fwd).logits), labels, o));
}
