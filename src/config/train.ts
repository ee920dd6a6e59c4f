// TrainConfig: every key of OLMo v0.2.5's TrainConfig (olmo/config.py) with its default and
// meaning, built from the section specs; validateTrainConfig checks an already-interpolated object
// once, including the cross-key checks OLMo makes in scripts/train.py and olmo/optim.py.
import { batchSizeSteps, batchSizeWarmupSpec } from './batch-size-warmup';
import { dataSpec, evaluatorSpec, tokenizerSpec } from './data';
import { parseDuration } from './duration';
import { ConfigError } from './errors';
import { compilerSpec, fsdpSpec, speedMonitorSpec, wandbSpec } from './infra';
import { MODEL_CONFIG_DEFAULTS, ModelConfig, parseModelConfig } from './model';
import { optimizerSpec, schedulerSpec } from './optimizer';
import { bool, custom, float, Infer, int, list, nullable, oneOf, section, str } from './spec';
import { modelJsonSchema } from './model-schema';

/** Training precisions OLMo accepts (TrainConfig.autocast_precision). */
export const PRECISIONS = ['amp_bf16', 'amp_fp16', 'fp32'] as const;
/** Sharded checkpointer implementations (ShardedCheckpointerType). */
export const SHARDED_CHECKPOINTERS = ['torch_new', 'torch_legacy', 'local'] as const;
/** Activation checkpointing strategies (ActivationCheckpointingStrategy). */
export const ACTIVATION_CHECKPOINTING = ['whole_layer', 'one_in_two', 'one_in_three', 'one_in_four', 'two_in_three', 'three_in_four', 'fine_grained'] as const;
/** One of ACTIVATION_CHECKPOINTING (two_in_three and three_in_four are OLMo v0.3.0's additions). */
export type ActivationCheckpointingStrategy = (typeof ACTIVATION_CHECKPOINTING)[number];

const modelField = custom<ModelConfig>({
  doc: 'The OLMo model (ModelConfig).',
  default: { ...MODEL_CONFIG_DEFAULTS },
  schema: modelJsonSchema(),
  parse: (v, key) => parseModelConfig(v, key),
});

const maxDurationField = custom<number | string>({
  doc: 'How long to train: an integer (or "N") is optimizer steps, "NT" is tokens (e.g. "2e12T" = 2 trillion), "Nep" is epochs. Training stops there.',
  default: 10000,
  schema: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\s*[0-9._eE+-]+\\s*(T|ep)?\\s*$' }] },
  parse: (v, key) => {
    parseDuration(v, key); // validates; the raw form is kept, as OLMo keeps it
    return v as number | string;
  },
});

