// Starting this folder's worker threads (loader and prepare workers).
import { Worker, WorkerOptions } from 'node:worker_threads';
import { startWorkerFile } from '../util/worker';

/** A Worker running `<this folder>/<name>.(js|ts)`. */
export function startWorker(name: string, options: WorkerOptions): Worker {
  return startWorkerFile(__dirname, name, options);
}
