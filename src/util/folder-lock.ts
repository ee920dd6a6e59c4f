// An exclusive lock on a folder for the life of a process (a training run, a prepare-data run):
// a `.olmo-ts.lock` file naming its holder (pid, host, start time, command), created atomically.
// A lock whose holder died (same host, pid gone or reused) is stale and taken over; a live one
// (or one held from another host, which cannot be checked) is a FolderLockedError naming it.
// Distributed runs take it in one process (global rank 0); the others never touch it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The lock file's name inside the locked folder. */
export const LOCK_FILE = '.olmo-ts.lock';

/** What a lock file records about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** What holds it, e.g. "olmo-ts train configs/tiny-cpu.yaml". */
  command: string;
  /** /proc/<pid>/stat start time (clock ticks since boot), to tell a reused pid apart; null off Linux. */
  proc_start: string | null;
  /** Random, so a process can tell its own lock from a later holder's. */
  token: string;
}

/** The folder is locked by a live process (or by one on another host). */
export class FolderLockedError extends Error {
  readonly code = 'ERR_FOLDER_LOCKED';
  constructor(readonly folder: string, readonly holder: LockHolder, readonly remote: boolean, purpose: string) {
    super(
      `${folder} is in use by another process: ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.since}); ` +
      `${purpose} one at a time per folder. ` +
      (remote
        ? `It runs on another host, so olmo-ts cannot check it is alive: if it is gone, delete ${path.join(folder, LOCK_FILE)}.`
        : 'Wait for it to finish, stop it, or use another folder.'),
    );
    this.name = 'FolderLockedError';
  }
}

/** Start time of a process from /proc (Linux), or null where unavailable. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses: fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null; // field 22 overall: starttime
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the holder is on this host and its process is gone (or its pid now belongs to another process). */
export function holderIsDead(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return false;
  if (h.pid === process.pid) return false; // this process holds it (a second lock from the same process is refused too)
  if (!pidAlive(h.pid)) return true;
  const now = processStartTime(h.pid);
  return now !== null && h.proc_start !== null && now !== h.proc_start;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const j = JSON.parse(text) as LockHolder;
    return j && typeof j.pid === 'number' && typeof j.host === 'string' ? j : null;
  } catch {
    return null;
  }
}

/** The current holder of a folder's lock, or null when unlocked (or the lock file is unreadable). */
export function readLockHolder(folder: string): LockHolder | null {
  try {
    return parseHolder(fs.readFileSync(path.join(folder, LOCK_FILE), 'utf8'));
  } catch {
    return null;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Creates `file` with `text` only if it does not exist, never exposing a partly written file. */
function createExclusive(file: string, text: string): boolean {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, text, { flag: 'wx' });
  try {
    fs.linkSync(tmp, file); // atomic, and fails with EEXIST when the lock exists
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // No hard links on this file system: an exclusive create (the content is written right after).
    try {
      fs.writeFileSync(file, text, { flag: 'wx' });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Removes a stale lock whose content is still `staleText`. Breakers serialise on a short-lived
 * `<lock>.break` file, so two processes cannot both remove a lock and one of them delete the
 * other's fresh lock.
 */
function breakStale(file: string, staleText: string): void {
  const guard = `${file}.break`;
  const me = JSON.stringify({ pid: process.pid, host: os.hostname() });
  for (let i = 0; ; i++) {
    if (createExclusive(guard, me)) break;
    try {
      const age = Date.now() - fs.statSync(guard).mtimeMs;
      if (age > 10_000) fs.rmSync(guard, { force: true }); // a breaker died mid-break (it holds the guard for microseconds)
    } catch { /* gone meanwhile */ }
    if (i > 200) return; // give up; the caller retries from the start
    sleepSync(10);
  }
  try {
    let now: string | null = null;
    try { now = fs.readFileSync(file, 'utf8'); } catch { /* already gone */ }
    if (now === staleText) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

const held = new Set<FolderLock>();
let exitHookInstalled = false;

/** An acquired folder lock; `release()` (idempotent) deletes the lock file. Released at process exit too. */
export class FolderLock {
  private released = false;
  /** The stale holder this lock replaced, if any (for a notice: "the previous run ... was not shut down cleanly"). */
  readonly replacedStale: LockHolder | null;

  private constructor(readonly folder: string, readonly file: string, readonly holder: LockHolder, replaced: LockHolder | null) {
    this.replacedStale = replaced;
  }

  /**
   * Locks `folder` (which must exist) for this process. `command` describes the holder in other
   * processes' errors; `purpose` completes the refusal ("training runs" -> "training runs go one
   * at a time per folder"). Throws FolderLockedError when a live process holds it.
   */
  static acquire(folder: string, opts: { command?: string; purpose?: string } = {}): FolderLock {
    const dir = path.resolve(folder);
    const file = path.join(dir, LOCK_FILE);
    const me: LockHolder = {
      pid: process.pid,
      host: os.hostname(),
      since: new Date().toISOString(),
      command: opts.command ?? ['olmo-ts', ...process.argv.slice(2)].join(' '),
      proc_start: processStartTime(process.pid),
      token: randomBytes(8).toString('hex'),
    };
    const text = JSON.stringify(me, null, 1) + '\n';
    let replaced: LockHolder | null = null;
    for (let attempt = 0; attempt < 50; attempt++) {
      if (createExclusive(file, text)) {
        const lock = new FolderLock(dir, file, me, replaced);
        held.add(lock);
        installExitHook();
        return lock;
      }
      let current: string;
      try {
        current = fs.readFileSync(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      const holder = parseHolder(current);
      if (!holder) {
        // Unreadable: a lock from a process that died while writing it (only the no-link fallback
        // can show a partial file), or garbage. Old enough -> stale.
        let age = Infinity;
        try { age = Date.now() - fs.statSync(file).mtimeMs; } catch { continue; }
        if (age < 2000) { sleepSync(50); continue; }
        breakStale(file, current);
        continue;
      }
      if (!holderIsDead(holder)) throw new FolderLockedError(dir, holder, holder.host !== os.hostname(), opts.purpose ?? 'olmo-ts runs');
      replaced = holder;
      breakStale(file, current);
    }
    throw new Error(`could not lock ${dir}: its lock file ${file} keeps changing`);
  }

  /** Deletes the lock file if it is still this process's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    try {
      const now = parseHolder(fs.readFileSync(this.file, 'utf8'));
      if (now && now.token === this.holder.token) fs.rmSync(this.file, { force: true });
    } catch {
      /* gone already, or the folder was removed */
    }
  }

  /** True until release(). */
  get isHeld(): boolean {
    return !this.released;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // process.exit() (e.g. a second SIGTERM) skips finally blocks; the 'exit' event still runs.
  process.on('exit', () => {
    for (const l of [...held]) l.release();
  });
}

/**
 * FolderLock.acquire, waiting up to `waitMs` (polling) while a live process holds the lock, e.g.
 * two first-time users of a shared cache folder: the second waits for the first to finish.
 */
export async function acquireFolderLock(folder: string, opts: { command?: string; purpose?: string; waitMs?: number } = {}): Promise<FolderLock> {
  const t0 = Date.now();
  for (;;) {
    try {
      return FolderLock.acquire(folder, opts);
    } catch (e) {
      if (!(e instanceof FolderLockedError) || e.remote || Date.now() - t0 >= (opts.waitMs ?? 0)) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
