// The rule for OLMo keys olmo-ts accepts but does not (yet) honour: each is listed here, once,
// with what happens when a config sets it ('refuse': training stops with a ConfigError; 'warn':
// one warning at start; 'ignore': no effect and no message, the reason being documentation) and
// why. Every other key of the spec has an effect (test/unit/config/unsupported.test.ts checks
// that each key is either honoured somewhere or listed here). Loading and `config show` accept
// every key; the check runs when training starts (checkUnsupportedKeys, from the Trainer).
import { ConfigError, showValue } from './errors';
import { isUrl } from './resolvers';
import { defaultAt } from './spec';
import { TrainConfig, trainSpec } from './train';

/** What happens when a config sets a key olmo-ts does not honour. */
export type KeyAction = 'refuse' | 'warn' | 'ignore';

/** One key (or a whole section) olmo-ts does not honour. */
export interface UnsupportedKey {
  /** Dotted key; a section name covers all its sub-keys. */
  key: string;
  action: KeyAction;
  /** Why, in words a user acts on (for 'refuse' and 'warn': what to change). */
  reason: string;
  /** When it matters; default: the value differs from the key's default. */
  applies?: (cfg: TrainConfig, value: unknown) => boolean;
}

const set = (_cfg: TrainConfig, v: unknown): boolean => v !== null && v !== undefined;

/** The table. Keep entries short; delete one when its key gets implemented. */
export const UNSUPPORTED_KEYS: readonly UnsupportedKey[] = [
  // -- logging, evaluation, uploads: a user must never believe these happen --
  { key: 'wandb', action: 'refuse', applies: set, reason: 'olmo-ts does not log to Weights & Biases yet (metrics go to metrics.jsonl and tensorboard/ in the run folder); remove the wandb section (--wandb=null)' },
  { key: 'remote_save_folder', action: 'refuse', applies: set, reason: 'olmo-ts does not upload checkpoints yet; checkpoints stay in save_folder: copy them yourself and remove remote_save_folder' },
  { key: 'save_folder', action: 'refuse', applies: (_c, v) => typeof v === 'string' && isUrl(v), reason: 'olmo-ts writes runs to a local folder only (no cloud buckets yet): give a local path' },
  // -- devices and parallelism --
  { key: 'fsdp.use_orig_params', action: 'ignore', reason: 'olmo-ts always keeps the original parameter names and per-parameter views (use_orig_params: true)' },
  { key: 'compile', action: 'warn', applies: set, reason: 'olmo-ts runs the model eagerly (no torch.compile); the compile settings are ignored' },
  { key: 'python_profiling', action: 'warn', reason: 'olmo-ts has no profiler yet; nothing is profiled' },
  { key: 'torch_profiling', action: 'warn', reason: 'olmo-ts has no profiler yet; nothing is profiled' },
  { key: 'model.flash_attention', action: 'ignore', reason: "attention always uses libtorch's fused kernel where the libtorch has one" },
  { key: 'model.precision', action: 'ignore', reason: 'OLMo sets it from the top-level precision, which is what olmo-ts uses' },
  // -- what the run does --
  { key: 'fast_forward_batches', action: 'refuse', applies: set, reason: 'olmo-ts cannot skip batches on restart yet; remove it (or restart on other data with restore_dataloader: false)' },
  { key: 'early_stopping_factor', action: 'refuse', applies: set, reason: 'olmo-ts does not stop runs on a loss spike yet; remove it' },
  { key: 'data.timeout', action: 'warn', reason: 'olmo-ts waits for batches without a timeout' },
  { key: 'data.pin_memory', action: 'ignore', reason: 'batches are copied to the GPU from ordinary host memory (a step is far longer than its copy)' },
  { key: 'data.persistent_workers', action: 'ignore', reason: 'loader worker threads live for the whole run anyway' },
  { key: 'tokenizer.truncate_direction', action: 'ignore', reason: 'training reads tokenized files; it matters only when tokenizing evaluation text' },
  { key: 'optimizer.metrics_log_interval', action: 'ignore', reason: 'olmo-ts logs the total gradient norm and clipping rate every step and no per-parameter metrics' },
  // -- checkpoints: one regular format, and a sharded one for FSDP runs --
  { key: 'force_save_unsharded', action: 'warn', reason: 'olmo-ts does not convert a checkpoint at start-up and then exit; run `olmo-ts unshard` on a sharded checkpoint instead' },
  { key: 'sharded_checkpointer', action: 'ignore', reason: "a sharded (FSDP) run writes olmo-ts's own sharded format, like OLMo's 'local' one (`olmo-ts unshard` makes a regular checkpoint of it); PyTorch's formats are not written" },
  { key: 'load_path_sharded_checkpointer', action: 'ignore', reason: 'the format of a checkpoint to load is read from the checkpoint itself' },
  { key: 'new_style_checkpoints', action: 'ignore', reason: 'deprecated in OLMo; olmo-ts has one checkpoint format' },
  { key: 'no_pre_train_checkpoint', action: 'ignore', reason: 'olmo-ts never writes a checkpoint before the first step (as if it were true)' },
  // -- bookkeeping OLMo computes or uses only for W&B --
  { key: 'device_train_batch_size', action: 'ignore', reason: 'computed as global_train_batch_size / world size (as OLMo does)' },
  { key: 'device_train_grad_accum', action: 'ignore', reason: 'computed from the batch sizes (as OLMo does)' },
  { key: 'canceled_check_interval', action: 'ignore', reason: 'time_limit and signals are checked before every step' },
  { key: 'extra_steps_after_cancel', action: 'ignore', reason: 'a time_limit or signal stop saves a checkpoint and stops at once' },
];

function valueAt(cfg: TrainConfig, key: string): unknown {
  let v: unknown = cfg;
  for (const k of key.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

function differsFromDefault(key: string, v: unknown): boolean {
  const d = defaultAt(trainSpec, key.split('.'));
  return !d.found || JSON.stringify(d.value) !== JSON.stringify(v);
}

/** The table entry covering a dotted key (the key itself or its section), if any. */
export function unsupportedEntry(key: string): UnsupportedKey | undefined {
  return UNSUPPORTED_KEYS.find((e) => key === e.key || key.startsWith(e.key + '.'));
}

/**
 * Applies the table to a config about to train: throws ConfigError for the first refused key that
 * is set, and returns one warning per warned key that is set (the caller prints them once).
 */
export function checkUnsupportedKeys(cfg: TrainConfig): string[] {
  const warnings: string[] = [];
  for (const e of UNSUPPORTED_KEYS) {
    if (e.action === 'ignore') continue;
    const v = valueAt(cfg, e.key);
    if (!(e.applies ? e.applies(cfg, v) : differsFromDefault(e.key, v))) continue;
    if (e.action === 'refuse') throw new ConfigError(e.key, `got ${showValue(v)}: ${e.reason}`);
    warnings.push(`${e.key}: ${e.reason}`);
  }
  return warnings;
}
