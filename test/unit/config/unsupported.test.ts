// The config rule: every key of the training config either takes effect (HONOURED names the
// source file where it does, and the key must appear there) or is listed in
// src/config/unsupported.ts as refused, warned about or ignored, with a reason. A new key fails
// here until it is classified; a listed key's treatment is checked (refuse -> ConfigError naming
// it; warn -> one warning, only when set).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseTrainConfig } from '../../../src/config';
import { ConfigError } from '../../../src/config/errors';
import { MODEL_CONFIG_KEYS } from '../../../src/config/model';
import type { Field } from '../../../src/config/spec';
import { trainSpec } from '../../../src/config/train';
import { UNSUPPORTED_KEYS, checkUnsupportedKeys, unsupportedEntry } from '../../../src/config/unsupported';

const ROOT = path.resolve(__dirname, '../../..');

/** Where each honoured key takes effect: a source file that reads it (as `.key`, `'key'` or `"key"`). */
const HONOURED: Record<string, string> = {
  'fsdp.sharding_strategy': 'src/train/sharding.ts', 'fsdp.wrapping_strategy': 'src/train/sharding.ts', 'fsdp.precision': 'src/train/sharding.ts', 'fsdp.hybrid_sharding_num_model_replicas': 'src/train/sharding.ts',
  run_name: 'src/config/load.ts', seed: 'src/train/trainer.ts', epoch: 'src/train/trainer.ts', dry_run: 'src/train/trainer.ts',
  'optimizer.name': 'src/train/build.ts', 'optimizer.learning_rate': 'src/optim/scheduler.ts', 'optimizer.weight_decay': 'src/optim/param-groups.ts',
  'optimizer.betas': 'src/train/build.ts', 'optimizer.no_decay_norm_and_bias': 'src/optim/param-groups.ts',
  'optimizer.decay_norm_and_bias': 'src/optim/param-groups.ts', 'optimizer.decay_embeddings': 'src/optim/param-groups.ts',
  'scheduler.name': 'src/optim/scheduler.ts', 'scheduler.units': 'src/optim/scheduler.ts', 'scheduler.t_warmup': 'src/optim/scheduler.ts',
  'scheduler.t_max': 'src/optim/scheduler.ts', 'scheduler.alpha_f': 'src/optim/scheduler.ts', 'scheduler.grad_clip_warmup_steps': 'src/optim/scheduler.ts',
  'scheduler.grad_clip_warmup_factor': 'src/optim/scheduler.ts', 'scheduler.warmup_min_lr': 'src/optim/scheduler.ts',
  'data.paths': 'src/data/config.ts', 'data.memmap_dtype': 'src/data/config.ts', 'data.datasets': 'src/data/config.ts',
  'data.label_mask_paths': 'src/data/config.ts', 'data.pad_direction': 'src/data/config.ts', 'data.generate_attention_mask': 'src/data/config.ts',
  'data.num_workers': 'src/train/trainer.ts', 'data.drop_last': 'src/train/build.ts', 'data.prefetch_factor': 'src/train/trainer.ts',
  restore_dataloader: 'src/train/trainer.ts', 'tokenizer.identifier': 'src/train/trainer.ts', save_folder: 'src/train/trainer.ts', // URLs refused
  save_interval: 'src/train/trainer.ts', save_interval_unsharded: 'src/train/trainer.ts', save_interval_ephemeral: 'src/train/trainer.ts',
  save_num_checkpoints_to_keep: 'src/train/trainer.ts', save_num_unsharded_checkpoints_to_keep: 'src/train/trainer.ts',
  save_overwrite: 'src/train/trainer.ts', load_path: 'src/train/trainer.ts', reset_optimizer_state: 'src/train/trainer.ts',
  reset_trainer_state: 'src/train/trainer.ts', max_duration: 'src/train/trainer.ts', global_train_batch_size: 'src/train/trainer.ts',
  device_train_microbatch_size: 'src/train/trainer.ts', max_grad_norm: 'src/train/build.ts', max_grad_norm_ratio: 'src/train/build.ts',
  precision: 'src/train/trainer.ts', 'speed_monitor.window_size': 'src/train/trainer.ts', 'speed_monitor.gpu_flops_available': 'src/train/trainer.ts',
  console_log_interval: 'src/train/trainer.ts', softmax_auxiliary_loss: 'src/train/trainer.ts', fused_loss: 'src/train/loss.ts', time_limit: 'src/train/trainer.ts',
  stop_at: 'src/train/trainer.ts', save_data_indices: 'src/train/trainer.ts', activation_checkpointing: 'src/train/build.ts',
  evaluators: 'src/eval/build.ts', eval_interval: 'src/eval/in-loop.ts', device_eval_batch_size: 'src/eval/build.ts', eval_subset_num_batches: 'src/eval/build.ts', eval_on_load: 'src/train/trainer.ts',
  'batch_size_warmup.start': 'src/config/batch-size-warmup.ts', 'batch_size_warmup.doubling_interval': 'src/config/batch-size-warmup.ts',
  'batch_size_warmup.schedule': 'src/config/batch-size-warmup.ts',
  // model: the OLMo model reads its config (helpers in src/config/model.ts derive some sizes).
  'model.d_model': 'src/model/block.ts', 'model.n_heads': 'src/model/block.ts', 'model.n_kv_heads': 'src/config/model.ts',
  'model.clip_qkv': 'src/model/block.ts', 'model.n_layers': 'src/model/olmo.ts', 'model.mlp_ratio': 'src/config/model.ts',
  'model.mlp_hidden_size': 'src/config/model.ts', 'model.activation_type': 'src/model/block.ts', 'model.block_type': 'src/model/block.ts',
  'model.block_group_size': 'src/model/olmo.ts', 'model.alibi': 'src/model/olmo.ts', 'model.alibi_bias_max': 'src/model/attention.ts',
  'model.rope': 'src/model/olmo.ts', 'model.rope_full_precision': 'src/model/attention.ts', 'model.rope_theta': 'src/model/attention.ts',
  'model.attention_dropout': 'src/model/block.ts', 'model.multi_query_attention': 'src/config/model.ts', 'model.attention_layer_norm': 'src/model/block.ts',
  'model.residual_dropout': 'src/model/block.ts', 'model.embedding_dropout': 'src/model/olmo.ts', 'model.layer_norm_type': 'src/model/block.ts',
  'model.layer_norm_with_affine': 'src/model/block.ts', 'model.attention_layer_norm_with_affine': 'src/model/block.ts',
  'model.max_sequence_length': 'src/model/olmo.ts', 'model.include_bias': 'src/model/block.ts', 'model.bias_for_layer_norm': 'src/config/model.ts',
  'model.scale_logits': 'src/model/olmo.ts', 'model.vocab_size': 'src/model/generate.ts', 'model.embedding_size': 'src/config/model.ts',
  'model.weight_tying': 'src/model/olmo.ts', 'model.eos_token_id': 'src/train/trainer.ts', 'model.pad_token_id': 'src/train/trainer.ts',
  'model.init_fn': 'src/model/init.ts', 'model.init_std': 'src/model/init.ts',
  'model.init_device': 'src/train/device.ts',
  'model.init_cutoff_factor': 'src/model/init.ts',
};

