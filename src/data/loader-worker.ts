// A data-loader worker thread: rebuilds the MemMapDataset from its options, then reads and collates
// each batch of indices it is sent and returns the arrays (transferred, not copied).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Batch, CollatorOptions, collate } from './collator';
import { MemMapDataset, MemMapDatasetOptions } from './memmap-dataset';

/** What a loader worker starts with. */
export interface LoaderWorkerData {
  kind: 'olmo-ts-loader';
  dataset: MemMapDatasetOptions;
  collator: CollatorOptions;
}

/** A batch request: the dataset indices of one device batch. */
export interface LoaderRequest { seq: number; indices: Uint32Array }
/** The answer. */
export type LoaderReply = { seq: number; ok: true; batch: Batch } | { seq: number; ok: false; message: string };

/** Transferable buffers of a batch. */
export function batchTransferList(b: Batch): ArrayBuffer[] {
  const l = [b.inputIds.buffer, b.index.buffer] as ArrayBuffer[];
  if (b.attentionMask) l.push(b.attentionMask.buffer as ArrayBuffer);
  if (b.labelMask) l.push(b.labelMask.buffer as ArrayBuffer);
  return l;
}

if (!isMainThread && (workerData as LoaderWorkerData | undefined)?.kind === 'olmo-ts-loader') {
  const wd = workerData as LoaderWorkerData;
  const ds = new MemMapDataset(wd.dataset);
  parentPort!.on('message', (req: LoaderRequest) => {
    try {
      const batch = collate(Array.from(req.indices, (i) => ds.get(i)), wd.collator);
      parentPort!.postMessage({ seq: req.seq, ok: true, batch } satisfies LoaderReply, batchTransferList(batch));
    } catch (e) {
      parentPort!.postMessage({ seq: req.seq, ok: false, message: (e as Error).message } satisfies LoaderReply);
    }
  });
}
