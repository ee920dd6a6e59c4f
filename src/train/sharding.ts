// What the trainer does differently when the model is sharded (FSDP): which `fsdp:` settings apply,
// reading any checkpoint into this rank's pieces, and the sharded and unsharded saves. OLMo's rules:
// a run of several processes is sharded as `fsdp:` says (NO_SHARD is plain data parallelism), the
// master weights and optimizer state are fp32, parameters are gathered (and, for `pure`, gradients
// reduced) in the autocast dtype.
import type { TrainConfig } from '../config/train';
import type { Fsdp, FsdpOptions } from '../dist/fsdp';
import type { DType } from '../tensor/dtype';
import type { Tensor } from '../tensor/tensor';
import { CheckpointError, LoadedCheckpoint, disposeCheckpoint, loadCheckpoint, resolveCheckpointPath } from './checkpoint';
import { loadShardedFull, loadShardedPart, shardedMetadata } from './sharded-checkpoint';

/**
 * The Fsdp options a run uses, or null when the model is not sharded: one process (unless `force`),
 * or `fsdp.sharding_strategy: NO_SHARD`, which DataParallel implements (fp32 bucketed all-reduce).
 */
export function shardingFor(cfg: TrainConfig, worldSize: number, force = false, onWarning?: (m: string) => void): FsdpOptions | null {
  const f = cfg.fsdp;
  if ((worldSize === 1 && !force) || f.sharding_strategy === 'NO_SHARD') return null;
  const amp: DType = cfg.precision === 'amp_bf16' ? 'bfloat16' : cfg.precision === 'amp_fp16' ? 'float16' : 'float32';
  return {
    strategy: f.sharding_strategy,
    wrapping: f.wrapping_strategy,
    paramDtype: amp,
    reduceDtype: f.precision === 'mixed' ? 'float32' : amp,
    numReplicas: (f as { hybrid_sharding_num_model_replicas?: number | null }).hybrid_sharding_num_model_replicas ?? null,
    onWarning,
  };
}

/**
 * Reads a checkpoint (unsharded, or sharded at any world size) as this rank's pieces of every
 * parameter and optimizer state: the same rank's files when the world size is the one it was saved
 * at, else the full state cut to this rank's pieces. `modelShapes` checks a full checkpoint first.
 */
export async function readShardedCheckpoint(where: string, fsdp: Fsdp, rank: number, worldSize: number, modelShapes: Map<string, number[]>): Promise<LoadedCheckpoint> {
  const dir = resolveCheckpointPath(where);
  const meta = shardedMetadata(dir);
  if (meta && meta.world_size === worldSize) return loadShardedPart(dir, rank);
  const full = meta ? await loadShardedFull(dir) : await loadCheckpoint(dir);
  try {
    for (const [name, shape] of modelShapes) {
      const t = full.model.get(name);
      if (!t) throw new CheckpointError(`${dir}: the checkpoint has no weights for parameter '${name}' (a different model config?)`);
      if (t.shape.join() !== shape.join()) throw new CheckpointError(`${dir}: '${name}' has shape [${t.shape}] in the checkpoint but [${shape}] in the model`);
    }
    const cut = (m: Map<string, Tensor>, what: string): Map<string, Tensor> => {
      try {
        return fsdp.shardOf(m);
      } catch (e) {
        throw new CheckpointError(`${dir}: ${what}: ${(e as Error).message}`);
      }
    };
    const tensors: LoadedCheckpoint['optimizer']['tensors'] = {};
    for (const [kind, byName] of Object.entries(full.optimizer.tensors)) {
      tensors[kind] = Object.fromEntries(cut(new Map(Object.entries(byName)), `optimizer ${kind}`));
    }
    return { dir, model: cut(full.model, 'weights'), optimizer: { tensors, values: full.optimizer.values }, trainer: full.trainer, configYaml: full.configYaml };
  } finally {
    disposeCheckpoint(full);
  }
}
