// A held-out split of a prepared corpus at document boundaries: every k-th document (by the
// dolma-style metadata beside each token file) goes to a held-out token file that training never
// reads, the rest to a training file. Small corpora only (files are read whole); the split is
// cached beside its inputs' fingerprint and rebuilt when they change.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DocumentIndex } from './doc-index';
import { DataError } from './errors';
import { writeAtomic } from './npy';

/** Options of {@link splitHeldOut}. */
export interface HeldOutOptions {
  /** Token files from prepare-data (each with its .csv.gz document metadata). */
  paths: string[];
  /** Bytes per token of the files (2 for uint16, 4 for uint32). */
  bytesPerToken: 2 | 4;
  /** Document n (counted over all files in order) is held out when n % every === offset. */
  every: number;
  offset?: number;
  /** Where train.npy, heldout.npy and split.json go. */
  outDir: string;
}

/** What {@link splitHeldOut} wrote (or found). */
export interface HeldOutSplit {
  train: string;
  heldOut: string;
  trainDocuments: number;
  heldOutDocuments: number;
  trainTokens: number;
  heldOutTokens: number;
  /** False when an earlier split of the same inputs was reused. */
  created: boolean;
}

/** Splits the corpus (see the file header); the two files are written atomically. */
export function splitHeldOut(o: HeldOutOptions): HeldOutSplit {
  const offset = o.offset ?? 0;
  if (!Number.isInteger(o.every) || o.every < 2) throw new DataError(`every must be an integer >= 2, got ${o.every}`, { key: 'every' });
  const fingerprint = createHash('sha256').update(JSON.stringify({
    v: 1, every: o.every, offset, bytes: o.bytesPerToken,
    files: o.paths.map((p) => [path.resolve(p), fs.statSync(p).size, fs.statSync(p).mtimeMs]),
  })).digest('hex');
  const train = path.join(o.outDir, 'train.npy'), heldOut = path.join(o.outDir, 'heldout.npy'), meta = path.join(o.outDir, 'split.json');
  if (fs.existsSync(meta) && fs.existsSync(train) && fs.existsSync(heldOut)) {
    const m = JSON.parse(fs.readFileSync(meta, 'utf8')) as HeldOutSplit & { fingerprint: string };
    if (m.fingerprint === fingerprint) return { ...m, train, heldOut, created: false };
  }
  const parts: { train: Buffer[]; heldOut: Buffer[] } = { train: [], heldOut: [] };
  const counts = { trainDocuments: 0, heldOutDocuments: 0, trainTokens: 0, heldOutTokens: 0 };
  let n = 0;
  for (const p of o.paths) {
    const index = DocumentIndex.forTokenFile(p);
    if (!index) throw new DataError('no document metadata (.csv.gz) beside the token file; prepare it with olmo-ts prepare-data', { file: p });
    const bytes = fs.readFileSync(p);
    for (const d of index.docs) {
      const slice = bytes.subarray(d.start * o.bytesPerToken, d.end * o.bytesPerToken);
      if (slice.length !== (d.end - d.start) * o.bytesPerToken) throw new DataError(`document ${d.id} [${d.start}, ${d.end}) lies past the end of the file`, { file: p });
      const held = n++ % o.every === offset;
      (held ? parts.heldOut : parts.train).push(slice);
      if (held) { counts.heldOutDocuments++; counts.heldOutTokens += d.end - d.start; } else { counts.trainDocuments++; counts.trainTokens += d.end - d.start; }
    }
  }
  fs.mkdirSync(o.outDir, { recursive: true });
  writeAtomic(train, parts.train);
  writeAtomic(heldOut, parts.heldOut);
  writeAtomic(meta, [Buffer.from(JSON.stringify({ ...counts, fingerprint }, null, 1) + '\n')]);
  return { train, heldOut, ...counts, created: true };
}
