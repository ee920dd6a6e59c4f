// File-system errors in words: turns Node's errno errors (ENOSPC, EROFS, EACCES, EEXIST, ...) into a
// sentence naming the path and what is wrong, for the CLI and for start-up checks of run folders.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Node's system error shape (fs calls set code, syscall and path). */
export interface ErrnoError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/** True for an error thrown by a system call (it has an errno code such as ENOENT). */
export function isErrnoError(e: unknown): e is ErrnoError {
  return e instanceof Error && typeof (e as ErrnoError).code === 'string' && /^E[A-Z0-9]+$/.test((e as ErrnoError).code!) && typeof (e as ErrnoError).syscall === 'string';
}

const WHY: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'the operation is not permitted',
  EEXIST: 'something already exists there',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, where a file was expected',
  ENOENT: 'it does not exist',
  ENOTEMPTY: 'the folder is not empty',
  EMFILE: 'too many open files (raise `ulimit -n`)',
  ENFILE: 'too many open files on this machine',
  EIO: 'an input/output error (a failing disk or network file system?)',
  ENAMETOOLONG: 'the name is too long',
  EXDEV: 'it would move data across file systems',
  EBUSY: 'it is busy (a mount point, or in use)',
  ELOOP: 'too many symbolic links',
};

const ACTION: Record<string, string> = {
  open: 'open', read: 'read', write: 'write to', mkdir: 'create', rmdir: 'remove the folder', unlink: 'delete',
  rename: 'rename', symlink: 'create the link', link: 'create the link', stat: 'look at', lstat: 'look at', scandir: 'list',
  fsync: 'flush to disk', copyfile: 'copy', readlink: 'read the link', access: 'access', close: 'close', ftruncate: 'truncate',
};

/** The reason of an errno code in words, e.g. "the disk is full" for ENOSPC (the code itself when unknown). */
export function errnoReason(code: string | undefined): string {
  return (code && WHY[code]) || code || 'an unknown error';
}

/**
 * "cannot write to /runs/x/config.yaml: the disk is full (ENOSPC)". `what` replaces the path
 * (e.g. "the run folder /runs/x"); without `e.path` and `what` only the reason is given.
 */
export function describeFsError(e: ErrnoError, what?: string): string {
  const action = (e.syscall && ACTION[e.syscall]) || e.syscall || 'use';
  const target = what ?? e.path ?? '';
  const dest = e.dest && !what ? ` -> ${e.dest}` : '';
  return `cannot ${action} ${target}${dest}: ${errnoReason(e.code)} (${e.code})`.replace(/ {2,}/g, ' ');
}

/**
 * fs.mkdirSync(dir, {recursive: true}), but failing with the real reason: Node's recursive mkdir
 * reports ENOENT where the first missing folder cannot be created (e.g. EROFS on a read-only
 * file system); this retries that one folder alone to surface its own error.
 */
export function mkdirRecursive(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    if ((e as ErrnoError).code !== 'ENOENT') throw e;
    let first = path.resolve(dir);
    while (!fs.existsSync(path.dirname(first)) && path.dirname(first) !== first) first = path.dirname(first);
    fs.mkdirSync(first); // throws the real error (or succeeds, and the retry below finishes the job)
    fs.mkdirSync(dir, { recursive: true });
  }
}
