// The file side of checkpoints, free of tensors so it can run in a worker thread: writing a
// checkpoint folder atomically (temp folder, fsync, SHA-256 manifest written last, rename), the
// `latest` link, keep-N / ephemeral pruning, stale-temp cleanup, and listing complete checkpoints.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileChunks, describeChunks, writeChunksFile } from '../io/chunked-file';
import { describeFsError, isErrnoError } from '../util/fs-errors';

/** Bumped when the on-disk layout changes incompatibly. */
export const CHECKPOINT_FORMAT = 1;
export const MANIFEST = 'manifest.json';

/** Any problem with a checkpoint on disk (missing, truncated, corrupted, mismatched). */
export class CheckpointError extends Error {
  readonly code = 'ERR_CHECKPOINT';
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** manifest.json: the format, and every file's size and SHA-256. */
export interface Manifest {
  format: number;
  step: number;
  created: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

export type { FileChunks } from '../io/chunked-file';

/**
 * The one write primitive, so tests can inject failures (disk full). Writes a file's chunks in
 * order (they are never concatenated: a file may exceed one Node buffer's 4 GiB) and fsyncs.
 */
export interface WriteFs {
  writeFile(file: string, chunks: FileChunks): void;
}
/** Creates the file (never overwrites), writes the chunks in pieces of at most ioChunkBytes(), fsyncs, closes. */
export const realFs: WriteFs = { writeFile: writeChunksFile };

/** A manifest entry (size, SHA-256 hashed chunk by chunk) for a file's chunks. */
export function manifestEntry(chunks: FileChunks): { bytes: number; sha256: string } {
  return describeChunks(chunks);
}
function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
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

/**
 * Complete checkpoints (with a manifest) in a run folder, oldest first. `suffix` selects another
 * series: "-unsharded" lists OLMo's step{N}-unsharded/ folders of a sharded run.
 */
export function listCheckpoints(folder: string, suffix = ''): { step: number; dir: string }[] {
  if (!fs.existsSync(folder)) return [];
  const re = new RegExp(`^step(\\d+)${suffix.replace(/[-]/g, '\\-')}$`);
  return fs
    .readdirSync(folder)
    .map((n) => re.exec(n))
    .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(folder, m[0], MANIFEST)))
    .map((m) => ({ step: Number(m[1]), dir: path.join(folder, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Options of a checkpoint folder (OLMo's save_* keys). */
export interface FolderOptions {
  /** save_num_checkpoints_to_keep: -1 keeps all. */
  keep?: number;
  /** save_overwrite: replace an existing step{N}/ instead of failing. */
  overwrite?: boolean;
  /** Folder-name suffix of this series: step{N}{suffix}/, with a `latest{suffix}` link ("-unsharded"). */
  suffix?: string;
  /**
   * save_interval_unsharded: checkpoints at multiples of it are OLMo's "unsharded" ones, kept by
   * their own count (keepUnsharded) instead of `keep`. Null: none.
   */
  unshardedInterval?: number | null;
  /** save_num_unsharded_checkpoints_to_keep: -1 keeps all. */
  keepUnsharded?: number;
}

/** A run folder's checkpoints, written synchronously (call it from a worker thread). */
export class CheckpointFolder {
  readonly folder: string;
  private readonly keep: number;
  private readonly overwrite: boolean;
  private readonly suffix: string;
  private readonly unshardedInterval: number | null;
  private readonly keepUnsharded: number;
  private ephemeral: string[] = [];

  constructor(folder: string, opts: FolderOptions = {}, private readonly wfs: WriteFs = realFs) {
    this.folder = path.resolve(folder);
    this.keep = opts.keep ?? -1;
    this.overwrite = opts.overwrite ?? false;
    this.suffix = opts.suffix ?? '';
    this.unshardedInterval = opts.unshardedInterval ?? null;
    this.keepUnsharded = opts.keepUnsharded ?? -1;
  }

  /** Writes step{N}/ from in-memory files; returns its path. Throws CheckpointError. */
  write(step: number, files: Map<string, FileChunks>, ephemeral: boolean): string {
    const name = `step${step}${this.suffix}`;
    const final = this.writeAs(name, step, files);
    this.pointLatest(name);
    this.prune(name, ephemeral);
    return final;
  }

  /**
   * Writes a checkpoint folder named `name` in this run folder atomically (temp folder, fsync,
   * manifest last, rename), without touching `latest` or pruning. Throws CheckpointError.
   */
  writeAs(name: string, step: number, files: Map<string, FileChunks>): string {
    const final = path.join(this.folder, name);
    const tmp = path.join(this.folder, `.${name}.tmp-${process.pid}`);
    fs.mkdirSync(this.folder, { recursive: true });
    if (fs.existsSync(final) && !this.overwrite) {
      throw new CheckpointError(`checkpoint ${final} already exists (set save_overwrite: true to replace it)`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    try {
      const manifest: Manifest = { format: CHECKPOINT_FORMAT, step, created: new Date().toISOString(), files: {} };
      for (const [file, chunks] of files) {
        this.wfs.writeFile(path.join(tmp, file), chunks);
        manifest.files[file] = manifestEntry(chunks);
      }
      // The manifest is written last: a folder without one is never taken for a checkpoint.
      this.wfs.writeFile(path.join(tmp, MANIFEST), [Buffer.from(JSON.stringify(manifest, null, 1))]);
      this.publish(tmp, final);
    } catch (e) {
      try {
        fs.rmSync(tmp, { recursive: true, force: true });
      } catch {
        /* the original error matters more */
      }
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOSPC' ? 'the disk is full' : isErrnoError(e) ? describeFsError(e) : err.message;
      // Only claim what is true: a run's first save has no previous checkpoint to keep.
      const previous = listCheckpoints(this.folder).some((c) => c.dir !== final);
      throw new CheckpointError(`saving checkpoint step ${step} to ${final} failed: ${why}; ${previous ? 'the previous checkpoint is intact' : 'no earlier checkpoint exists'}`);
    }
    return final;
  }

  private publish(tmp: string, final: string): void {
    fsyncDir(tmp);
    if (fs.existsSync(final)) this.remove(final);
    fs.renameSync(tmp, final);
    fsyncDir(this.folder);
  }

  /**
   * Publishes a checkpoint that other writers (the ranks of a sharded save) filled in `tmp`, manifest
   * included: rename to step{N}, repoint `latest`, prune. Throws CheckpointError.
   */
  commit(tmp: string, step: number, ephemeral: boolean): string {
    const name = `step${step}${this.suffix}`;
    const final = path.join(this.folder, name);
    if (fs.existsSync(final) && !this.overwrite) {
      throw new CheckpointError(`checkpoint ${final} already exists (set save_overwrite: true to replace it)`);
    }
    try {
      this.publish(tmp, final);
    } catch (e) {
      throw new CheckpointError(`publishing checkpoint step ${step} as ${final} failed: ${(e as Error).message}; the previous checkpoint is intact`);
    }
    this.pointLatest(name);
    this.prune(name, ephemeral);
    return final;
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
      const m = /^(?:\.step\d+(?:-unsharded)?\.(?:tmp|del)|latest(?:-unsharded)?\.tmp)-(\d+)$/.exec(name);
      if (!m || processAlive(Number(m[1]))) continue;
      fs.rmSync(path.join(this.folder, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }

  /** Atomically repoints `latest` at the new checkpoint (symlink to a temp name, then rename). */
  private pointLatest(name: string): void {
    const link = path.join(this.folder, `latest${this.suffix}`);
    const tmp = `${link}.tmp-${process.pid}`;
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(name, tmp);
    fs.renameSync(tmp, link);
  }

  /**
   * Deletes older checkpoints beyond `keep` (unsharded-interval ones beyond `keepUnsharded`) and
   * earlier ephemeral ones, after the new one is complete. Only checkpoints up to the one just
   * written count: folders of later steps (another run's, replaced when this run gets there under
   * save_overwrite) are never what makes this run's own checkpoints go.
   */
  private prune(justWritten: string, ephemeral: boolean): void {
    const oldEphemeral = this.ephemeral.filter((n) => n !== justWritten);
    this.ephemeral = ephemeral ? [justWritten] : [];
    for (const n of oldEphemeral) this.remove(path.join(this.folder, n));
    const upTo = Number(new RegExp(`^step(\\d+)${this.suffix}$`).exec(justWritten)?.[1] ?? Infinity);
    const mine = listCheckpoints(this.folder, this.suffix).filter((c) => c.step <= upTo && !this.ephemeral.includes(path.basename(c.dir)));
    const isUnsharded = (step: number) => this.unshardedInterval !== null && step % this.unshardedInterval === 0;
    for (const [group, keep] of [[mine.filter((c) => !isUnsharded(c.step)), this.keep], [mine.filter((c) => isUnsharded(c.step)), this.keepUnsharded]] as const) {
      if (keep < 0) continue;
      const excess = group.length - Math.max(keep, 1);
      for (const c of group.slice(0, Math.max(0, excess))) {
        if (path.basename(c.dir) !== justWritten) this.remove(c.dir);
      }
    }
  }

  /**
   * Deletes a checkpoint folder by first renaming it out of the step{N} namespace: a crash in the
   * middle of a recursive delete must not leave a step{N}/ whose manifest survived its files.
   */
  private remove(dir: string): void {
    if (!fs.existsSync(dir)) return;
    const doomed = path.join(this.folder, `.${path.basename(dir)}.del-${process.pid}`);
    fs.rmSync(doomed, { recursive: true, force: true });
    fs.renameSync(dir, doomed);
    fs.rmSync(doomed, { recursive: true, force: true });
  }
}
