// OLMo's DataCollator (olmo/data/collator.py): stacks instances into a (B, T) batch, padding
// shorter ones left or right with the pad id (masks with 0/false), and hands batches to tensors.
import type { Tensor } from '../tensor/tensor';
import type { Instance } from './memmap-dataset';

/** A collated batch in plain typed arrays (row-major). */
export interface Batch {
  /** (B, T) token ids. */
  inputIds: Int32Array;
  /** [B, T]. */
  shape: [number, number];
  /** (B,) dataset index of each row (OLMo's `index`). */
  index: Int32Array;
  /** (B, T) 1.0 at real tokens, 0.0 at padding, when instances carried one. */
  attentionMask?: Float32Array;
  /** (B, T) 1 where the loss counts, when instances carried one. */
  labelMask?: Uint8Array;
  /** Per-row metadata, when instances carried it. */
  metadata?: Record<string, unknown>[];
}

/** The collator's settings (`data.pad_direction`, `model.pad_token_id`). */
export interface CollatorOptions {
  padDirection?: 'right' | 'left';
  padTokenId: number;
}

/** Stacks instances into a batch, padding to the longest as OLMo's DataCollator does. */
export function collate(items: Array<Pick<Instance, 'inputIds'> & Partial<Instance>>, o: CollatorOptions): Batch {
  if (items.length === 0) throw new RangeError('collate needs at least one instance');
  const B = items.length;
  const T = Math.max(...items.map((x) => x.inputIds.length));
  const left = o.padDirection === 'left';
  const inputIds = new Int32Array(B * T).fill(o.padTokenId);
  const hasAttn = items.some((x) => x.attentionMask), hasLabel = items.some((x) => x.labelMask);
  const attentionMask = hasAttn ? new Float32Array(B * T) : undefined;
  const labelMask = hasLabel ? new Uint8Array(B * T) : undefined;
  const index = new Int32Array(B);
  const metadata: Record<string, unknown>[] = [];
  items.forEach((x, b) => {
    const off = b * T + (left ? T - x.inputIds.length : 0);
    inputIds.set(x.inputIds, off);
    if (attentionMask && x.attentionMask) for (let i = 0; i < x.attentionMask.length; i++) attentionMask[off + i] = x.attentionMask[i]!;
    if (labelMask && x.labelMask) labelMask.set(x.labelMask, off);
    index[b] = x.index ?? -1;
    if (x.metadata) metadata.push(x.metadata);
  });
  const out: Batch = { inputIds, shape: [B, T], index };
  if (attentionMask) out.attentionMask = attentionMask;
  if (labelMask) out.labelMask = labelMask;
  if (metadata.length) out.metadata = metadata;
  return out;
}

/** A batch as tensors, keyed as OLMo's batch dict. */
export interface TensorBatch {
  input_ids: Tensor;
  index: Tensor;
  attention_mask?: Tensor;
  label_mask?: Tensor;
  metadata?: Record<string, unknown>[];
}

/**
 * Moves a batch into tensors: input_ids and index as int64, attention_mask float32, label_mask
 * bool, on `device` (default CPU). Loads the native addon on first use. The caller disposes them.
 */
export function toTensors(b: Batch, device?: 'cpu' | 'cuda' | `cuda:${number}`): TensorBatch {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const t = require('../index') as typeof import('../index');
  const [B, T] = b.shape;
  const out: TensorBatch = {
    input_ids: t.tensor(b.inputIds, { shape: [B, T], dtype: 'int64', device }),
    index: t.tensor(b.index, { shape: [B], dtype: 'int64', device }),
  };
  if (b.attentionMask) out.attention_mask = t.tensor(b.attentionMask, { shape: [B, T], dtype: 'float32', device });
  if (b.labelMask) out.label_mask = t.tensor(b.labelMask, { shape: [B, T], dtype: 'bool', device });
  if (b.metadata) out.metadata = b.metadata;
  return out;
}
