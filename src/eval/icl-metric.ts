// OLMo's ICLMetric (olmo/eval/downstream.py): ranked classification over candidate continuations.
// Each (document, continuation) row is scored from the model's log-probabilities of the
// continuation tokens — acc/f1: their sum, len_norm: the sum over the continuation's character
// count, pmi_dc: the sum divided by the same sum given only the domain-conditional prompt — and a
// document counts as correct when its highest-scoring continuation is the labelled one.
//
// pmi_dc is OLMo's arithmetic, a ratio of two (negative) log-likelihoods, not the PMI difference
// log p(c|ctx) - log p(c|dc): a higher ratio means the context helped *less*. OLMo v0.2.5 never
// runs it (no task uses it and its trainer passes no domain-conditional logits); olmo-ts passes
// the domain-conditional forward's log-probabilities, which is what the ratio's comment describes.
import { DataError } from '../data/errors';
import { tensor } from '../tensor/creation';
import type { DType } from '../tensor/dtype';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

import { ICL_METRIC_TYPES } from '../config/data';

export { ICL_METRIC_TYPES };
/** The scores OLMo's ICLMetric knows (`metric_type`). */
export type ICLMetricType = (typeof ICL_METRIC_TYPES)[number];

/** The host-side part of a downstream batch the metric reads (OLMo's collate_fn keys). */
export interface ICLBatch {
  /** (B,) document of each row. */
  docId: number[];
  /** (B,) continuation index of each row within its document. */
  contId: number[];
  /** (B,) context tokens kept in the query (after left truncation). */
  ctxLen: number[];
  /** (B,) domain-conditional prompt tokens. */
  dcLen: number[];
  /** (B,) continuation tokens. */
  contLen: number[];
  /** (B,) characters of the continuation string without its leading space (OLMo's cont_str_len). */
  contStrLen: number[];
  /** (B,) index of the correct continuation of the row's document. */
  labelId: number[];
  /** (B,) continuation token ids of each row (unpadded). */
  continuation: number[][];
}

/** One scored row: OLMo's `loglikelihoods` and `labels` states. */
export interface ICLRow {
  docId: number;
  contId: number;
  /** The row's score in the metric's sense (see the file header). */
  logLikelihood: number;
  labelId: number;
}

/** Rounds a float64 to what a tensor of `dtype` holds (float32, bfloat16 or float16; others unchanged). */
export function roundToDType(x: number, dtype: DType): number {
  if (dtype === 'float32') return Math.fround(x);
  if (dtype === 'bfloat16') return bf16Round(Math.fround(x));
  if (dtype === 'float16') return f16Round(Math.fround(x));
  return x;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Round-to-nearest-even from float32 to bfloat16 (as torch converts), returned as a number. */
function bf16Round(x: number): number {
  if (Number.isNaN(x)) return x;
  f32[0] = x;
  const b = u32[0]!;
  u32[0] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32[0];
}
/** Round-to-nearest-even to IEEE half precision (values beyond 65504 overflow to infinity). */
function f16Round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  // Spacing of representable halves around a: 2^(e-10) for normals, 2^-24 for subnormals.
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const ulp = 2 ** (e - 10);
  const q = a / ulp; // exact: a is a float32 and ulp a power of two
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1; // ties to even
  return Math.sign(x) * r * ulp;
}

/**
 * Per-row scores of one batch, exactly as OLMo's ICLMetric.update computes `log_likelihood`:
 * log_softmax over the vocabulary in the logits' dtype (OLMo calls it outside autocast, so bf16
 * logits give bf16 log-probs), the log-probs of the continuation tokens at positions
 * ctx_len-1 .. ctx_len+cont_len-2 summed, then divided as the metric type says — each result
 * rounded to the logits' dtype as a tensor op would. Only the needed positions are normalised
 * (log_softmax is per position, so the values are the same as normalising all of them).
 *
 * lmLogits: (B, T, V) for the queries; dcLogits: (B, Tdc, V) for the domain-conditional queries
 * (pmi_dc only). // SYNC
 */
export function scoreContinuations(batch: ICLBatch, lmLogits: Tensor, metricType: ICLMetricType, dcLogits?: Tensor | null): Float64Array {
  const B = batch.docId.length;
  if (metricType === 'pmi_dc' && !dcLogits) throw new DataError('pmi_dc needs the domain-conditional logits (dc_input_ids forward)', { key: 'metric_type' });
  const lm = continuationLogProbSums(batch, lmLogits, batch.ctxLen);
  const dc = metricType === 'pmi_dc' ? continuationLogProbSums(batch, dcLogits!, batch.dcLen) : null;
  const dtype = lmLogits.dtype;
  const out = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    const s = lm[i]!;
    switch (metricType) {
      case 'acc':
      case 'f1':
        out[i] = s;
        break;
      case 'len_norm':
        out[i] = roundToDType(s / batch.contStrLen[i]!, dtype);
        break;
      case 'pmi_dc':
        out[i] = roundToDType(s / dc![i]!, dtype);
        break;
      default:
        throw new DataError(`unknown metric type ${JSON.stringify(metricType)}; expected one of ${ICL_METRIC_TYPES.join(', ')}`, { key: 'metric_type' });
    }
  }
  return out;
}

