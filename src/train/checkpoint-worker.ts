// The checkpoint writer thread: receives in-memory checkpoint files from the training thread and
// writes them with CheckpointFolder, so file I/O never waits for the training loop's event loop.
import { parentPort } from 'node:worker_threads';
import { CheckpointFolder, FileChunks, FolderOptions } from './checkpoint-files';

/** A request from the training thread. */
export interface WriteRequest {
  seq: number;
  folder: string;
  opts: FolderOptions;
  step: number;
  ephemeral: boolean;
  /** Each file's chunks (header, tensors), written in order. */
  files: [string, FileChunks][];
}
/** The reply: the checkpoint folder, or the error's name and message. */
export type WriteReply = { seq: number; ok: true; dir: string } | { seq: number; ok: false; name: string; message: string };

if (parentPort) {
  const port = parentPort;
  let folder: CheckpointFolder | null = null;
  port.on('message', (r: WriteRequest) => {
    try {
      folder ??= new CheckpointFolder(r.folder, r.opts);
      const dir = folder.write(r.step, new Map(r.files), r.ephemeral);
      port.postMessage({ seq: r.seq, ok: true, dir } satisfies WriteReply);
    } catch (e) {
      const err = e as Error;
      port.postMessage({ seq: r.seq, ok: false, name: err.name, message: err.message } satisfies WriteReply);
    }
  });
}