/** Every key of the spec: section keys recursively; the model's keys; lists of sections as one key. */
function allKeys(): string[] {
  const out: string[] = [];
  const walk = (fields: Readonly<Record<string, Field<unknown>>>, prefix: string) => {
    for (const [k, f] of Object.entries(fields)) {
      const key = prefix + k;
      if (key === 'model') { for (const m of MODEL_CONFIG_KEYS) out.push(`model.${m}`); continue; }
      const sub = f.fields ?? f.inner?.fields;
      if (sub) walk(sub, `${key}.`);
      else out.push(key);
    }
  };
  walk(trainSpec.fields!, '');
  return out;
}

test('every config key takes effect somewhere or is listed as not honoured (with a reason), never both', () => {
  const keys = allKeys();
  assert.ok(keys.length > 120, `${keys.length} keys`);
  const unclassified: string[] = [];
  for (const key of keys) {
    const entry = unsupportedEntry(key);
    const where = HONOURED[key];
    // Both only for keys honoured for some values and refused for others (save_folder: URLs).
    assert.ok(!(entry && where) || (entry.applies && entry.action === 'refuse'), `${key} is both honoured (${where}) and listed as ${entry?.action}`);
    if (entry) assert.ok(entry.reason.length > 10, `${key}: a reason`);
    if (entry && !where) continue;
    if (!where) { unclassified.push(key); continue; }
    const leaf = key.split('.').pop()!;
    const text = fs.readFileSync(path.join(ROOT, where), 'utf8');
    assert.match(text, new RegExp(`[.'"]${leaf}\\b`), `${key}: ${where} does not read it`);
  }
  assert.deepEqual(unclassified, [], 'keys with no effect and no entry in src/config/unsupported.ts (implement them or list them there)');
  for (const k of Object.keys(HONOURED)) assert.ok(keys.includes(k), `HONOURED names ${k}, which is not a config key`);
  for (const e of UNSUPPORTED_KEYS) assert.ok(keys.some((k) => k === e.key || k.startsWith(e.key + '.')), `unsupported.ts lists ${e.key}, which is not a config key`);
});

