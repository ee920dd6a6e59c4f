// The `data:`, `evaluators:` and `tokenizer:` sections of a TrainConfig (OLMo's DataConfig,
// EvaluatorConfig and TokenizerConfig, v0.2.5 keys and defaults, plus memmap_dtype from v0.4.0).
import { bool, dict, Infer, int, list, nullable, oneOf, section, str } from './spec';

/** Which side padding goes on (PaddingDirection). */
export const PADDING_DIRECTIONS = ['right', 'left'] as const;
/** Which side truncation cuts (TruncationDirection). */
export const TRUNCATION_DIRECTIONS = ['right', 'left'] as const;
/** Token-file integer types (OLMo v0.4.0 DataConfig.memmap_dtype). */
export const MEMMAP_DTYPES = ['uint8', 'uint16', 'uint32', 'uint64'] as const;
/** Evaluator kinds (EvaluatorType): perplexity on token files, or a downstream task. */
export const EVALUATOR_TYPES = ['downstream', 'lm'] as const;
/** Downstream scores (OLMo's ICLMetric metric_type). */
export const ICL_METRIC_TYPES = ['acc', 'len_norm', 'pmi_dc', 'f1'] as const;

const pathList = (doc: string) => nullable(list(str({ doc: 'A local path or URL.' }), { doc }));

/** The `data:` section (also used inside each evaluator). */
export const dataSpec = section(
  {
    paths: pathList('Token files (.npy memmaps of token IDs) to train on, in order. Local paths or URLs (s3://, gs://, r2://, http(s)://). Exclusive with `datasets`.'),
    memmap_dtype: nullable(oneOf(MEMMAP_DTYPES, {
      doc: 'The integer type of the token files (added in OLMo v0.4.0; v0.2.5 always reads uint16). Null: the dtype prepare-data recorded in the files\' manifest, else uint16 (OLMo\'s default). When set it must agree with the manifests.',
    })),
    datasets: nullable(dict(list(str({ doc: 'A local path or URL.' }), { doc: 'Token files of one dataset.' }), {
      doc: 'Named groups of token files (name -> list of paths); metrics are reported per name. Exclusive with `paths`.',
    })),
    label_mask_paths: pathList('Optional boolean .npy memmaps, one per path, marking which tokens count in the loss.'),
    pad_direction: oneOf(PADDING_DIRECTIONS, { default: 'right', doc: 'Which side to pad sequences on.' }),
    generate_attention_mask: bool({ default: false, doc: 'Build an attention mask that hides padding.' }),
    num_workers: int({ default: 0, min: 0, doc: 'Data-loading worker processes (0 loads in the training process).' }),
    drop_last: bool({ default: false, doc: 'Drop the last incomplete batch.' }),
    pin_memory: bool({ default: false, doc: 'Pin host memory for faster host-to-device copies.' }),
    prefetch_factor: nullable(int({ min: 1, doc: 'Batches each worker loads ahead (only with num_workers > 0).' })),
    persistent_workers: bool({ default: false, doc: 'Keep worker processes alive between epochs.' }),
    timeout: int({ default: 0, min: 0, doc: 'Seconds to wait for a batch from a worker (0 waits forever).' }),
  },
  { title: 'DataConfig', doc: 'Training or evaluation data (OLMo DataConfig).' },
);
/** The parsed `data:` section. */
export interface DataConfig extends Infer<typeof dataSpec> {}

/** One entry of the `evaluators:` list. */
export const evaluatorSpec = section(
  {
    label: str({ doc: 'The evaluator name; metrics are logged under eval/<label>/... (required). For downstream evaluators it names the task (piqa, hellaswag, ...).' }),
    type: oneOf(EVALUATOR_TYPES, { default: 'lm', doc: '"lm": perplexity on `data`; "downstream": a multiple-choice task named by `label`.' }),
    data: dataSpec,
    device_eval_batch_size: nullable(int({ min: 1, doc: 'Per-device eval batch size; null uses the top-level device_eval_batch_size.' })),
    subset_num_batches: nullable(int({ doc: 'Evaluate only this many batches; null uses the top-level eval_subset_num_batches (-1 = all).' })),
    metric_type: nullable(oneOf(ICL_METRIC_TYPES, {
      doc: 'olmo-ts extension, downstream only: the score that ranks continuations (acc, len_norm, pmi_dc, f1 as OLMo\'s ICLMetric defines them); null uses OLMo\'s metric for the task label (acc for other tasks).',
    })),
  },
  { title: 'EvaluatorConfig', doc: 'One evaluator (OLMo EvaluatorConfig).' },
);
/** One parsed evaluator. */
export interface EvaluatorConfig extends Infer<typeof evaluatorSpec> {}

/** The `tokenizer:` section. */
export const tokenizerSpec = section(
  {
    identifier: str({
      default: 'gpt2',
      doc: 'The tokenizer: a HuggingFace hub name (e.g. "gpt2") or a path to a tokenizer.json (OLMo\'s configs use tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json).',
    }),
    truncate_direction: oneOf(TRUNCATION_DIRECTIONS, { default: 'right', doc: 'Which side to cut sequences that are too long.' }),
  },
  { title: 'TokenizerConfig', doc: 'Tokenizer (OLMo TokenizerConfig).' },
);
/** The parsed `tokenizer:` section. */
export interface TokenizerConfig extends Infer<typeof tokenizerSpec> {}
