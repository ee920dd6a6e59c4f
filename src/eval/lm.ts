// Perplexity evaluators (OLMo's `type: lm`): held-out token files read like the training data, in
// OLMo's eval order (torch's DistributedSampler, shuffled with the run's seed), reporting
// eval/<name>/CrossEntropyLoss and eval/<name>/Perplexity per source as OLMo's evaluator averages.
import type { LoaderBatch } from '../data/loader';
import { DataLoader } from '../data/loader';
import { DataError } from '../data/errors';
import type { MemMapDataset } from '../data/memmap-dataset';
import type { OLMo } from '../model/olmo';
import { tensor } from '../tensor/creation';
import { crossEntropy } from '../tensor/functional';
import { noGrad } from '../tensor/autograd';
import { tidy } from '../tensor/scope';
import { EvalCollective, SINGLE_PROCESS, checkCollective, distributedSamplerIndices } from './collective';
import { EvalMetrics, EvalPassOptions, Evaluator, EvaluatorResult, evalForward, numEvalBatches } from './evaluator';

/** Options of a {@link LanguageModelingEvaluator}. */
export interface LMEvaluatorOptions {
  /** The evaluator's label (OLMo's `label`). */
  label: string;
  /** Instances of max_sequence_length tokens; with `datasets`, each file's metadata carries its {label}. */
  dataset: MemMapDataset;
  /**
   * null when the evaluator has `paths` (one metric pair named by `label`); the dataset names when
   * it has `datasets` (one pair per name, keyed by the instance metadata's `label`).
   */
  sources: string[] | null;
  /** device_eval_batch_size (the evaluator's, else the top-level one). */
  batchSize: number;
  /** subset_num_batches (null: use `globalSubsetNumBatches`). */
  subsetNumBatches: number | null;
  /** eval_subset_num_batches. */
  globalSubsetNumBatches: number;
  /** The run's seed: OLMo seeds the eval sampler's shuffle with it. */
  seed: number;
  /** data.drop_last of the evaluator. */
  dropLast: boolean;
  padTokenId: number;
  padDirection?: 'left' | 'right';
  numWorkers?: number;
  prefetchFactor?: number | null;
  collective?: EvalCollective;
}

/**
 * OLMo's language-modeling evaluator. Each instance's loss is the mean of the per-token
 * cross-entropy over its T-1 next-token positions (OLMo's `ce_loss.mean(dim=-1)` with reduction
 * "none": a position whose label is masked out contributes 0 but still counts in the T-1), and
 * a source's CrossEntropyLoss is the mean of its instances' losses (torchmetrics MeanMetric, one
 * update per instance); Perplexity is exp of it. With every token counted and every instance of
 * the same length — the usual case — this is the plain per-token mean. A source no instance came
 * from is left out (OLMo skips its NaN). Sums are kept in float64 (OLMo's MeanMetric in float32).
 */
export class LanguageModelingEvaluator implements Evaluator {
  readonly type = 'lm' as const;
  readonly label: string;
  readonly metricNames: readonly string[];
  private readonly names: string[];
  private readonly collective: EvalCollective;
  private readonly batchSize: number;
  private order: Uint32Array | null = null;

  constructor(private readonly o: LMEvaluatorOptions) {
    this.label = o.label;
    this.collective = o.collective ?? SINGLE_PROCESS;
    checkCollective(this.collective);
    this.names = o.sources ? [...o.sources].sort() : [o.label];
    this.metricNames = this.names.flatMap((n) => [`eval/${n}/CrossEntropyLoss`, `eval/${n}/Perplexity`]);
    let bs = o.batchSize;
    if (o.dropLast) {
      // OLMo: with drop_last, the batch shrinks to fit one rank's share of a small set.
      bs = Math.min(bs, Math.floor(o.dataset.length / this.collective.worldSize));
      if (bs <= 0) throw new DataError(`the eval set of '${o.label}' (${o.dataset.length} instances) is too small for ${this.collective.worldSize} ranks with drop_last`, { key: 'data.drop_last' });
    }
    this.batchSize = bs;
  }