/** The whole training config (the YAML file's top level). */
export const trainSpec = section(
  {
    run_name: nullable(str({ doc: 'The name of the run (required to train).' })),
    seed: int({ default: 6198, min: 0, max: Number.MAX_SAFE_INTEGER, doc: 'Seeds all initial RNG states (an integer from 0 to 2^53-1).' }),
    epoch: nullable(int({ min: 0, doc: 'Increment this when starting a new epoch (the data order depends on it).' })),
    dry_run: bool({ default: false, doc: 'If true, set everything up but do not train.' }),
    model: modelField,
    optimizer: optimizerSpec,
    scheduler: schedulerSpec,
    data: dataSpec,
    restore_dataloader: bool({ default: true, doc: 'When restarting, restore the data loader to where it left off. Set false to restart on a different dataset.' }),
    fast_forward_batches: nullable(int({ min: 0, doc: 'When restarting, skip this many batches beyond the last checkpoint (e.g. past the data behind a loss spike).' })),
    evaluators: list(evaluatorSpec, { default: [], doc: 'Evaluation configurations.' }),
    eval_interval: int({ default: 1000, min: 1, doc: 'How often (in steps) to run evaluations.' }),
    tokenizer: tokenizerSpec,
    save_folder: str({ default: 'runs/${run_name}', doc: 'The run folder: checkpoints, config.yaml, metrics.jsonl, tensorboard/. Default runs/<run_name> (runs/<config file name> without a run_name), relative to the current folder.' }),
    remote_save_folder: nullable(str({ doc: 'A folder in a cloud bucket to upload saved checkpoints to.' })),
    canceled_check_interval: int({ default: 50, min: 1, doc: 'How often (in steps) to check whether the run was canceled or reached its time limit.' }),
    save_interval: int({ default: 1000, min: 1, doc: 'How often (in steps) to save sharded training-state checkpoints.' }),
    save_interval_unsharded: nullable(int({ min: 1, doc: 'How often (if at all) to save unsharded training-state checkpoints.' })),
    save_interval_ephemeral: nullable(int({
      min: 1,
      doc: 'How often (if at all) to save ephemeral sharded checkpoints, of which only the latest is kept (for restarts after failures).',
    })),
    save_num_checkpoints_to_keep: int({ default: -1, min: -1, doc: 'How many sharded checkpoints to keep (-1 = all).' }),
    save_num_unsharded_checkpoints_to_keep: int({ default: -1, min: -1, doc: 'How many unsharded checkpoints to keep (-1 = all).' }),
    save_overwrite: bool({ default: false, doc: 'Overwrite conflicting checkpoint files (and config.yaml).' }),
    force_save_unsharded: bool({ default: false, doc: 'Save an unsharded checkpoint before training (even in a dry run), e.g. to convert a sharded checkpoint.' }),
    no_pre_train_checkpoint: bool({ default: false, doc: 'Skip saving the checkpoint before the first step.' }),
    load_path: nullable(str({
      doc: 'A training checkpoint to restore/resume from. "${path.last_checkpoint:DIR}" resolves to the latest checkpoint in DIR.',
    })),
    load_path_sharded_checkpointer: nullable(oneOf(SHARDED_CHECKPOINTERS, { doc: 'The sharded checkpointer type used to load load_path.' })),
    reset_optimizer_state: bool({
      default: false,
      doc: 'Restore only the model from the checkpoint and start a fresh optimizer, with a new warmup (t_warmup long) that meets the configured schedule.',
    }),
    reset_trainer_state: bool({ default: false, doc: 'Do not restore the trainer state (step, tokens seen, data position) from the checkpoint.' }),
    sharded_checkpointer: oneOf(SHARDED_CHECKPOINTERS, { default: 'torch_legacy', doc: 'The sharded checkpointer used to save checkpoints during training.' }),
    new_style_checkpoints: nullable(bool({ doc: 'Deprecated. Use sharded_checkpointer instead.' })),
    max_duration: maxDurationField,
    global_train_batch_size: int({ default: 512, min: 1, doc: 'The effective global batch size (instances per optimizer step, all ranks); with batch_size_warmup, the size after the warm-up.' }),
    batch_size_warmup: nullable(batchSizeWarmupSpec),
    device_train_batch_size: nullable(int({ min: 1, doc: 'Do not set: computed as global_train_batch_size // world_size.' })),
    device_train_microbatch_size: int({ default: 16, min: 1, doc: 'Instances per forward/backward pass on each device; gradients accumulate over micro-batches.' }),
    device_eval_batch_size: int({ default: 16, min: 1, doc: 'Evaluation instances per forward pass on each device.' }),
    eval_subset_num_batches: int({ default: -1, min: -1, doc: 'Batches to evaluate from each dataset (-1 = all).' }),
    eval_on_load: bool({ default: false, doc: 'When resuming from a checkpoint, run the evaluators right away.' }),
    device_train_grad_accum: nullable(int({ min: 1, doc: 'Do not set: computed as device_train_batch_size // device_train_microbatch_size.' })),
    max_grad_norm: nullable(float({ min: 0, exclusiveMin: true, doc: 'Clip the global gradient norm to this value if set.' })),
    max_grad_norm_ratio: nullable(float({
      min: 0,
      exclusiveMin: true,
      doc: 'If set, clip each parameter\'s gradient norm to max_grad_norm_ratio * exp_avg(norm(grad)) (adaptive clipping); takes priority over max_grad_norm.',
    })),
    precision: nullable(oneOf(PRECISIONS, { doc: 'Training precision: "amp_bf16", "amp_fp16" or "fp32".' })),
    wandb: nullable(wandbSpec),
    speed_monitor: speedMonitorSpec,
    console_log_interval: int({ default: 1, min: 1, doc: 'How often (in steps) to log to the console.' }),
    compile: nullable(compilerSpec),
    fsdp: fsdpSpec,
    softmax_auxiliary_loss: bool({
      default: false,
      doc: 'Add PaLM\'s auxiliary z-loss (1e-4 * logsumexp(logits)^2), which keeps the softmax normaliser close to 1.',
    }),
    fused_loss: nullable(bool({
      doc: 'Compute the LM head and the loss (cross-entropy and z-loss) as one fused, chunked operation that never holds the full float32 logits (olmo-ts\'s native fused head, the role flash_attn\'s fused loss has in later OLMo versions). null (default) = on; false = the plain head + loss; the losses and gradients agree within bf16/fp32 rounding.',
    })),
    time_limit: nullable(float({
      default: 60 * 60 * 47.5,
      min: 0,
      exclusiveMin: true,
      doc: 'Seconds to train before saving a checkpoint and stopping early (default 47.5 hours); null for no limit.',
    })),
    extra_steps_after_cancel: int({ default: 10, min: 0, doc: 'Steps to keep training after a cancel-triggered checkpoint, so a restart overlaps in metrics.' }),
    early_stopping_factor: nullable(float({
      min: 0,
      exclusiveMin: true,
      doc: 'Cancel the run when, after warmup, the loss exceeds this factor times its recent average.',
    })),
    save_data_indices: bool({ default: true, doc: 'Save the training-data indices of every batch for each rank.' }),
    python_profiling: bool({ default: false, doc: 'Profile the host code on batches 6, 7 and 8.' }),
    torch_profiling: bool({ default: false, doc: 'Run the torch profiler on batches 6, 7 and 8.' }),
    stop_at: nullable(int({ min: 0, doc: 'Stop at this step (before max_duration).' })),
    activation_checkpointing: nullable(oneOf(ACTIVATION_CHECKPOINTING, { doc: 'Recompute activations in backward instead of keeping them: whole_layer (every block), one_in_two/one_in_three/one_in_four (blocks with index % N == 0), two_in_three/three_in_four (index % 3 != 0 / % 4 != 0), fine_grained (norms, attention and activation inside each block). true/false are accepted for whole_layer/null, as in OLMo.' })),
  },
  { title: 'TrainConfig', doc: 'OLMo training configuration (olmo/config.py TrainConfig, v0.2.5).' },
);

