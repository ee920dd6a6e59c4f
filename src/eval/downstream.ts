// Downstream evaluators (OLMo's `type: downstream`): a multiple-choice task's documents become one
// row per (document, continuation) as OLMo's ICLMultiChoiceTaskDataset builds them (context +
// continuation minus its last token, cut from the left to the model context), rows are batched in
// order, padded as OLMo's collate_fn pads, run through the model and ranked by ICLMetric.
import { DataError } from '../data/errors';
import type { OLMo } from '../model/olmo';
import { tensor } from '../tensor/creation';
import { noGrad } from '../tensor/autograd';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { EvalCollective, SINGLE_PROCESS, checkCollective, distributedSamplerIndices } from './collective';
import { EvalPassOptions, Evaluator, EvaluatorResult, evalForward, numEvalBatches } from './evaluator';
import { ICLBatch, ICLMetricType, ICLRow, iclCompute, scoreContinuations } from './icl-metric';
import type { TaskDoc } from './task-files';

/** OLMo's default model_ctx_len for downstream queries. */
export const MODEL_CTX_LEN = 2048;

/** One (document, continuation) row, OLMo's sample dict. */
export interface ICLSample {
  docId: number;
  contId: number;
  /** Context tokens kept in the query (OLMo's ctx_len: the actual length after left truncation; WinoGrande: the untruncated length). */
  ctxLen: number;
  dcLen: number;
  contLen: number;
  /** Characters of the continuation minus one (its leading space). */
  contStrLen: number;
  labelId: number;
  continuation: number[];
  /** context + continuation[:-1], last model_ctx_len tokens. */
  query: number[];
  /** domain-conditional prompt + continuation[:-1]. */
  dcQuery: number[];
}

/** Tokenizes without special tokens (OLMo's token_encode). */
export type Encode = (texts: string[]) => Promise<number[][]>;

/** Code points of a string (Python's len). */
const pyLen = (s: string) => [...s].length;

/**
 * OLMo's prep_examples over formatted documents: tokenizes every context, continuation and
 * domain-conditional prompt (each distinct string once), and builds the rows in document order.
 * Documents whose context (or, for pmi_dc, domain-conditional prompt) tokenizes to nothing, or
 * whose continuation does not fit the context window, are refused with their file and line (OLMo
 * would read the logits at position -1).
 */
export async function buildICLSamples(
  docs: readonly TaskDoc[], encode: Encode, o: { modelCtxLen?: number; pmiDc?: boolean } = {},
): Promise<ICLSample[]> {
  const modelCtxLen = o.modelCtxLen ?? MODEL_CTX_LEN;
  const strings = new Set<string>();
  for (const { doc } of docs) {
    if ('context' in doc) [doc.context, doc.domainConditional, ...doc.continuations].forEach((s) => strings.add(s));
    else [doc.continuation, ...doc.contexts, ...doc.domainConditionals].forEach((s) => strings.add(s));
  }
  const list = [...strings];
  const ids = new Map<string, number[]>();
  for (let i = 0; i < list.length; i += 1024) {
    const chunk = list.slice(i, i + 1024);
    (await encode(chunk)).forEach((t, j) => ids.set(chunk[j]!, t));
  }
  const tok = (s: string) => ids.get(s)!;
  const samples: ICLSample[] = [];
  docs.forEach(({ doc, file, line }, docId) => {
    const fail = (msg: string) => { throw new DataError(msg, { file, line }); };
    const pairs = 'context' in doc
      ? doc.continuations.map((c) => ({ ctx: doc.context, cont: c, dc: doc.domainConditional }))
      : doc.contexts.map((ctx, i) => ({ ctx, cont: doc.continuation, dc: doc.domainConditionals[i]! }));
    pairs.forEach(({ ctx: ctxStr, cont: contStr, dc: dcStr }, contId) => {
      const ctx = tok(ctxStr), cont = tok(contStr), dc = tok(dcStr);
      if (ctx.length === 0) fail(`the context ${JSON.stringify(ctxStr.slice(0, 40))} has no tokens; a continuation needs a context to be scored after`);
      if (cont.length === 0) fail(`continuation ${contId} ${JSON.stringify(contStr)} has no tokens`);
      const query = [...ctx, ...cont.slice(0, -1)].slice(-modelCtxLen);
      const actualCtxLen = query.length - cont.length + 1;
      if (actualCtxLen < 1) fail(`continuation ${contId} has ${cont.length} tokens, more than the ${modelCtxLen}-token context window holds after a context token`);
      if (o.pmiDc && dc.length === 0) fail(`the domain-conditional prompt ${JSON.stringify(dcStr)} has no tokens (pmi_dc scores the continuation after it)`);
      samples.push({
        docId, contId,
        ctxLen: 'context' in doc ? actualCtxLen : ctx.length,
        dcLen: dc.length,
        contLen: cont.length,
        contStrLen: pyLen(contStr) - 1,
        labelId: doc.label,
        continuation: cont,
        query,
        dcQuery: [...dc, ...cont.slice(0, -1)],
      });
    });
  });
  return samples;
}

