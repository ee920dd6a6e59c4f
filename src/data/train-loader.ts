// One call for the trainer: OLMo's build_train_dataloader - the dataset from the data config, the
// epoch's global order (saved to <save_folder>/train_data/global_indices.npy by local rank 0) and
// this rank's prefetching loader.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataConfig, buildMemmapDataset } from './config';
import { buildGlobalIndices, loadGlobalIndices, saveGlobalIndices } from './global-indices';
import { DataLoader } from './loader';
import { MemMapDataset } from './memmap-dataset';

/** What `createTrainLoader` needs beyond the data config. */
export interface TrainLoaderOptions {
  data: DataConfig;
  /** `model.max_sequence_length`. */
  maxSequenceLength: number;
  /** `model.pad_token_id`. */
  padTokenId: number;
  /** `global_train_batch_size`. */
  globalBatchSize: number;
  /** `seed` (default data.seed, else 6198 as OLMo's configs). */
  seed?: number;
  /** `epoch` (default 0). */
  epoch?: number;
  rank?: number;
  worldSize?: number;
  /** Local rank on this file system; only 0 writes global_indices.npy (default: rank). */
  fsLocalRank?: number;
  /** Instances already trained on this epoch (`global_train_examples_seen_this_epoch`). */
  startIndex?: number;
  /** `<save_folder>/train_data`: where global_indices.npy is written, as OLMo does. */
  workDir?: string;
  /** Attach {path}/{label} metadata to rows (OLMo's train loader does not: default false). */
  includeInstanceMetadata?: boolean;
}

/** The pieces, so the trainer can log, inspect and close them. */
export interface TrainData {
  dataset: MemMapDataset;
  globalIndices: Uint32Array;
  /** Path of the saved order, when workDir was given. */
  globalIndicesFile?: string;
  loader: DataLoader;
  /** Closes the loader's workers and the dataset's files; idempotent. */
  close(): Promise<void>;
}

/**
 * Builds dataset, global order and this rank's loader. With `workDir`, rank 0 writes the order
 * (OLMo's headerless uint32 layout) and other ranks read it back once it exists - call this after
 * a barrier on ranks > 0, as OLMo's `barrier()` does.
 */
export function createTrainLoader(o: TrainLoaderOptions): TrainData {
  const dataset = buildMemmapDataset(o.data, { maxSequenceLength: o.maxSequenceLength, padTokenId: o.padTokenId, includeInstanceMetadata: o.includeInstanceMetadata ?? false });
  const worldSize = o.worldSize ?? 1, rank = o.rank ?? 0;
  let globalIndices: Uint32Array;
  let file: string | undefined;
  const build = (): Uint32Array => buildGlobalIndices({
    numInstances: dataset.length, seed: o.seed ?? o.data.seed ?? 6198, epoch: o.epoch ?? 0, dropLast: o.data.drop_last ?? false, worldSize,
  });
  if (o.workDir) {
    file = path.join(o.workDir, 'global_indices.npy');
    if ((o.fsLocalRank ?? rank) === 0) {
      globalIndices = build();
      saveGlobalIndices(file, globalIndices);
    } else {
      globalIndices = fs.existsSync(file) ? loadGlobalIndices(file) : build();
    }
  } else {
    globalIndices = build();
  }
  const loader = new DataLoader({
    dataset, globalIndices, globalBatchSize: o.globalBatchSize, rank, worldSize, startIndex: o.startIndex,
    dropLast: o.data.drop_last ?? false, padDirection: o.data.pad_direction ?? 'right', padTokenId: o.padTokenId,
    numWorkers: o.data.num_workers ?? 0, prefetchFactor: o.data.prefetch_factor ?? 2,
  });
  let closed = false;
  return {
    dataset, globalIndices, globalIndicesFile: file, loader,
    async close() {
      if (closed) return;
      closed = true;
      await loader.close();
      dataset.close();
    },
  };
}
