// Checkpoints of a run folder, OLMo's layout (step{N}/, a `latest` link), written atomically:
// state is copied to host memory on the training thread, then a worker thread writes the files
// into a temporary folder, fsyncs, checksums and renames them (src/train/checkpoint-files.ts). A
// crash at any moment leaves the previous complete checkpoint or the new one, never a half one.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { hashFile } from '../io/chunked-file';
import { readSafetensors, serializeSafetensorsChunks } from '../io/safetensors';
import type { OptimizerState } from '../optim/optimizer';
import type { Tensor } from '../tensor/tensor';
import { startWorkerFile } from '../util/worker';
import { getRngState } from '../tensor/random';
import { CHECKPOINT_FORMAT, CheckpointError, CheckpointFolder, FileChunks, MANIFEST, Manifest, WriteFs } from './checkpoint-files';
import { checkpointIdentity, validateManifest, validateOptimValues, validateTrainerState } from './checkpoint-meta';
import type { WriteReply, WriteRequest } from './checkpoint-worker';
import { findResumePoint } from './resume-point';

export { CHECKPOINT_FORMAT, CheckpointError, listCheckpoints } from './checkpoint-files';
export { findResumePoint, latestCheckpoint } from './resume-point';
export type { WriteFs } from './checkpoint-files';

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

/**
 * Serialises the payload to in-memory files, each a list of chunks (header, one per tensor) that
 * is never concatenated (the only part that runs on the training thread).
 */
export function serializeCheckpoint(p: CheckpointPayload): Map<string, FileChunks> {
  const files = new Map<string, FileChunks>();
  files.set('model.safetensors', serializeSafetensorsChunks(p.model, { format: 'olmo-ts' }));
  const optimTensors = new Map<string, Tensor>();
  for (const [kind, byName] of Object.entries(p.optimizer.tensors)) for (const [name, t] of Object.entries(byName)) optimTensors.set(`${kind}/${name}`, t);
  files.set('optim.safetensors', serializeSafetensorsChunks(optimTensors));
  files.set('optim.json', [Buffer.from(JSON.stringify(p.optimizer.values, null, 1))]);
  files.set('train.json', [Buffer.from(JSON.stringify(p.trainer, null, 1))]);
  if (p.configYaml !== undefined) files.set('config.yaml', [Buffer.from(p.configYaml)]);
  return files;
}

/** Options of a Checkpointer (OLMo's save_* keys). */
export interface CheckpointerOptions {
  /** save_num_checkpoints_to_keep: -1 keeps all. */
  keep?: number;
  /** save_overwrite: replace an existing step{N}/ instead of failing. */
  overwrite?: boolean;
  /** save_interval_unsharded / save_num_unsharded_checkpoints_to_keep (see FolderOptions). */
  unshardedInterval?: number | null;
  keepUnsharded?: number;
  /** For tests: write on this thread through this writer instead of the writer thread. */
  fs?: WriteFs;
  /** Folder-name suffix of this series (OLMo's "-unsharded" checkpoints of a sharded run). */
  suffix?: string;
}

/**
 * Writes checkpoints into a run folder. save() copies the state to host memory and hands the
 * files to a writer thread; at most one write is in flight at a time.
 */
export class Checkpointer {
  readonly folder: string;
  private readonly opts: { keep: number; overwrite: boolean; suffix: string; unshardedInterval: number | null; keepUnsharded: number };
  private readonly local: CheckpointFolder | null;
  private worker: Worker | null = null;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (dir: string) => void; reject: (e: Error) => void }>();
  private pending: Promise<string> | null = null;

  constructor(folder: string, opts: CheckpointerOptions = {}) {
    this.folder = path.resolve(folder);
    this.opts = { keep: opts.keep ?? -1, overwrite: opts.overwrite ?? false, suffix: opts.suffix ?? '', unshardedInterval: opts.unshardedInterval ?? null, keepUnsharded: opts.keepUnsharded ?? -1 };
    this.local = opts.fs ? new CheckpointFolder(this.folder, this.opts, opts.fs) : null;
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

  /** Deletes what killed writers of this folder left behind (see CheckpointFolder.removeStale). */
  removeStale(): string[] {
    return (this.local ?? new CheckpointFolder(this.folder, this.opts)).removeStale();
  }

  /** Waits for the write in flight (rethrowing its error). */
  async flush(): Promise<void> {
    if (this.pending) await this.pending;
  }

  /** Waits for the write in flight, then stops the writer thread. Idempotent. */
  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.worker?.terminate();
    this.worker = null;
  }

  private write(step: number, files: Map<string, FileChunks>, ephemeral: boolean): Promise<string> {
    if (this.local) {
      try {
        return Promise.resolve(this.local.write(step, files, ephemeral));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const w = this.writer();
    const seq = ++this.seq;
    const list = [...files.entries()];
    // Hand over chunks that own their whole ArrayBuffer (no copy); small pooled ones are copied.
    const transfer = new Set<ArrayBuffer>();
    for (const [, chunks] of list) {
      for (const d of chunks) if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.byteLength > 4096) transfer.add(d.buffer as ArrayBuffer);
    }
    const req: WriteRequest = { seq, folder: this.folder, opts: this.opts, step, ephemeral, files: list };
    return new Promise<string>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      w.ref(); // keep the process alive until the checkpoint is on disk
      w.postMessage(req, [...transfer]);
    });
  }

  private writer(): Worker {
    if (this.worker) return this.worker;
    const w = startWorkerFile(__dirname, 'checkpoint-worker');
    w.on('message', (r: WriteReply) => {
      const p = this.waiting.get(r.seq);
      if (!p) return;
      this.waiting.delete(r.seq);
      if (this.waiting.size === 0) w.unref();
      if (r.ok) p.resolve(r.dir);
      else p.reject(r.name === 'CheckpointError' ? new CheckpointError(r.message) : new Error(r.message));
    });
    w.on('error', (e) => {
      for (const p of this.waiting.values()) p.reject(new CheckpointError(`the checkpoint writer thread failed: ${e.message}`));
      this.waiting.clear();
      this.worker = null;
    });
    w.unref();
    this.worker = w;
    return w;
  }
}

