// Checkpoints of a run folder, OLMo's layout (step{N}/, a `latest` link), written atomically:
// state is copied to host memory on the training thread, then files are written off it (libuv
// threads) into a temporary folder, fsynced, checksummed and renamed. A crash at any moment leaves
// the previous complete checkpoint or the new one, never a half one that looks complete.
import { webcrypto } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { loadSafetensors, serializeSafetensors } from '../io/safetensors';
import type { OptimizerState } from '../optim/optimizer';
import type { Tensor } from '../tensor/tensor';

/** Bumped when the on-disk layout changes incompatibly. */
export const CHECKPOINT_FORMAT = 1;
const MANIFEST = 'manifest.json';

/** Any problem with a checkpoint on disk (missing, truncated, corrupted, mismatched). */
export class CheckpointError extends Error {
  readonly code = 'ERR_CHECKPOINT';
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** The trainer's own state: JSON-serialisable, restored exactly on resume. */
export interface TrainerState {
  global_step: number;
  global_train_examples_seen_this_epoch: number;
  global_train_tokens_seen: number;
  epoch: number;
  /** Random generator states, base64. */
  rng: Record<string, string>;
  /** Identifies the training data (files, sizes, seed); checked on resume. */
  data_fingerprint?: string;
  [key: string]: unknown;
}

/** What a checkpoint holds. */
export interface CheckpointPayload {
  model: Map<string, Tensor>;
  optimizer: OptimizerState;
  trainer: TrainerState;
  /** The run's resolved config (written as config.yaml inside the checkpoint). */
  configYaml?: string;
}

/** A checkpoint read back from disk; the caller owns (and disposes) the tensors. */
export interface LoadedCheckpoint {
  dir: string;
  model: Map<string, Tensor>;
  optimizer: OptimizerState;
  trainer: TrainerState;
  configYaml: string | null;
}

interface Manifest {
  format: number;
  step: number;
  created: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Minimal fs surface used for writing, so tests can inject failures (disk full). */
export interface WriteFs {
  writeFile(file: string, data: Uint8Array): Promise<void>;
}
const realFs: WriteFs = {
  async writeFile(file, data) {
    const fh = await fsp.open(file, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

async function sha256(data: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}
async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Serialises the payload to in-memory files (the only part that runs on the training thread). */
export function serializeCheckpoint(p: CheckpointPayload): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  files.set('model.safetensors', serializeSafetensors(p.model, { format: 'olmo-ts' }));
  const optimTensors = new Map<string, Tensor>();
  for (const [kind, byName] of Object.entries(p.optimizer.tensors)) for (const [name, t] of Object.entries(byName)) optimTensors.set(`${kind}/${name}`, t);
  files.set('optim.safetensors', serializeSafetensors(optimTensors));
  files.set('optim.json', Buffer.from(JSON.stringify(p.optimizer.values, null, 1)));
  files.set('train.json', Buffer.from(JSON.stringify(p.trainer, null, 1)));
  if (p.configYaml !== undefined) files.set('config.yaml', Buffer.from(p.configYaml));
  return files;
}

/** Options of a Checkpointer (OLMo's save_* keys). */
export interface CheckpointerOptions {
  /** save_num_checkpoints_to_keep: -1 keeps all. */
  keep?: number;
  /** save_overwrite: replace an existing step{N}/ instead of failing. */
  overwrite?: boolean;
  /** For tests: the file writer. */
  fs?: WriteFs;
}

/** Writes checkpoints into a run folder; at most one write is in flight at a time. */
export class Checkpointer {
  readonly folder: string;
  private readonly keep: number;
  private readonly overwrite: boolean;
  private readonly wfs: WriteFs;
  private pending: Promise<string> | null = null;
  private ephemeral: string[] = [];

  constructor(folder: string, opts: CheckpointerOptions = {}) {
    this.folder = path.resolve(folder);
    this.keep = opts.keep ?? -1;
    this.overwrite = opts.overwrite ?? false;
    this.wfs = opts.fs ?? realFs;
  }

  /**
   * Copies the state to host memory now, then writes it in the background. Returns a promise of
   * the checkpoint folder; awaiting it is optional (the next save and `flush()` wait for it).
   */
  save(step: number, payload: CheckpointPayload, opts: { ephemeral?: boolean } = {}): Promise<string> {
    const files = serializeCheckpoint(payload); // SYNC: device -> host copies happen here
    const previous = this.pending ?? Promise.resolve('');
    const job = previous.catch(() => '').then(() => this.write(step, files, opts.ephemeral ?? false));
    this.pending = job;
    return job;
  }

  /**
   * Deletes what killed writers of this folder left behind: `.step{N}.tmp-PID` and `.step{N}.del-PID`
   * folders and `latest.tmp-PID` links whose process is gone (a live PID's are another writer's).
   * Returns the names removed.
   */
  removeStale(): string[] {
    if (!fs.existsSync(this.folder)) return [];
    const removed: string[] = [];
    for (const name of fs.readdirSync(this.folder)) {
      const m = /^(?:\.step\d+\.(?:tmp|del)|latest\.tmp)-(\d+)$/.exec(name);
      if (!m || processAlive(Number(m[1]))) continue;
      fs.rmSync(path.join(this.folder, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }

  /** Waits for the write in flight (rethrowing its error). */
  async flush(): Promise<void> {
    if (this.pending) await this.pending;
  }

  private async write(step: number, files: Map<string, Uint8Array>, ephemeral: boolean): Promise<string> {
    const name = `step${step}`;
    const final = path.join(this.folder, name);
    const tmp = path.join(this.folder, `.${name}.tmp-${process.pid}`);
    await fsp.mkdir(this.folder, { recursive: true });
    if (fs.existsSync(final) && !this.overwrite) {
      throw new CheckpointError(`checkpoint ${final} already exists (set save_overwrite: true to replace it)`);
    }
    await fsp.rm(tmp, { recursive: true, force: true });
    await fsp.mkdir(tmp);
    try {
      const manifest: Manifest = { format: CHECKPOINT_FORMAT, step, created: new Date().toISOString(), files: {} };
      for (const [file, data] of files) {
        await this.wfs.writeFile(path.join(tmp, file), data);
        manifest.files[file] = { bytes: data.byteLength, sha256: await sha256(data) };
      }
      // The manifest is written last: a folder without one is never taken for a checkpoint.
      await this.wfs.writeFile(path.join(tmp, MANIFEST), Buffer.from(JSON.stringify(manifest, null, 1)));
      await fsyncDir(tmp);
      if (fs.existsSync(final)) await this.remove(final);
      await fsp.rename(tmp, final);
      await fsyncDir(this.folder);
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOSPC' ? 'the disk is full' : err.message;
      throw new CheckpointError(`saving checkpoint step ${step} to ${final} failed: ${why}; the previous checkpoint is intact`);
    }
    await this.pointLatest(name);
    await this.prune(name, ephemeral);
    return final;
  }

  /** Atomically repoints `latest` at the new checkpoint (symlink to a temp name, then rename). */
  private async pointLatest(name: string): Promise<void> {
    const link = path.join(this.folder, 'latest');
    const tmp = `${link}.tmp-${process.pid}`;
    await fsp.rm(tmp, { force: true });
    await fsp.symlink(name, tmp);
    await fsp.rename(tmp, link);
  }

  /** Deletes older checkpoints beyond `keep` and earlier ephemeral ones, after the new one is complete. */
  private async prune(justWritten: string, ephemeral: boolean): Promise<void> {
    const oldEphemeral = this.ephemeral.filter((n) => n !== justWritten);
    this.ephemeral = ephemeral ? [justWritten] : [];
    for (const n of oldEphemeral) await this.remove(path.join(this.folder, n));
    if (this.keep < 0) return;
    const regular = listCheckpoints(this.folder).filter((c) => !this.ephemeral.includes(path.basename(c.dir)));
    const excess = regular.length - Math.max(this.keep, 1);
    for (const c of regular.slice(0, Math.max(0, excess))) {
      if (path.basename(c.dir) !== justWritten) await this.remove(c.dir);
    }
  }

  /**
   * Deletes a checkpoint folder by first renaming it out of the step{N} namespace: a crash in the
   * middle of a recursive delete must not leave a step{N}/ whose manifest survived its files.
   */
  private async remove(dir: string): Promise<void> {
    if (!fs.existsSync(dir)) return;
    const doomed = path.join(this.folder, `.${path.basename(dir)}.del-${process.pid}`);
    await fsp.rm(doomed, { recursive: true, force: true });
    await fsp.rename(dir, doomed);
    await fsp.rm(doomed, { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Complete checkpoints (with a manifest) in a run folder, oldest first. */
export function listCheckpoints(folder: string): { step: number; dir: string }[] {
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder)
    .map((n) => /^step(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(folder, m[0], MANIFEST)))
    .map((m) => ({ step: Number(m[1]), dir: path.join(folder, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint of a run folder, or null. */
export function latestCheckpoint(folder: string): string | null {
  const all = listCheckpoints(folder);
  return all.length ? all[all.length - 1]!.dir : null;
}

/** Resolves a load_path: a checkpoint folder, or a run folder / its `latest` link. */
export function resolveCheckpointPath(p: string): string {
  const abs = path.resolve(p);
  if (!fs.existsSync(abs)) throw new CheckpointError(`checkpoint path ${abs} does not exist`);
  if (fs.existsSync(path.join(abs, MANIFEST))) return fs.realpathSync(abs);
  const latest = latestCheckpoint(abs);
  if (latest) return latest;
  throw new CheckpointError(`${abs} is neither a complete checkpoint (no ${MANIFEST}) nor a run folder with checkpoints`);
}

/** Reads and verifies a checkpoint folder: every file's size and SHA-256 must match its manifest. */
export async function loadCheckpoint(dirIn: string): Promise<LoadedCheckpoint> {
  const dir = resolveCheckpointPath(dirIn);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch (e) {
    throw new CheckpointError(`${dir}/${MANIFEST} is unreadable: ${(e as Error).message}`);
  }
  if (manifest.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${dir} has checkpoint format ${manifest.format}; this olmo-ts reads format ${CHECKPOINT_FORMAT}`);
  }
  const data = new Map<string, Buffer>();
  for (const [file, want] of Object.entries(manifest.files)) {
    const full = path.join(dir, file);
    if (!fs.existsSync(full)) throw new CheckpointError(`${full} is missing from the checkpoint`);
    const buf = await fsp.readFile(full);
    if (buf.byteLength !== want.bytes) {
      throw new CheckpointError(`${full} is truncated or padded: ${buf.byteLength} bytes, the manifest says ${want.bytes}`);
    }
    if ((await sha256(buf)) !== want.sha256) throw new CheckpointError(`${full} is corrupted: its SHA-256 does not match the manifest`);
    data.set(file, buf);
  }
  for (const need of ['model.safetensors', 'optim.safetensors', 'optim.json', 'train.json']) {
    if (!data.has(need)) throw new CheckpointError(`${dir} lacks ${need}`);
  }
  const parseJson = <T>(file: string): T => {
    try {
      return JSON.parse(data.get(file)!.toString('utf8')) as T;
    } catch (e) {
      throw new CheckpointError(`${path.join(dir, file)} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const model = loadSafetensors(data.get('model.safetensors')!, {}, path.join(dir, 'model.safetensors')).tensors;
  let optimTensors: Map<string, Tensor>;
  try {
    optimTensors = loadSafetensors(data.get('optim.safetensors')!, {}, path.join(dir, 'optim.safetensors')).tensors;
  } catch (e) {
    for (const t of model.values()) t.dispose();
    throw e;
  }
  const tensors: OptimizerState['tensors'] = {};
  for (const [key, t] of optimTensors) {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash), name = key.slice(slash + 1);
    (tensors[kind] ??= {})[name] = t;
  }
  return {
    dir,
    model,
    optimizer: { tensors, values: parseJson<OptimizerState['values']>('optim.json') },
    trainer: parseJson<TrainerState>('train.json'),
    configYaml: data.has('config.yaml') ? data.get('config.yaml')!.toString('utf8') : null,
  };
}

/** Disposes every tensor of a loaded checkpoint. */
export function disposeCheckpoint(c: LoadedCheckpoint): void {
  for (const t of c.model.values()) t.dispose();
  for (const byName of Object.values(c.optimizer.tensors)) for (const t of Object.values(byName)) t.dispose();
}
