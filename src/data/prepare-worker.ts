// Tokenizes chunks of JSON lines for prepare-data, in a worker thread (or inline when workers = 0):
// parse, strip as Python does, skip empty text, encode, append EOS, pack into uint16/uint32.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { LineChunk, parseChunk } from './input';
import { TextTokenizer, TokenizerSpec, appendEos, loadTokenizer, pythonStrip } from './tokenizer';
import { DTYPE_MAX, TokenDType } from './token-writer';

/** A chunk's tokenized documents, in input order. */
export interface ChunkResult {
  /** All documents' tokens, back to back (EOS after each). */
  tokens: Uint16Array | Uint32Array;
  /** Token count of each document. */
  docLengths: Uint32Array;
  /** Source line of each document. */
  docLines: Uint32Array;
  /** The document's "id" field, or null. */
  docIds: (string | null)[];
  /** Lines that could not be used. */
  errors: { line: number; message: string }[];
  /** Documents whose text was empty after stripping (skipped, as OLMo does). */
  empty: number;
  /** Uncompressed input bytes in the chunk. */
  bytes: number;
}

/** Tokenizes one chunk with a loaded tokenizer. */
export async function tokenizeChunk(tok: TextTokenizer, chunk: LineChunk, dtype: TokenDType): Promise<ChunkResult> {
  const parsed = parseChunk(chunk);
  const errors: ChunkResult['errors'] = [];
  const texts: string[] = [], lines: number[] = [], ids: (string | null)[] = [];
  let empty = 0;
  for (const p of parsed) {
    if (p.kind === 'error') { errors.push({ line: p.line, message: p.message }); continue; }
    const text = pythonStrip(p.text);
    if (text.length === 0) { empty++; continue; }
    texts.push(text);
    lines.push(p.line);
    ids.push(p.id ?? null);
  }
  const encoded = texts.length ? await tok.encodeBatch(texts) : [];
  let total = 0;
  for (const ids of encoded) total += appendEos(ids, tok.eosTokenId).length;
  const tokens = dtype === 'uint16' ? new Uint16Array(total) : new Uint32Array(total);
  const max = DTYPE_MAX[dtype];
  const docLengths = new Uint32Array(encoded.length);
  let off = 0;
  encoded.forEach((ids, d) => {
    for (const id of ids) {
      if (id > max) throw new Error(`line ${lines[d]}: token id ${id} does not fit ${dtype}`);
      tokens[off++] = id;
    }
    docLengths[d] = ids.length;
  });
  return { tokens, docLengths, docLines: Uint32Array.from(lines), docIds: ids, errors, empty, bytes: chunk.bytes.length };
}

/** What the worker is started with. */
export interface PrepareWorkerData {
  kind: 'olmo-ts-prepare';
  tokenizer: TokenizerSpec;
  dtype: TokenDType;
}

/** A request to the worker. */
export interface WorkerRequest { seq: number; chunk: LineChunk }
/** The worker's answer. */
export type WorkerReply = { seq: number; ok: true; result: ChunkResult } | { seq: number; ok: false; message: string };

if (!isMainThread && (workerData as PrepareWorkerData | undefined)?.kind === 'olmo-ts-prepare') {
  const wd = workerData as PrepareWorkerData;
  const ready = loadTokenizer(wd.tokenizer);
  parentPort!.on('message', (req: WorkerRequest) => {
    void (async () => {
      try {
        const r = await tokenizeChunk(await ready, req.chunk, wd.dtype);
        parentPort!.postMessage({ seq: req.seq, ok: true, result: r } satisfies WorkerReply, [r.tokens.buffer as ArrayBuffer]);
      } catch (e) {
        parentPort!.postMessage({ seq: req.seq, ok: false, message: (e as Error).message } satisfies WorkerReply);
      }
    })();
  });
}
