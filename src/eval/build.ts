// Builds a run's evaluators from its config (OLMo's build_evaluators: the `evaluators:` list with
// device_eval_batch_size / eval_subset_num_batches fallbacks) and runs them (OLMo's Trainer.eval:
// model in eval mode, no gradients, the training autocast; the mode is restored afterwards).
import { ConfigError } from '../config/errors';
import type { ModelConfig } from '../config/model';
import type { TrainConfig } from '../config/train';
import { buildMemmapDataset } from '../data/config';
import { DataError } from '../data/errors';
import type { TextTokenizer } from '../data/tokenizer';
import type { OLMo } from '../model/olmo';
import { EvalCollective, SINGLE_PROCESS } from './collective';
import { DownstreamEvaluator, MODEL_CTX_LEN, buildICLSamples } from './downstream';
import type { EvalMetrics, EvalPrecision, Evaluator, EvaluatorResult } from './evaluator';
import type { ICLMetricType } from './icl-metric';
import { LanguageModelingEvaluator } from './lm';
import { findTaskFiles, readTaskDocs } from './task-files';
import { TASKS, UNSUPPORTED_TASKS } from './tasks';

/** Options of {@link buildEvaluators}. */
export interface BuildEvaluatorsOptions {
  /** Ranks evaluating together (default: one process). */
  collective?: EvalCollective;
  /** Build only the evaluators with these labels (`olmo-ts eval --evaluators`). */
  only?: readonly string[];
  /** Tokenizer for downstream tasks; default: loaded from `tokenizer.identifier` with the model's EOS/pad ids. */
  tokenizer?: TextTokenizer;
  /** The model that will be evaluated when it is not `cfg.model` (a checkpoint's own config). */
  model?: ModelConfig;
}

/** Re-labels a data error with the evaluator's config key (evaluators.N.data.paths, ...). */
function underEvaluator<T>(i: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DataError && e.key && e.file === undefined && (e.key === 'data' || e.key.startsWith('data.'))) {
      throw new DataError(e.detail, { key: `evaluators.${i}.${e.key}`, cause: e });
    }
    throw e;
  }
}

/**
 * The evaluators of `cfg.evaluators`, in config order, with their data read and (for downstream
 * tasks) tokenized now, so a bad path or task file fails before training starts. Two evaluators
 * that would log the same metric name are refused (OLMo would silently overwrite one).
 */