  /** This rank's instance indices in OLMo's eval order (computed once: the order never changes). */
  get indices(): Uint32Array {
    this.order ??= distributedSamplerIndices(this.o.dataset.length, {
      rank: this.collective.rank, worldSize: this.collective.worldSize, shuffle: true, seed: this.o.seed, dropLast: this.o.dropLast,
    });
    return this.order;
  }

  /** Batches one pass runs on this rank. */
  get numBatches(): number {
    return numEvalBatches(this.o.subsetNumBatches, this.o.globalSubsetNumBatches, Math.ceil(this.indices.length / this.batchSize));
  }

  async evaluate(model: OLMo, p: EvalPassOptions): Promise<EvaluatorResult> {
    const t0 = performance.now();
    const S = this.names.length;
    const sums = new Float64Array(2 * S); // [loss sums..., instance counts...]
    const nb = this.numBatches;
    const loader = new DataLoader({
      dataset: this.o.dataset,
      globalIndices: this.indices,
      globalBatchSize: this.batchSize,
      maxExamples: Math.min(this.indices.length, nb * this.batchSize),
      dropLast: false,
      padTokenId: this.o.padTokenId,
      padDirection: this.o.padDirection ?? 'right',
      numWorkers: this.o.numWorkers ?? 0,
      prefetchFactor: this.o.prefetchFactor ?? undefined,
    });
    let instances = 0, tokens = 0, batches = 0;
    try {
      for await (const batch of loader) {
        const losses = this.batchLosses(model, batch, p);
        const [B, T] = batch.shape;
        for (let i = 0; i < B; i++) {
          const s = this.sourceOf(batch, i);
          sums[s] += losses[i]!;
          sums[S + s] += 1;
        }
        instances += B;
        tokens += B * T;
        batches++;
      }
    } finally {
      await loader.close();
    }
    const total = await this.collective.allReduceSum(sums);
    const metrics: EvalMetrics = {};
    this.names.forEach((name, s) => {
      const n = total[S + s]!;
      if (n === 0) return;
      const ce = total[s]! / n;
      metrics[`eval/${name}/CrossEntropyLoss`] = ce;
      metrics[`eval/${name}/Perplexity`] = Math.exp(ce);
    });
    return { label: this.label, type: 'lm', metrics, instances, tokens, batches, seconds: (performance.now() - t0) / 1000 };
  }

  /** (B,) per-instance mean next-token cross-entropy of one batch, as OLMo's eval_batch. // SYNC */
  private batchLosses(model: OLMo, b: LoaderBatch, p: EvalPassOptions): Float64Array {
    const [B, T] = b.shape;
    return noGrad(() => tidy(() => {
      const dev = model.device;
      const ids = tensor(b.inputIds, { shape: [B, T], dtype: 'int64', device: dev }); // (B, T)
      const attn = b.attentionMask ? tensor(b.attentionMask, { shape: [B, T], device: dev }) : null;
      // OLMo's get_labels: -100 where the label mask is false or attention is 0.
      let labels = ids;
      if (b.labelMask) labels = labels.maskedFill(tensor(b.labelMask, { shape: [B, T], dtype: 'bool', device: dev }).logicalNot(), -100);
      if (attn) labels = labels.maskedFill(attn.eq(0), -100);
      const logits = evalForward(model, ids, p.precision, attn); // (B, T, V)
      const V = logits.shape[2]!;
      const ce = crossEntropy(logits.slice(1, 0, T - 1).float().reshape(-1, V), labels.slice(1, 1, T).reshape(-1), { ignoreIndex: -100, reduction: 'none' }); // (B·(T-1))
      return ce.view(B, T - 1).mean(-1).toFloat64Array(); // (B,)
    }));
  }

  private sourceOf(b: LoaderBatch, row: number): number {
    if (!this.o.sources) return 0;
    const name = b.metadata?.[row]?.label;
    const s = typeof name === 'string' ? this.names.indexOf(name) : -1;
    if (s < 0) throw new DataError(`instance ${b.index[row]} of '${this.label}' has no dataset label among ${this.names.join(', ')}`, { key: 'data.datasets' });
    return s;
  }

  close(): void {
    this.o.dataset.close();
  }
}
