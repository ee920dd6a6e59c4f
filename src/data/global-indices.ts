// OLMo's global data order (olmo/data/iterable_dataset.py): arange(n, uint32) shuffled by
// numpy's Generator(PCG64(seed + epoch)), padded or truncated for drop_last, saved as
// global_indices.npy, then sliced per rank, from a start index, into global batches.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors';
import { PCG64, shuffleInPlace } from './numpy-random';
import { npyHeader, readUint32File, writeAtomic } from './npy';

/** What decides the global order. */
export interface GlobalOrderOptions {
  /** Number of instances in the dataset (`len(dataset)`). */
  numInstances: number;
  /** The run's seed (`TrainConfig.seed`). */
  seed: number;
  /** The epoch (`TrainConfig.epoch`, default 0); OLMo seeds the shuffle with `seed + epoch`. */
  epoch?: number;
  /** Shuffle (default true, as OLMo's train loader always does). */
  shuffle?: boolean;
  /** `DataConfig.drop_last`: truncate to a multiple of the world size instead of padding. */
  dropLast: boolean;
  /** Number of ranks; the padding or truncation makes the length a multiple of it. */
  worldSize: number;
}

function checkInt(v: number, key: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new DataError(`expected an integer >= ${min}, got ${v}`, { key });
}

/** OLMo's `total_size`: the index count after padding/truncation, a multiple of `worldSize`. */
export function totalSize(numInstances: number, worldSize: number, dropLast: boolean): number {
  const numSamples = dropLast && numInstances % worldSize !== 0
    ? Math.ceil((numInstances - worldSize) / worldSize)
    : Math.ceil(numInstances / worldSize);
  return numSamples * worldSize;
}

/**
 * `IterableDataset._build_global_indices`: the full epoch order, identical to OLMo's (and so to its
 * `global_indices.npy`) for the same dataset length, seed, epoch, drop_last and world size.
 */
export function buildGlobalIndices(o: GlobalOrderOptions): Uint32Array {
  checkInt(o.numInstances, 'numInstances', 0);
  checkInt(o.worldSize, 'worldSize', 1);
  checkInt(o.seed, 'seed', 0);
  if (o.numInstances >= 0xffffffff) throw new DataError(`${o.numInstances} instances do not fit uint32 indices`, { key: 'numInstances' });
  const n = o.numInstances;
  const indices = new Uint32Array(n);
  for (let i = 0; i < n; i++) indices[i] = i;
  if (o.shuffle ?? true) shuffleInPlace(new PCG64(o.seed + (o.epoch ?? 0)), indices);
  const total = totalSize(n, o.worldSize, o.dropLast);
  if (o.dropLast || total <= n) return indices.slice(0, total);
  if (n === 0) throw new DataError('cannot pad an empty dataset to the world size', { key: 'numInstances' });
  // Pad by repeating the (shuffled) order from its start until the length is `total`.
  const out = new Uint32Array(total);
  out.set(indices, 0);
  for (let filled = n; filled < total; filled += Math.min(n, total - filled)) {
    out.set(indices.subarray(0, Math.min(n, total - filled)), filled);
  }
  return out;
}

/** How the indices file is laid out on disk. */
export type IndicesFormat = 'olmo' | 'npy';

/**
 * Saves the order as `<dir>/global_indices.npy`. The default 'olmo' format is what OLMo writes
 * and reads: raw little-endian uint32 through np.memmap, with no .npy header (a header would be
 * read by OLMo as indices). 'npy' writes a real .npy (np.load-able). Written atomically.
 */
export function saveGlobalIndices(file: string, indices: Uint32Array, format: IndicesFormat = 'olmo', about?: GlobalIndicesInfo): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const body = new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength);
  // The description first: a crash between the two leaves a description that does not match the
  // file's length, which readers check, rather than an order described as another epoch's.
  if (about) writeAtomic(infoPath(file), [Buffer.from(JSON.stringify(about) + '\n')]);
  writeAtomic(file, format === 'npy' ? [npyHeader('uint32', [indices.length]), body] : [body]);
}

/**
 * What a saved order is (global_indices.json beside global_indices.npy): the file is overwritten
 * at every epoch, so inspect-data needs to know which epoch it holds.
 */
export interface GlobalIndicesInfo {
  epoch: number;
  seed: number;
  num_instances: number;
  world_size: number;
  drop_last: boolean;
  length: number;
}

function infoPath(file: string): string {
  return file.replace(/\.npy$/, '') + '.json';
}

/** The description saved beside a global indices file, or null (OLMo's runs have none). */
export function readGlobalIndicesInfo(file: string): GlobalIndicesInfo | null {
  try {
    const j = JSON.parse(fs.readFileSync(infoPath(file), 'utf8')) as GlobalIndicesInfo;
    return typeof j.epoch === 'number' && typeof j.length === 'number' ? j : null;
  } catch {
    return null;
  }
}

/** Loads a global indices file in either format (the .npy magic tells them apart). */
export function loadGlobalIndices(file: string): Uint32Array {
  if (!fs.existsSync(file)) throw new DataError('global indices file not found', { file });
  return readUint32File(file);
}

/** Which part of the global order one rank reads. */
export interface RankSliceOptions {
  rank: number;
  worldSize: number;
  /** Instances already consumed by all ranks (resume); a multiple of worldSize, normally of the global batch size. */
  startIndex?: number;
  /** Stop after this many global instances (OLMo's `max_examples`); a multiple of worldSize. */
  maxExamples?: number;
}

/**
 * `IterableDataset.__iter__`'s slicing: `indices[:max_examples][start_index:][rank::world_size]`.
 * Device batch j of this rank is then `result[j*B_dev:(j+1)*B_dev]`.
 */
export function rankIndices(indices: Uint32Array, o: RankSliceOptions): Uint32Array {
  checkInt(o.worldSize, 'worldSize', 1);
  checkInt(o.rank, 'rank', 0);
  if (o.rank >= o.worldSize) throw new DataError(`rank ${o.rank} is not below world size ${o.worldSize}`, { key: 'rank' });
  const start = o.startIndex ?? 0;
  checkInt(start, 'startIndex', 0);
  if (start % o.worldSize !== 0) throw new DataError(`start index ${start} is not a multiple of the world size ${o.worldSize}`, { key: 'startIndex' });
  let view = indices;
  if (o.maxExamples !== undefined) {
    if (o.maxExamples % o.worldSize !== 0) throw new DataError(`max_examples ${o.maxExamples} is not a multiple of the world size ${o.worldSize}`, { key: 'maxExamples' });
    view = view.subarray(0, o.maxExamples);
  }
  view = view.subarray(Math.min(start, view.length));
  const count = Math.max(0, Math.ceil((view.length - o.rank) / o.worldSize));
  const out = new Uint32Array(count);
  for (let i = 0, j = o.rank; i < count; i++, j += o.worldSize) out[i] = view[j]!;
  return out;
}

/** Global batch k (0-based; training step k+1): `indices[k*B:(k+1)*B]`, whatever the world size. */
export function globalBatch(indices: Uint32Array, k: number, globalBatchSize: number): Uint32Array {
  checkInt(k, 'batch', 0);
  checkInt(globalBatchSize, 'globalBatchSize', 1);
  return indices.subarray(k * globalBatchSize, (k + 1) * globalBatchSize);
}