export async function buildEvaluators(cfg: TrainConfig, o: BuildEvaluatorsOptions = {}): Promise<Evaluator[]> {
  const collective = o.collective ?? SINGLE_PROCESS;
  const model = o.model ?? cfg.model;
  const labels = cfg.evaluators.map((e) => e.label);
  if (o.only) {
    const unknown = o.only.filter((l) => !labels.includes(l));
    if (unknown.length) throw new ConfigError('evaluators', `no evaluator labelled ${unknown.map((u) => JSON.stringify(u)).join(', ')}; the config has ${labels.length ? labels.map((l) => JSON.stringify(l)).join(', ') : 'none'}`);
  }
  let tokenizer = o.tokenizer;
  const out: Evaluator[] = [];
  const owner = new Map<string, string>();
  try {
    for (const [i, e] of cfg.evaluators.entries()) {
      if (o.only && !o.only.includes(e.label)) continue;
      const key = `evaluators.${i}`;
      const common = {
        label: e.label,
        batchSize: e.device_eval_batch_size ?? cfg.device_eval_batch_size,
        subsetNumBatches: e.subset_num_batches,
        globalSubsetNumBatches: cfg.eval_subset_num_batches,
        seed: cfg.seed,
        dropLast: e.data.drop_last,
        padTokenId: model.pad_token_id,
        collective,
      };
      let ev: Evaluator;
      if (e.type === 'lm') {
        if (e.metric_type !== null) throw new ConfigError(`${key}.metric_type`, `got ${JSON.stringify(e.metric_type)}, but it only applies to downstream evaluators`);
        if (!e.data.paths?.length && !e.data.datasets) throw new ConfigError(`${key}.data`, 'an lm evaluator needs data.paths or data.datasets (token files, as for training)');
        const dataset = underEvaluator(i, () => buildMemmapDataset(e.data as never, { maxSequenceLength: cfg.model.max_sequence_length, padTokenId: model.pad_token_id }));
        if (dataset.length === 0) {
          dataset.close();
          throw new ConfigError(`${key}.data`, `the token files of '${e.label}' hold no complete instance of ${cfg.model.max_sequence_length} tokens`);
        }
        ev = new LanguageModelingEvaluator({
          ...common, dataset, sources: e.data.datasets ? Object.keys(e.data.datasets) : null,
          padDirection: e.data.pad_direction, numWorkers: e.data.num_workers, prefetchFactor: e.data.prefetch_factor,
        });
      } else {
        const why = UNSUPPORTED_TASKS.get(e.label);
        if (why) throw new ConfigError(`${key}.label`, `${JSON.stringify(e.label)}: ${why}`);
        if (e.data.datasets) throw new ConfigError(`${key}.data.datasets`, 'a downstream evaluator reads task files from data.paths, not datasets');
        const metricType: ICLMetricType = e.metric_type ?? TASKS.get(e.label)?.metricType ?? 'acc';
        const docs = readTaskDocs(e.label, findTaskFiles(e.label, e.data.paths, `${key}.data.paths`));
        tokenizer ??= await loadTaskTokenizer(cfg, model);
        // OLMo cuts queries to 2048 tokens; a model with learned positions cannot go past its own length.
        const modelCtxLen = model.rope || model.alibi ? MODEL_CTX_LEN : Math.min(MODEL_CTX_LEN, model.max_sequence_length);
        const samples = await buildICLSamples(docs, (t) => tokenizer!.encodeBatch(t), { modelCtxLen, pmiDc: metricType === 'pmi_dc' });
        ev = new DownstreamEvaluator({ ...common, metricType, samples, modelCtxLen });
      }
      out.push(ev);
      for (const name of ev.metricNames) {
        const prev = owner.get(name);
        if (prev !== undefined) throw new ConfigError(`${key}.label`, `evaluator '${e.label}' would log ${name}, which '${prev}' logs too (OLMo names lm metrics by dataset name); rename one`);
        owner.set(name, e.label);
      }
    }
  } catch (err) {
    for (const ev of out) ev.close();
    throw err;
  }
  return out;
}

async function loadTaskTokenizer(cfg: TrainConfig, model: ModelConfig): Promise<TextTokenizer> {
  const { loadTokenizer } = await import('../data/tokenizer');
  return loadTokenizer({ identifier: cfg.tokenizer.identifier, eosTokenId: model.eos_token_id, padTokenId: model.pad_token_id });
}

/** What one evaluation (every evaluator once) produced. */
export interface EvalReport {
  /** Every evaluator's metrics merged (OLMo's eval_metrics). */
  metrics: EvalMetrics;
  results: EvaluatorResult[];
  /** Wall seconds of the whole evaluation. */
  seconds: number;
}

/**
 * OLMo's Trainer.eval: runs each evaluator once with the model in eval mode (no dropout), under
 * the training autocast, without gradients; the model's train/eval mode is restored afterwards,
 * also on an error. Nothing here draws from the global random generator.
 */
export async function runEvaluators(model: OLMo, evaluators: readonly Evaluator[], o: { precision: EvalPrecision }): Promise<EvalReport> {
  const t0 = performance.now();
  const wasTraining = model.training;
  model.eval();
  const results: EvaluatorResult[] = [];
  try {
    for (const e of evaluators) results.push(await e.evaluate(model, { precision: o.precision }));
  } finally {
    model.train(wasTraining);
  }
  const metrics: EvalMetrics = {};
  for (const r of results) Object.assign(metrics, r.metrics);
  return { metrics, results, seconds: (performance.now() - t0) / 1000 };
}
