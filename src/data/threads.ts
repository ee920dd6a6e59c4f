// Starting this folder's worker threads from either the compiled .js files or the .ts sources (tests
// and benchmarks run through tsx, whose require hook the worker must install for itself).
import * as path from 'node:path';
import { Worker, WorkerOptions } from 'node:worker_threads';

/** A Worker running `<this folder>/<name>.(js|ts)`. */
export function startWorker(name: string, options: WorkerOptions): Worker {
  const ext = path.extname(__filename);
  const file = path.join(__dirname, `${name}${ext}`);
  if (ext !== '.ts') return new Worker(file, options);
  // A worker's ESM entry ignores loader hooks registered by --import; a CommonJS bootstrap that
  // installs tsx's require hook first works on every Node version we support.
  const boot = `require('tsx/cjs/api').register(); require(${JSON.stringify(file)});`;
  return new Worker(boot, { ...options, eval: true });
}
