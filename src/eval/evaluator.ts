// The evaluator interface (OLMo's olmo/eval/evaluator.py Evaluator): a labelled eval set that runs
// the model over its batches and reports metrics with OLMo's names; and the forward pass every
// evaluator shares (no gradients, the training autocast).
import { ConfigError } from '../config/errors';
import type { OLMo } from '../model/olmo';
import { autocast } from '../tensor/autograd';
import type { Tensor } from '../tensor/tensor';

/** Metric name -> value (OLMo's names, e.g. `eval/c4-validation/CrossEntropyLoss`). */
export type EvalMetrics = Record<string, number>;

/** Training precision as the config names it (`precision`). */
export type EvalPrecision = 'amp_bf16' | 'amp_fp16' | 'fp32' | null;

/** What one evaluator run produced. */
export interface EvaluatorResult {
  label: string;
  type: 'lm' | 'downstream';
  metrics: EvalMetrics;
  /** Instances (lm) or continuation rows (downstream) this rank ran. */
  instances: number;
  /** Input tokens this rank ran through the model (padding included), for throughput. */
  tokens: number;
  /** Batches this rank ran. */
  batches: number;
  seconds: number;
}

/** Options of one evaluation pass. */
export interface EvalPassOptions {
  precision: EvalPrecision;
}

/**
 * One eval set. `evaluate` expects the caller to have put the model in eval mode with gradients
 * off (see runEvaluators); it must not draw from the global random generator, so training
 * resumes exactly where it was.
 */
export interface Evaluator {
  readonly label: string;
  readonly type: 'lm' | 'downstream';
  /** Metric names this evaluator can report (for collision checks and docs). */
  readonly metricNames: readonly string[];
  evaluate(model: OLMo, o: EvalPassOptions): Promise<EvaluatorResult>;
  /** Releases files and memory; idempotent. */
  close(): void;
}

/**
 * Logits (B, T, V) of `ids` under the training precision, as OLMo's eval_batch runs the model:
 * autocast bf16/fp16 around the forward only. Call inside tidy() with gradients off.
 */
export function evalForward(model: OLMo, ids: Tensor, precision: EvalPrecision, attentionMask?: Tensor | null): Tensor {
  const forward = () => model.forward(ids, { attentionMask: attentionMask ?? null }).logits;
  if (precision === 'amp_bf16' || precision === 'amp_fp16') {
    const cuda = model.device !== 'cpu';
    if (precision === 'amp_fp16' && !cuda) throw new ConfigError('precision', 'amp_fp16 needs CUDA (fp16 autocast); use amp_bf16 or fp32 on CPU');
    return autocast(forward, { device: cuda ? 'cuda' : 'cpu', dtype: precision === 'amp_bf16' ? 'bfloat16' : 'float16' });
  }
  return forward();
}

/** OLMo's rule for how many batches an evaluator runs: subset_num_batches (else eval_subset_num_batches) when > 0, capped at the loader's length; else all. */
export function numEvalBatches(subset: number | null | undefined, globalSubset: number, loaderBatches: number): number {
  const n = subset ?? globalSubset;
  return n > 0 ? Math.min(n, loaderBatches) : loaderBatches;
}