/** A collated batch: the metric's fields plus padded token ids (OLMo's collate_fn). */
export interface ICLCollated extends ICLBatch {
  /** (B, T) queries padded with the pad id. */
  inputIds: Int32Array;
  shape: [number, number];
  /** (B, Tdc) domain-conditional queries, padded. */
  dcInputIds: Int32Array;
  dcShape: [number, number];
}

/** OLMo's pad_tokens_until_max: left-truncate past the context, else pad right to maxLen (then right-truncate past the context). */
function padUntilMax(tokens: number[], maxLen: number, padId: number, ctxLen: number): number[] {
  if (tokens.length > ctxLen) return tokens.slice(-ctxLen);
  const out = tokens.concat(new Array<number>(Math.max(0, maxLen - tokens.length)).fill(padId));
  return out.length > ctxLen ? out.slice(0, ctxLen) : out;
}

/** Pads rows into one batch as OLMo's collate_fn does. */
export function collateICL(rows: readonly ICLSample[], padId: number, modelCtxLen = MODEL_CTX_LEN): ICLCollated {
  const pack = (seqs: number[][]): { ids: Int32Array; shape: [number, number] } => {
    const maxLen = Math.max(...seqs.map((s) => s.length));
    const padded = seqs.map((s) => padUntilMax(s, maxLen, padId, modelCtxLen));
    const T = Math.max(...padded.map((p) => p.length));
    const ids = new Int32Array(rows.length * T).fill(padId);
    padded.forEach((p, i) => ids.set(p, i * T));
    return { ids, shape: [rows.length, T] };
  };
  const q = pack(rows.map((r) => r.query));
  const d = pack(rows.map((r) => r.dcQuery));
  return {
    docId: rows.map((r) => r.docId), contId: rows.map((r) => r.contId), ctxLen: rows.map((r) => r.ctxLen),
    dcLen: rows.map((r) => r.dcLen), contLen: rows.map((r) => r.contLen), contStrLen: rows.map((r) => r.contStrLen),
    labelId: rows.map((r) => r.labelId), continuation: rows.map((r) => r.continuation),
    inputIds: q.ids, shape: q.shape, dcInputIds: d.ids, dcShape: d.shape,
  };
}

/** Options of a {@link DownstreamEvaluator}. */
export interface DownstreamEvaluatorOptions {
  label: string;
  metricType: ICLMetricType;
  samples: ICLSample[];
  batchSize: number;
  subsetNumBatches: number | null;
  globalSubsetNumBatches: number;
  seed: number;
  dropLast: boolean;
  padTokenId: number;
  modelCtxLen?: number;
  collective?: EvalCollective;
}