test('refused keys are ConfigErrors naming the key when set; warned keys give one warning when set, none at their defaults', () => {
  assert.deepEqual(checkUnsupportedKeys(parseTrainConfig({})), [], 'an all-default config trains without a word');
  const refused: [Record<string, unknown>, string][] = [
    [{ wandb: { project: 'p' } }, 'wandb'], [{ remote_save_folder: 's3://b/r' }, 'remote_save_folder'], [{ save_folder: 's3://b/r' }, 'save_folder'],
    [{ fast_forward_batches: 3 }, 'fast_forward_batches'], [{ early_stopping_factor: 2 }, 'early_stopping_factor'],
  ];
  for (const [raw, key] of refused) {
    assert.throws(() => checkUnsupportedKeys(parseTrainConfig(raw)), (e: unknown) => e instanceof ConfigError && e.key === key && /olmo-ts/.test(e.message), key);
  }
  for (const dev of ['cpu', 'meta', null, 'cuda', 'cuda:0']) assert.deepEqual(checkUnsupportedKeys(parseTrainConfig({ model: { init_device: dev } })), []);
  const w = checkUnsupportedKeys(parseTrainConfig({ evaluators: [{ label: 'x', data: { paths: ['a.npy'] } }], fsdp: { precision: 'mixed' }, compile: {}, activation_checkpointing: 'whole_layer', torch_profiling: true, data: { timeout: 5 } }));
  assert.deepEqual(w.map((m) => m.split(':')[0]), ['compile', 'torch_profiling', 'data.timeout']);
  // OLMo's own configs load (config show), and what training them would refuse or warn about is explicit.
  const { loadTrainConfig } = require('../../../src/config') as typeof import('../../../src/config');
  const olmo1b = loadTrainConfig(path.join(ROOT, 'configs/official/OLMo-1B.yaml'), ['--save_folder=runs/x'], { env: {}, onWarning: () => undefined, validatePaths: false });
  assert.throws(() => checkUnsupportedKeys(olmo1b), /wandb: got .*: olmo-ts does not log to Weights & Biases yet/);
  const noWandb = { ...olmo1b, wandb: null };
  assert.deepEqual(checkUnsupportedKeys(noWandb).map((m) => m.split(':')[0]), []);
});