/** The parsed training config: OLMo's TrainConfig with every key filled in. */
export interface TrainConfig extends Infer<typeof trainSpec> {}

/** OLMo's legacy rewrites (TrainConfig/OptimizerConfig.update_legacy_settings), on the raw tree. */
export function updateLegacySettings(raw: Record<string, unknown>): Record<string, unknown> {
  const out = { ...raw };
  if (out.activation_checkpointing === false) out.activation_checkpointing = null;
  if (out.activation_checkpointing === true) out.activation_checkpointing = 'whole_layer';
  const opt = out.optimizer;
  if (opt && typeof opt === 'object' && !Array.isArray(opt) && (opt as Record<string, unknown>).name === 'decoupled_lionw') {
    const o: Record<string, unknown> = { ...(opt as Record<string, unknown>), name: 'lionw' };
    delete o.eps;
    out.optimizer = o;
  }
  return out;
}

/**
 * Validates an already interpolated config object and fills in defaults (parseTrainConfig in
 * load.ts resolves `${...}` first). Throws ConfigError naming the key, the value and the expectation.
 */
export function validateTrainConfig(raw: unknown): TrainConfig {
  const legacy = raw && typeof raw === 'object' && !Array.isArray(raw) ? withDefaultSaveFolder(updateLegacySettings(raw as Record<string, unknown>)) : raw;
  const cfg = trainSpec.parse(legacy, '') as TrainConfig;
  checkCombinations(cfg);
  return cfg;
}