/** Resolves a load_path: a checkpoint folder, or a run folder / its `latest` link. */
export function resolveCheckpointPath(p: string): string {
  const abs = path.resolve(p);
  if (!fs.existsSync(abs)) throw new CheckpointError(`checkpoint path ${abs} does not exist`);
  if (!fs.statSync(abs).isDirectory()) throw new CheckpointError(`checkpoint path ${abs} is a file; give a checkpoint folder (step{N}) or a run folder`);
  if (fs.existsSync(path.join(abs, MANIFEST))) return fs.realpathSync(abs);
  const latest = findResumePoint(abs).dir;
  if (latest) return latest;
  throw new CheckpointError(`${abs} is neither a complete checkpoint (no ${MANIFEST}) nor a run folder with checkpoints`);
}

/**
 * Reads and verifies a checkpoint folder: every file's size and SHA-256 (streamed from disk in
 * pieces, never a whole-file read) must match its manifest before anything is parsed; tensors are
 * then read at their offsets (readSafetensors).
 * `part` reads one rank's files of a sharded checkpoint (its "rank{r}/" subfolder) the same way.
 */
export async function loadCheckpoint(dirIn: string, o: { part?: string } = {}): Promise<LoadedCheckpoint> {
  const dir = resolveCheckpointPath(dirIn);
  let raw: unknown;
  try {
    raw = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST), 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${dir}/${MANIFEST} is unreadable: ${(e as Error).message}`);
  }
  if (raw && typeof raw === 'object' && typeof (raw as Manifest).format === 'number' && (raw as Manifest).format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${dir} has checkpoint format ${(raw as Manifest).format}; this olmo-ts reads format ${CHECKPOINT_FORMAT}`);
  }
  const manifest: Manifest = validateManifest(raw, path.join(dir, MANIFEST));
  const data = new Map<string, string>(); // verified file -> its full path
  const prefix = o.part ? `${o.part}/` : '';
  for (const [entry, want] of Object.entries(manifest.files)) {
    if (prefix ? !entry.startsWith(prefix) : entry.includes('/')) continue;
    const file = entry.slice(prefix.length);
    const full = path.join(dir, entry);
    if (!fs.existsSync(full)) throw new CheckpointError(`${full} is missing from the checkpoint`);
    const size = fs.statSync(full).size;
    if (size !== want.bytes) throw new CheckpointError(`${full} is truncated or padded: ${size} bytes, the manifest says ${want.bytes}`);
    const got = await hashFile(full);
    if (got.bytes !== want.bytes) throw new CheckpointError(`${full} is truncated or padded: ${got.bytes} bytes, the manifest says ${want.bytes}`);
    if (got.sha256 !== want.sha256) throw new CheckpointError(`${full} is corrupted: its SHA-256 does not match the manifest`);
    data.set(file, full);
  }
  for (const need of ['model.safetensors', 'optim.safetensors', 'optim.json', 'train.json']) {
    if (!data.has(need)) throw new CheckpointError(`${path.join(dir, o.part ?? '')} lacks ${need}`);
  }
  const text = async (file: string): Promise<string> => fsp.readFile(data.get(file)!, 'utf8'); // small JSON/YAML files
  const jsonText = new Map<string, string>([['train.json', await text('train.json')], ['optim.json', await text('optim.json')]]);
  const parseJson = (file: string): unknown => {
    try {
      return JSON.parse(jsonText.get(file)!);
    } catch (e) {
      throw new CheckpointError(`${path.join(dir, file)} is not valid JSON: ${(e as Error).message}`);
    }
  };
  // Structure before tensors: a checkpoint whose JSON passes its checksum but is wrong fails here,
  // naming the file and field, and nothing has been allocated yet.
  const trainer = validateTrainerState(parseJson('train.json'), path.join(dir, 'train.json'), getRngState().byteLength) as TrainerState;
  const optimValues = validateOptimValues(parseJson('optim.json'), path.join(dir, 'optim.json'));
  checkpointIdentity(dir);
  const model = readSafetensors(data.get('model.safetensors')!).tensors;
  let optimTensors: Map<string, Tensor>;
  try {
    optimTensors = readSafetensors(data.get('optim.safetensors')!).tensors;
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
    optimizer: { tensors, values: optimValues },
    trainer,
    configYaml: data.has('config.yaml') ? await text('config.yaml') : null,
  };
}

/** Disposes every tensor of a loaded checkpoint. */
export function disposeCheckpoint(c: LoadedCheckpoint): void {
  for (const t of c.model.values()) t.dispose();
  for (const byName of Object.values(c.optimizer.tensors)) for (const t of Object.values(byName)) t.dispose();
}
