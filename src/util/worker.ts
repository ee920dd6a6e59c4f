// Starting a worker thread from either the compiled .js file or its .ts source (tests and
// benchmarks run through tsx, whose require hook the worker must install for itself).
import * as path from 'node:path';
import { Worker, WorkerOptions } from 'node:worker_threads';

/** A Worker running `<dir>/<name>.js` (or `.ts` when this module itself runs from source). */
export function startWorkerFile(dir: string, name: string, options: WorkerOptions = {}): Worker {
  const ext = path.extname(__filename);
  const file = path.join(dir, `${name}${ext}`);
  if (ext !== '.ts') return new Worker(file, options);
  // A worker's ESM entry ignores loader hooks registered by --import; a CommonJS bootstrap that
  // installs tsx's require hook first works on every Node version we support.
  const boot = `require('tsx/cjs/api').register(); require(${JSON.stringify(file)});`;
  return new Worker(boot, { ...options, eval: true });
}
