// Sharded checkpoints of an FSDP run (OLMo's "local" sharded checkpointer in spirit): step{N}/ holds,
// per rank, rank{r}/{model,optim}.safetensors, optim.json and train.json with that rank's pieces of
// every parameter and optimizer state (contiguous, in rank order, so the full tensor of a parameter
// is its pieces concatenated), plus metadata.json (world size, strategy, parameter shapes),
// config.yaml and one manifest.json covering every file. Each rank writes and checksums its own
// files into a shared temporary folder; rank 0 writes the manifest and renames the folder only once
// every rank has finished, so a crash of any rank at any moment leaves the old checkpoint or the new.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProcessGroup } from '../dist/process-group';
import { readCheckpointConfig } from '../model/checkpoint';
import { OLMo } from '../model/olmo';
import { cat } from '../tensor/creation';
import type { Device } from '../tensor/dtype';
import type { Tensor } from '../tensor/tensor';
import { CHECKPOINT_FORMAT, CheckpointError, CheckpointFolder, FileChunks, MANIFEST, Manifest, manifestEntry, realFs } from './checkpoint-files';
import { CheckpointPayload, LoadedCheckpoint, disposeCheckpoint, loadCheckpoint, resolveCheckpointPath, serializeCheckpoint } from './checkpoint';

export const SHARDED_METADATA = 'metadata.json';

/** metadata.json of a sharded checkpoint. */
export interface ShardedMetadata {
  sharded: true;
  world_size: number;
  sharding_strategy: string;
  /** Parameter name -> full shape. */
  params: Record<string, number[]>;
}

/** The metadata of a sharded checkpoint folder, or null for an unsharded one. */
export function shardedMetadata(dir: string): ShardedMetadata | null {
  const f = path.join(dir, SHARDED_METADATA);
  if (!fs.existsSync(f)) return null;
  let m: ShardedMetadata;
  try {
    m = JSON.parse(fs.readFileSync(f, 'utf8')) as ShardedMetadata;
  } catch (e) {
    throw new CheckpointError(`${f} is not valid JSON: ${(e as Error).message}`);
  }
  if (!m || m.sharded !== true || !Number.isInteger(m.world_size) || m.world_size < 1 || !m.params || typeof m.params !== 'object') {
    throw new CheckpointError(`${f}: expected {sharded: true, world_size, sharding_strategy, params}`);
  }
  return m;
}

/** What one rank contributes to a sharded save. */
export interface ShardedSave {
  folder: CheckpointFolder | null; // rank 0's (publishes); null elsewhere
  runDir: string;
  step: number;
  pg: ProcessGroup;
  /** Names the shared temporary folder (rank 0's pid: stale-temp cleanup checks it). */
  tag: number;
  payload: CheckpointPayload;
  meta: ShardedMetadata;
  configYaml?: string;
  ephemeral: boolean;
}

/** Writes this rank's part; rank 0 publishes step{N}/ once every part is complete. // SYNC (collective) */
export async function saveSharded(o: ShardedSave): Promise<string> {
  const name = `step${o.step}`;
  const tmp = path.join(o.runDir, `.${name}.tmp-${o.tag}`);
  const r = o.pg.rank;
  if (r === 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
  }
  await o.pg.barrier();
  const files = serializeCheckpoint({ ...o.payload, configYaml: undefined }); // SYNC: host copies
  const sums: Manifest['files'] = {};
  try {
    fs.mkdirSync(path.join(tmp, `rank${r}`));
    for (const [file, chunks] of files) {
      realFs.writeFile(path.join(tmp, `rank${r}`, file), chunks);
      sums[`rank${r}/${file}`] = manifestEntry(chunks);
    }
    realFs.writeFile(path.join(tmp, `rank${r}.sums.json`), [Buffer.from(JSON.stringify(sums))]);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CheckpointError(`rank ${r}: saving its shard of step ${o.step} in ${tmp} failed: ${err.code === 'ENOSPC' ? 'the disk is full' : err.message}`);
  }
  await o.pg.barrier();
  let final = path.join(o.runDir, name);
  if (r === 0) {
    const manifest: Manifest = { format: CHECKPOINT_FORMAT, step: o.step, created: new Date().toISOString(), files: {} };
    for (let k = 0; k < o.pg.size; k++) {
      const f = path.join(tmp, `rank${k}.sums.json`);
      Object.assign(manifest.files, JSON.parse(fs.readFileSync(f, 'utf8')) as Manifest['files']);
      fs.rmSync(f);
    }
    // train.json at the top too (rank 0's, the same on every rank): what identifies the checkpoint.
    const extra = new Map<string, FileChunks>([[SHARDED_METADATA, [Buffer.from(JSON.stringify(o.meta, null, 1))]], ['train.json', files.get('train.json')!]]);
    if (o.configYaml !== undefined) extra.set('config.yaml', [Buffer.from(o.configYaml)]);
    for (const [file, chunks] of extra) {
      realFs.writeFile(path.join(tmp, file), chunks);
      manifest.files[file] = manifestEntry(chunks);
    }
    realFs.writeFile(path.join(tmp, MANIFEST), [Buffer.from(JSON.stringify(manifest, null, 1))]);
    final = o.folder!.commit(tmp, o.step, o.ephemeral);
  }
  await o.pg.barrier();
  return final;
}