/** The save_folder of a config that sets none: runs/<run_name> (OLMo would write into the current folder). */
export function defaultSaveFolder(runName: unknown, fallbackName = 'run'): string {
  const name = typeof runName === 'string' && runName.trim() && !runName.includes('${') ? runName : fallbackName;
  return `runs/${name.replace(/[\\/]+/g, '_')}`;
}

function withDefaultSaveFolder(raw: Record<string, unknown>): Record<string, unknown> {
  return raw.save_folder === undefined ? { ...raw, save_folder: defaultSaveFolder(raw.run_name) } : raw;
}

function checkCombinations(c: TrainConfig): void {
  const s = c.scheduler;
  if (s.warmup_min_lr !== null && !(s.warmup_min_lr < c.optimizer.learning_rate)) {
    throw new ConfigError('scheduler.warmup_min_lr', `got ${s.warmup_min_lr}, expected a value below optimizer.learning_rate (${c.optimizer.learning_rate})`);
  }
  if ((s.name === 'inverse_sqrt_with_warmup' || s.name === 'max_scheduler') && Math.trunc(s.t_warmup) === 0) {
    throw new ConfigError('scheduler.t_warmup', `got ${s.t_warmup}, expected at least 1 for ${s.name} (its decay is lr * sqrt(t_warmup / t))`);
  }
  if ((s.grad_clip_warmup_steps === null) !== (s.grad_clip_warmup_factor === null)) {
    const [set, unset] = s.grad_clip_warmup_steps === null ? ['grad_clip_warmup_factor', 'grad_clip_warmup_steps'] : ['grad_clip_warmup_steps', 'grad_clip_warmup_factor'];
    throw new ConfigError(`scheduler.${unset}`, `got null while scheduler.${set} is set, expected both or neither (OLMo ignores one without the other)`);
  }
  const checkData = (d: { paths: unknown; datasets: unknown }, key: string) => {
    if (d.paths !== null && d.datasets !== null) throw new ConfigError(`${key}.datasets`, 'got both paths and datasets, expected only one of them');
  };
  checkData(c.data, 'data');
  if (c.batch_size_warmup) {
    batchSizeSteps(c.batch_size_warmup, { globalBatchSize: c.global_train_batch_size, seqLen: c.model.max_sequence_length });
    if (s.units !== 'tokens') {
      throw new ConfigError('scheduler.units', `got ${JSON.stringify(s.units)}, expected "tokens" with batch_size_warmup (the learning rate and clipping schedule must follow tokens when the batch size changes; give t_warmup and t_max in tokens)`);
    }
  }
  c.evaluators.forEach((e, i) => checkData(e.data, `evaluators.${i}.data`));
}

/** Batch-size bookkeeping OLMo's scripts/train.py does once the world size is known. */
export interface BatchSizes {
  /** global_train_batch_size // world_size. */
  deviceTrainBatchSize: number;
  /**
   * Micro-batches per optimizer step: ceil(deviceTrainBatchSize / device_train_microbatch_size).
   * OLMo splits each device batch into chunks of the micro-batch size, so a remainder becomes one
   * smaller last micro-batch (OLMo's informational device_train_grad_accum floors instead).
   */
  microBatches: number;
}

/** Derives the per-device batch size and micro-batch count; the global batch must divide evenly over ranks. */
export function deriveBatchSizes(c: TrainConfig, worldSize: number): BatchSizes {
  if (c.global_train_batch_size % worldSize !== 0) {
    throw new ConfigError('global_train_batch_size', `got ${c.global_train_batch_size}, expected a multiple of the world size (${worldSize})`);
  }
  const deviceTrainBatchSize = c.global_train_batch_size / worldSize;
  return { deviceTrainBatchSize, microBatches: Math.ceil(deviceTrainBatchSize / c.device_train_microbatch_size) };
}
