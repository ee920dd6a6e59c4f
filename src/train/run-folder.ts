// The run folder (save_folder) at the start of `train`: created with errors in words, locked for
// the run's life (global rank 0 only, see src/util/folder-lock.ts), checked for what the run will
// do to it (which checkpoint it resumes, an earlier run a fresh start would mix with, checkpoints
// a save_overwrite: false run would collide with), and written only once everything is validated.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/errors';
import { FolderLock, LOCK_FILE } from '../util/folder-lock';
import { describeFsError, isErrnoError, mkdirRecursive } from '../util/fs-errors';
import { writeAtomic } from '../data/npy';
import { findResumePoint } from './resume-point';

/** Creates the run folder if needed; every failure says what is wrong with which path. */
export function makeRunFolder(runDir: string): { created: boolean } {
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(runDir);
  } catch {
    /* created below */
  }
  if (st && !st.isDirectory()) throw new ConfigError('save_folder', `${runDir} is a file, not a folder: choose another save_folder`);
  if (st) return { created: false };
  try {
    mkdirRecursive(runDir);
  } catch (e) {
    if (isErrnoError(e)) throw new ConfigError('save_folder', `${describeFsError(e, `the run folder ${runDir}`)}`);
    throw e;
  }
  return { created: true };
}

/**
 * Locks the run folder for this process (the caller is the one process per run that writes it:
 * global rank 0). A folder another live run holds is a FolderLockedError naming it.
 */
export function lockRunFolder(runDir: string): FolderLock {
  try {
    return FolderLock.acquire(runDir, { purpose: 'training runs write a run folder' });
  } catch (e) {
    if (isErrnoError(e)) throw new ConfigError('save_folder', describeFsError(e, `the run folder ${runDir} (writing its lock file)`));
    throw e;
  }
}

/** What the start of a run will do with its folder. */
export interface StartPlan {
  /** The checkpoint to restore (the run's own, or load_path), or null for a fresh start. */
  resumeFrom: string | null;
  /** 'own': continuing this folder's run; 'load_path': starting from another checkpoint. */
  resumeKind: 'own' | 'load_path' | null;
  /** Entries of an earlier run to move aside before this fresh run writes (--no-resume with save_overwrite). */
  moveAside: string[];
  notes: string[];
}

/** Entries that belong to an earlier run (everything but the lock and its temporary files). */
function earlierRunEntries(runDir: string): string[] {
  return fs.readdirSync(runDir).filter((n) => !n.startsWith(LOCK_FILE)).sort();
}

/**
 * Decides where the run starts. A folder with its own checkpoint resumes from it (what `latest`
 * names), which takes precedence over load_path (used for a fresh start only), unless
 * `autoResume` is false (--no-resume): then a folder holding an earlier run is refused unless
 * save_overwrite, which moves that run aside (done later by `finishStart`, once the new run is validated).
 */
export function planStart(runDir: string, o: { autoResume: boolean; loadPath: string | null; saveOverwrite: boolean }): StartPlan {
  const notes: string[] = [];
  if (o.autoResume) {
    const own = findResumePoint(runDir);
    notes.push(...own.notes);
    if (own.dir) {
      if (o.loadPath) notes.push(`resuming this run's own checkpoint ${own.dir}; load_path (${o.loadPath}) is only used to start a fresh run`);
      return { resumeFrom: own.dir, resumeKind: 'own', moveAside: [], notes };
    }
    return { resumeFrom: o.loadPath, resumeKind: o.loadPath ? 'load_path' : null, moveAside: [], notes };
  }
  const earlier = earlierRunEntries(runDir);
  if (earlier.length && !o.saveOverwrite) {
    throw new ConfigError(
      'save_overwrite',
      `--no-resume starts a fresh run, but ${runDir} holds an earlier run (${earlier.slice(0, 4).join(', ')}${earlier.length > 4 ? ', ...' : ''}): ` +
      'set save_overwrite: true to move it aside, choose another save_folder, or drop --no-resume to continue it',
    );
  }
  return { resumeFrom: o.loadPath, resumeKind: o.loadPath ? 'load_path' : null, moveAside: earlier, notes };
}

/**
 * Checkpoint folders beyond the step the run starts at would collide with its saves: refused at
 * start (not after training up to them) unless save_overwrite, which replaces each when the run
 * gets there. Returns notes for the operator.
 */
export function checkLaterCheckpoints(runDir: string, startStep: number, saveOverwrite: boolean): string[] {
  const later = fs.readdirSync(runDir)
    .map((n) => /^step(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && Number(m[1]) > startStep)
    .map((m) => m[0])
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  if (!later.length) return [];
  const list = `${later.slice(0, 4).join(', ')}${later.length > 4 ? ', ...' : ''}`;
  if (!saveOverwrite) {
    throw new ConfigError(
      'save_overwrite',
      `${runDir} already holds ${list}, beyond step ${startStep} where this run starts; saving there would fail later: ` +
      'set save_overwrite: true to replace them as the run reaches them, move them away, or choose another save_folder',
    );
  }
  return [`${runDir} holds ${list} from another run, beyond step ${startStep}: save_overwrite replaces each when this run reaches it`];
}

/** A sibling folder name for an earlier run moved aside: `<run>.previous-<time>`. */
function asideName(runDir: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '').replace('T', '-');
  let dest = `${runDir}.previous-${stamp}`;
  for (let i = 2; fs.existsSync(dest); i++) dest = `${runDir}.previous-${stamp}-${i}`;
  return dest;
}

/**
 * Moves an earlier run's entries into a sibling folder (nothing is deleted) and returns its path.
 * Called once the new run is validated, right before it writes.
 */
export function moveEarlierRunAside(runDir: string, entries: readonly string[]): string {
  const dest = asideName(runDir);
  try {
    fs.mkdirSync(dest);
    for (const n of entries) fs.renameSync(path.join(runDir, n), path.join(dest, n));
  } catch (e) {
    if (isErrnoError(e)) throw new ConfigError('save_overwrite', `moving the earlier run in ${runDir} aside to ${dest} failed: ${describeFsError(e)}`);
    throw e;
  }
  return dest;
}

/** Writes the run's config.yaml atomically (after validation, so a rejected config never replaces it). */
export function writeRunConfig(runDir: string, yaml: string): void {
  try {
    writeAtomic(path.join(runDir, 'config.yaml'), [Buffer.from(yaml)]);
  } catch (e) {
    if (isErrnoError(e)) throw new ConfigError('save_folder', describeFsError(e, path.join(runDir, 'config.yaml')));
    throw e;
  }
}

/** Removes the run folder when this start created it and left nothing in it (a refused start). */
export function removeIfCreatedAndEmpty(runDir: string, created: boolean): void {
  if (!created) return;
  try {
    if (fs.readdirSync(runDir).length === 0) fs.rmdirSync(runDir);
  } catch {
    /* leave it */
  }
}