/** One rank's part of a sharded checkpoint (its pieces), verified against the manifest. */
export function loadShardedPart(dir: string, rank: number): Promise<LoadedCheckpoint> {
  return loadCheckpoint(dir, { part: `rank${rank}` });
}

/**
 * The whole state of a sharded checkpoint with full tensors (every rank's pieces concatenated and
 * reshaped), as an unsharded checkpoint reads: to resume at another world size, or to unshard.
 */
export async function loadShardedFull(dirIn: string): Promise<LoadedCheckpoint> {
  const dir = resolveCheckpointPath(dirIn);
  const meta = shardedMetadata(dir);
  if (!meta) throw new CheckpointError(`${dir} is not a sharded checkpoint (no ${SHARDED_METADATA})`);
  const parts: LoadedCheckpoint[] = [];
  try {
    for (let r = 0; r < meta.world_size; r++) parts.push(await loadShardedPart(dir, r));
    const join = (get: (p: LoadedCheckpoint) => Tensor | undefined, name: string, what: string): Tensor => {
      const shape = meta.params[name];
      if (!shape) throw new CheckpointError(`${dir}: ${what} '${name}' is not a parameter of ${SHARDED_METADATA}`);
      const pieces = parts.map((p, r) => {
        const t = get(p);
        if (!t) throw new CheckpointError(`${dir}: rank ${r} has no ${what} for '${name}'`);
        return t;
      });
      const n = pieces.reduce((a, t) => a + t.numel, 0);
      const want = shape.reduce((a, b) => a * b, 1);
      if (n !== want) throw new CheckpointError(`${dir}: the pieces of ${what} '${name}' hold ${n} elements, its shape [${shape}] needs ${want}`);
      return cat(pieces.map((t) => t.reshape([-1]))).reshape(shape);
    };
    const first = parts[0]!;
    const model = new Map<string, Tensor>();
    for (const name of first.model.keys()) model.set(name, join((p) => p.model.get(name), name, 'parameter'));
    const tensors: LoadedCheckpoint['optimizer']['tensors'] = {};
    for (const [kind, byName] of Object.entries(first.optimizer.tensors)) {
      tensors[kind] = {};
      for (const name of Object.keys(byName)) tensors[kind]![name] = join((p) => p.optimizer.tensors[kind]?.[name], name, kind);
    }
    return { dir, model, optimizer: { tensors, values: first.optimizer.values }, trainer: first.trainer, configYaml: fs.existsSync(path.join(dir, 'config.yaml')) ? fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8') : null };
  } finally {
    for (const p of parts) disposeCheckpoint(p);
  }
}

/** `olmo-ts unshard`: a sharded checkpoint as an unsharded one (today's format) in `out`. */
export async function unshardCheckpoint(dir: string, out: string): Promise<string> {
  const ck = await loadShardedFull(dir);
  try {
    const folder = new CheckpointFolder(path.dirname(path.resolve(out)), { overwrite: false });
    const files = serializeCheckpoint({ model: ck.model, optimizer: ck.optimizer, trainer: ck.trainer, configYaml: ck.configYaml ?? undefined });
    return folder.writeAs(path.basename(path.resolve(out)), ck.trainer.global_step, files);
  } finally {
    disposeCheckpoint(ck);
  }
}

/** A sharded checkpoint folder a path names (the folder, or a run folder's `latest`), else null. */
export function shardedCheckpointAt(where: string): string | null {
  for (const d of [where, path.join(where, 'latest')]) {
    if (fs.existsSync(path.join(d, SHARDED_METADATA)) && fs.existsSync(path.join(d, MANIFEST))) return fs.realpathSync(d);
  }
  return null;
}

/**
 * The model of any checkpoint the commands read (`eval`, `generate`, `convert`): a sharded one
 * (its pieces joined in memory, as `olmo-ts unshard` would), else what OLMo.fromCheckpoint reads.
 */
export async function loadModelFromAnyCheckpoint(where: string, opts: { device?: Device } = {}): Promise<OLMo> {
  const sharded = shardedCheckpointAt(where);
  if (!sharded) return OLMo.fromCheckpoint(where, opts);
  const ck = await loadShardedFull(sharded);
  try {
    const model = new OLMo(readCheckpointConfig(sharded), { device: opts.device, initParams: false });
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  } finally {
    disposeCheckpoint(ck);
  }
}
