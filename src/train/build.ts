// Builds what a training run needs from a TrainConfig: the model, the optimizer with OLMo's
// parameter groups, the dataset and its epoch order (saved as train_data/global_indices.npy), and
// the data fingerprint a resume is checked against.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/errors';
import type { TrainConfig } from '../config/train';
import { BatchSizeSchedule } from '../data/batch-schedule';
import { buildMemmapDataset } from '../data/config';
import { buildGlobalIndices, saveGlobalIndices } from '../data/global-indices';
import type { MemMapDataset } from '../data/memmap-dataset';
import { OLMo } from '../model/olmo';
import type { NamedParameter } from '../nn/module';
import type { Device } from '../tensor/dtype';
import { AdamW } from '../optim/adamw';
import { LionW } from '../optim/lion';
import type { Optimizer } from '../optim/optimizer';
import { buildParamGroups } from '../optim/param-groups';

/** The model as OLMo builds it from `model:` (weights initialised from the current seed), with `activation_checkpointing`. */
export function buildModel(cfg: TrainConfig, device: Device = 'cpu'): OLMo {
  let model: OLMo;
  if (device === 'cpu') {
    model = new OLMo(cfg.model, { device });
  } else {
    // Initialised on the CPU from the seed, then copied to the GPU: a run starts from the same
    // weights whatever its device (the CPU's random stream, not the GPU's), at the cost of the
    // fp32 model in host memory for a moment.
    const host = new OLMo(cfg.model, { device: 'cpu' });
    try {
      model = new OLMo(cfg.model, { device, initParams: false });
      model.loadStateDict(host.stateDict());
    } finally {
      host.dispose();
    }
  }
  model.setActivationCheckpointing(cfg.activation_checkpointing);
  return model;
}

/**
 * AdamW (eps 1e-5) or LionW over OLMo's decay / no-decay groups, with the config's clipping. The
 * parameters are the model's, or under FSDP each rank's pieces of them (Fsdp.namedSegments()).
 */
export function buildOptimizer(cfg: TrainConfig, params: OLMo | NamedParameter[]): Optimizer {
  const groups = buildParamGroups(Array.isArray(params) ? params : params.namedParameters(), cfg.optimizer);
  for (const g of groups) {
    g.maxGradNorm = cfg.max_grad_norm;
    g.maxGradNormRatio = cfg.max_grad_norm_ratio;
  }
  const betas = cfg.optimizer.betas as [number, number];
  return cfg.optimizer.name === 'adamw' ? new AdamW(groups, { betas, eps: 1e-5 }) : new LionW(groups, { betas });
}

/** The training dataset of `data:` with instances of model.max_sequence_length tokens. */
export function buildDataset(cfg: TrainConfig): MemMapDataset {
  if (!cfg.data.paths?.length && !cfg.data.datasets) {
    throw new ConfigError('data.paths', 'no training data: set data.paths (token files from `olmo-ts prepare-data`) or data.datasets');
  }
  return buildMemmapDataset(cfg.data as never, { maxSequenceLength: cfg.model.max_sequence_length, padTokenId: cfg.model.pad_token_id });
}

/** The epoch's global instance order (OLMo's), written to save_folder/train_data/global_indices.npy. */
export function epochIndices(cfg: TrainConfig, dataset: MemMapDataset, epoch: number, runDir: string, o: { worldSize?: number; write?: boolean } = {}): Uint32Array {
  // OLMo pads (or, with drop_last, cuts) the order to a multiple of the world size.
  const worldSize = o.worldSize ?? 1;
  const indices = buildGlobalIndices({ numInstances: dataset.length, seed: cfg.seed, epoch, dropLast: cfg.data.drop_last, worldSize });
  if (o.write === false) return indices; // every rank builds the order; one writes it
  const dir = path.join(runDir, 'train_data');
  fs.mkdirSync(dir, { recursive: true });
  saveGlobalIndices(path.join(dir, 'global_indices.npy'), indices, 'olmo', {
    epoch, seed: cfg.seed, num_instances: dataset.length, world_size: worldSize, drop_last: cfg.data.drop_last, length: indices.length,
  });
  return indices;
}

/** A short hash of what decides the data stream: token files (paths and sizes), seed, shapes, batch sizes. */
export function dataFingerprint(cfg: TrainConfig, dataset: MemMapDataset): string {
  const files = dataset.options.paths.map((p) => {
    const st = fs.statSync(p);
    return [path.resolve(p), st.size];
  });
  const key = JSON.stringify({
    files, seed: cfg.seed, seq: cfg.model.max_sequence_length, dtype: dataset.dtype, batch: cfg.global_train_batch_size, drop_last: cfg.data.drop_last,
    // Only with a warm-up, so the fingerprints of constant-batch runs stay what they were.
    ...(cfg.batch_size_warmup ? { batch_sizes: BatchSizeSchedule.fromConfig(cfg).steps } : {}),
  });
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}