/** Σ log p(continuation token) per row from logits (B, T, V), read at offset `starts[i]`-1. */
function continuationLogProbSums(batch: ICLBatch, logits: Tensor, starts: number[]): Float64Array {
  const [B, T, V] = logits.shape as [number, number, number];
  if (B !== batch.docId.length) throw new RangeError(`logits have ${B} rows for a batch of ${batch.docId.length}`);
  const positions: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < B; i++) {
    const start = starts[i]! - 1;
    const n = batch.contLen[i]!;
    if (start < 0 || start + n > T) throw new RangeError(`row ${i}: continuation positions [${start}, ${start + n}) outside the ${T} logits`);
    for (let k = 0; k < n; k++) {
      positions.push(i * T + start + k);
      targets.push(batch.continuation[i]![k]!);
    }
  }
  const sums = new Float64Array(B);
  if (positions.length) {
    const lp = tidy(() => {
      const rows = logits.reshape(B * T, V).indexSelect(0, tensor(Int32Array.from(positions), { dtype: 'int64', device: logits.device })); // (N, V)
      const tgt = tensor(Int32Array.from(targets), { shape: [targets.length, 1], dtype: 'int64', device: logits.device }); // (N, 1)
      return rows.logSoftmax(-1).gather(1, tgt).toFloat64Array(); // (N,) in the logits' dtype, widened exactly
    });
    let p = 0;
    for (let i = 0; i < B; i++) {
      let s = 0;
      for (let k = 0; k < batch.contLen[i]!; k++) s += lp[p++]!;
      sums[i] = s;
    }
  }
  for (let i = 0; i < B; i++) sums[i] = roundToDType(sums[i]!, logits.dtype);
  return sums;
}

/** Index of the largest value, the first one on ties; a NaN counts as largest (torch.argmax). */
function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i]!)) return i;
    if (xs[i]! > xs[best]!) best = i;
  }
  return best;
}

/**
 * OLMo's ICLMetric.compute over scored rows: the first row seen for a (doc, continuation) and
 * the first label seen for a doc count (duplicates come from the sampler's padding); a document
 * whose continuation ids are not 0..n-1 for the n rows seen (cut off by subset_num_batches) is
 * skipped, while one with only its first continuations seen is ranked among those. acc/len_norm/
 * pmi_dc: the fraction of documents whose best continuation is the label (NaN with no document,
 * where OLMo divides by zero); f1: F1 with continuation 0 as the positive class (scikit-learn's
 * f1_score(labels, preds, pos_label=0), 0 when there are no positives).
 */
export function iclCompute(rows: readonly ICLRow[], metricType: ICLMetricType): number {
  const labels = new Map<number, number>();
  const byDoc = new Map<number, Map<number, number>>();
  for (const r of rows) {
    if (!labels.has(r.docId)) labels.set(r.docId, r.labelId);
    let conts = byDoc.get(r.docId);
    if (!conts) byDoc.set(r.docId, (conts = new Map()));
    if (!conts.has(r.contId)) conts.set(r.contId, r.logLikelihood);
  }
  const preds: number[] = [];
  const golds: number[] = [];
  for (const [docId, conts] of byDoc) {
    const n = conts.size;
    const ll = new Array<number>(n).fill(-Infinity);
    let complete = true;
    for (const [contId, v] of conts) {
      if (contId >= n) { complete = false; break; }
      ll[contId] = v;
    }
    if (!complete) continue;
    preds.push(argmax(ll));
    golds.push(labels.get(docId)!);
  }
  if (metricType === 'f1') return binaryF1(golds, preds, 0);
  if (!preds.length) return NaN;
  let correct = 0;
  for (let i = 0; i < preds.length; i++) if (preds[i] === golds[i]) correct++;
  return correct / preds.length;
}

/** scikit-learn's binary f1_score with the given positive label (0 on a zero denominator). */
function binaryF1(golds: number[], preds: number[], pos: number): number {
  const classes = new Set([...golds, ...preds]);
  if (classes.size > 2) throw new DataError(`f1 needs a binary task, got classes ${[...classes].sort().join(', ')}`, { key: 'metric_type' });
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < golds.length; i++) {
    const p = preds[i] === pos, g = golds[i] === pos;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  const d = 2 * tp + fp + fn;
  return d === 0 ? 0 : (2 * tp) / d;
}

/**
 * OLMo's ICLMetric for one process: `update` scores a batch's rows and keeps them, `compute` ranks
 * them. (Sharded evaluation scores with {@link scoreContinuations}, all-reduces the scores and
 * calls {@link iclCompute}.)
 */
export class ICLMetric {
  private rows: ICLRow[] = [];
  constructor(readonly metricType: ICLMetricType = 'acc') {
    if (!ICL_METRIC_TYPES.includes(metricType)) throw new DataError(`unknown metric type ${JSON.stringify(metricType)}; expected one of ${ICL_METRIC_TYPES.join(', ')}`, { key: 'metric_type' });
  }
  reset(): void {
    this.rows = [];
  }
  /** Scores the batch's rows from lm logits (B, T, V) and, for pmi_dc, the dc logits. // SYNC */
  update(batch: ICLBatch, lmLogits: Tensor, dcLogits?: Tensor | null): void {
    const s = scoreContinuations(batch, lmLogits, this.metricType, dcLogits);
    s.forEach((v, i) => this.rows.push({ docId: batch.docId[i]!, contId: batch.contId[i]!, logLikelihood: v, labelId: batch.labelId[i]! }));
  }
  /** The rows scored so far, in update order. */
  get scoredRows(): readonly ICLRow[] {
    return this.rows;
  }
  compute(): number {
    return iclCompute(this.rows, this.metricType);
  }
}