/**
 * OLMo's downstream evaluator: rows in order (no shuffle), `batchSize` rows per forward, scored
 * and ranked as ICLMetric does; reports `eval/downstream/<label>_<metric>`. With several ranks,
 * each scores its slice and the per-row scores (and how often each row was scored: the sampler
 * pads with repeats) are all-reduced, so every rank ranks the same complete set.
 */
export class DownstreamEvaluator implements Evaluator {
  readonly type = 'downstream' as const;
  readonly label: string;
  readonly metricNames: readonly string[];
  readonly metricType: ICLMetricType;
  private readonly collective: EvalCollective;
  private readonly order: Uint32Array;

  constructor(private readonly o: DownstreamEvaluatorOptions) {
    this.label = o.label;
    this.metricType = o.metricType;
    this.metricNames = [`eval/downstream/${o.label}_${o.metricType}`];
    this.collective = o.collective ?? SINGLE_PROCESS;
    checkCollective(this.collective);
    this.order = distributedSamplerIndices(o.samples.length, {
      rank: this.collective.rank, worldSize: this.collective.worldSize, shuffle: false, seed: o.seed, dropLast: o.dropLast,
    });
  }

  /** Batches one pass runs on this rank. */
  get numBatches(): number {
    return numEvalBatches(this.o.subsetNumBatches, this.o.globalSubsetNumBatches, Math.ceil(this.order.length / this.o.batchSize));
  }

  /** The rows (OLMo samples) of the task, in document order. */
  get samples(): readonly ICLSample[] {
    return this.o.samples;
  }

  async evaluate(model: OLMo, p: EvalPassOptions): Promise<EvaluatorResult> {
    const t0 = performance.now();
    const S = this.o.samples.length;
    const acc = new Float64Array(2 * S); // [score sums..., times scored...]
    const bs = this.o.batchSize;
    const nb = this.numBatches;
    let instances = 0, tokens = 0;
    for (let j = 0; j < nb; j++) {
      const idx = this.order.subarray(j * bs, (j + 1) * bs);
      const rows = Array.from(idx, (i) => this.o.samples[i]!);
      const batch = collateICL(rows, this.o.padTokenId, this.o.modelCtxLen ?? MODEL_CTX_LEN);
      const scores = this.scoreBatch(model, batch, p);
      idx.forEach((s, r) => {
        acc[s] += scores[r]!;
        acc[S + s] += 1;
      });
      instances += rows.length;
      tokens += batch.shape[0] * batch.shape[1] + (this.metricType === 'pmi_dc' ? batch.dcShape[0] * batch.dcShape[1] : 0);
      // Let timers and I/O run between batches (signals, background checkpoint writes).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const total = await this.collective.allReduceSum(acc);
    const scored: ICLRow[] = [];
    for (let s = 0; s < S; s++) {
      const n = total[S + s]!;
      if (n === 0) continue;
      const r = this.o.samples[s]!;
      scored.push({ docId: r.docId, contId: r.contId, labelId: r.labelId, logLikelihood: total[s]! / n });
    }
    const value = iclCompute(scored, this.metricType);
    return {
      label: this.label, type: 'downstream', metrics: { [this.metricNames[0]!]: value },
      instances, tokens, batches: nb, seconds: (performance.now() - t0) / 1000,
    };
  }

  /** Scores of one batch's rows. // SYNC */
  private scoreBatch(model: OLMo, b: ICLCollated, p: EvalPassOptions): Float64Array {
    return noGrad(() => tidy(() => {
      const dev = model.device;
      const run = (ids: Int32Array, shape: [number, number]): Tensor => evalForward(model, tensor(ids, { shape, dtype: 'int64', device: dev }), p.precision); // (B, T, V)
      const lm = run(b.inputIds, b.shape);
      const dc = this.metricType === 'pmi_dc' ? run(b.dcInputIds, b.dcShape) : null;
      return scoreContinuations(b, lm, this.metricType, dc);
    }));
  }

  close(): void {
    // Rows live in JS memory; nothing native to free.
  }
}
