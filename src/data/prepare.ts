// prepare-data: JSON-lines documents -> OLMo memmap token files plus dolma-style metadata, tokenized
// across worker threads. Chunks are numbered as read and written strictly in that order, so the
// output is byte-identical whatever the number of workers. One run per output folder at a time
// (a folder lock); parts are written into a staging folder and appear under their final names,
// with the manifest written last, only once all of them are complete.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startWorker } from './threads';
import { DataError } from './errors';
import { LineChunk, expandInputs, readLineChunks } from './input';
import { ChunkResult, PrepareWorkerData, WorkerReply, tokenizeChunk } from './prepare-worker';
import { TokenDType, DTYPE_MAX, TokenFileWriter, WrittenFile } from './token-writer';
import { TextTokenizer, TokenizerSpec, loadTokenizer } from './tokenizer';
import { writeAtomic } from './npy';
import { MANIFEST, STAGING_PREFIX } from './manifest';
import { FolderLock, acquireFolderLock } from '../util/folder-lock';
import { describeFsError, isErrnoError, mkdirRecursive } from '../util/fs-errors';

export { MANIFEST } from './manifest';

/** Options of `prepareData` (the `olmo-ts prepare-data` flags). */
export interface PrepareOptions {
  /** Files, folders or globs of JSON lines with a "text" field (plain, .gz or .zst). */
  inputs: string[];
  /** Output folder for part-NNNNN.npy / part-NNNNN.csv.gz and manifest.json. */
  output: string;
  /** Tokenizer and its EOS/pad ids. */
  tokenizer: TokenizerSpec;
  /** Token dtype (default: uint16, or uint32 for vocabularies over 65536). */
  dtype?: TokenDType;
  /** Tokens per output file before rolling over (default 512Mi, OLMo's). */
  maxTokensPerFile?: number;
  /** Worker threads (default: none for HF tokenizer.json files, which use every core already; CPUs, at most 8, for gpt2/cl100k); 0 tokenizes on the calling thread. */
  workers?: number;
  /** 'fail' (default) stops at the first bad line; 'skip' reports and skips bad lines. */
  onError?: 'skip' | 'fail';
  /** Replace a previous run's outputs in `output`. */
  overwrite?: boolean;
  /** Uncompressed bytes per work chunk (default 1 MiB). */
  chunkBytes?: number;
  /** Called about every `progressMs` (default 250) and once at the end. */
  onProgress?: (p: PrepareProgress) => void;
  progressMs?: number;
  /** Stops the run (nothing is left in the output folder; its earlier contents stay) when aborted. */
  signal?: AbortSignal;
  /** Wait up to this long for another process's lock on the output folder (default 0: refuse at once). */
  lockWaitMs?: number;
  /** The output folder's lock, already held by the caller (kept held on return). */
  heldLock?: FolderLock;
}

/** Running totals. */
export interface PrepareProgress {
  documents: number;
  tokens: number;
  /** Uncompressed input bytes tokenized so far. */
  bytes: number;
  filesDone: number;
  filesTotal: number;
  seconds: number;
}

/** A bad input line (or file) that was skipped. */
export interface SkippedLine { file: string; line: number; message: string }

/** What a finished run produced. */
export interface PrepareSummary extends PrepareProgress {
  outputs: WrittenFile[];
  skipped: SkippedLine[];
  /** Documents with empty text after stripping (skipped, as OLMo does). */
  emptyDocuments: number;
  workers: number;
  manifestPath: string;
  eosTokenId: number;
  padTokenId: number;
  vocabSize: number;
  dtype: TokenDType;
}

interface Job { seq: number; file: string; fileIndex: number; chunk: LineChunk; lastOfFile: boolean; fileError?: DataError }

/** Runs chunks through worker threads (or inline) and hands results back by sequence number. */
class Pool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (r: ChunkResult) => void; reject: (e: Error) => void }>();
  private next = 0;
  constructor(n: number, spec: TokenizerSpec, private readonly dtype: TokenDType, private readonly inline?: TextTokenizer) {
    // HF tokenizers' Rust thread pool is one per process, shared by all workers' encodeBatch calls,
    // so workers add JSON parsing / js-tiktoken parallelism without oversubscribing the CPUs.
    for (let i = 0; i < n; i++) {
      const w = startWorker('prepare-worker', {
        workerData: { kind: 'olmo-ts-prepare', tokenizer: spec, dtype } satisfies PrepareWorkerData,
      });
      w.on('message', (m: WorkerReply) => {
        const p = this.waiting.get(m.seq);
        this.waiting.delete(m.seq);
        if (!p) return;
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(m.message));
      });
      w.on('error', (e) => { for (const p of this.waiting.values()) p.reject(e); this.waiting.clear(); });
      this.workers.push(w);
    }
  }
  run(seq: number, chunk: LineChunk): Promise<ChunkResult> {
    if (this.workers.length === 0) return tokenizeChunk(this.inline!, chunk, this.dtype);
    const w = this.workers[this.next++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      w.postMessage({ seq, chunk }, [chunk.bytes.buffer as ArrayBuffer]);
    });
  }
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

const isOutputName = (n: string): boolean => n === MANIFEST || /^part-\d{5}\.(npy|csv\.gz)(\.tmp-\d+)?$/.test(n);

/** Refuses a folder holding an earlier run's outputs unless `overwrite` (nothing is deleted here). */
function checkPreviousOutputs(dir: string, overwrite: boolean): void {
  const old = fs.readdirSync(dir).filter(isOutputName);
  if (old.length === 0 || overwrite) return;
  throw new DataError(`output folder already holds prepared data (${old.slice(0, 3).join(', ')}${old.length > 3 ? ', ...' : ''}); pass --overwrite to replace it`, { file: dir });
}

/** Creates the output folder, with the reason in words when it cannot be created. */
function makeOutputFolder(dir: string): void {
  try {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new DataError('the output path is a file, not a folder', { file: dir });
    mkdirRecursive(dir);
  } catch (e) {
    if (isErrnoError(e)) throw new DataError(describeFsError(e, 'the output folder'), { file: dir, cause: e });
    throw e;
  }
}

/**
 * Moves a finished run from the staging folder into `dir`: the earlier manifest goes first (so the
 * folder reads as unfinished while it is being replaced), then earlier parts, then the new parts,
 * and the new manifest last.
 */
function publish(dir: string, staging: string, outputs: WrittenFile[]): WrittenFile[] {
  fs.rmSync(path.join(dir, MANIFEST), { force: true });
  for (const n of fs.readdirSync(dir).filter(isOutputName)) fs.rmSync(path.join(dir, n), { force: true });
  const moved = outputs.map((f) => {
    const p = path.join(dir, path.basename(f.path)), m = path.join(dir, path.basename(f.metadataPath));
    fs.renameSync(f.metadataPath, m);
    fs.renameSync(f.path, p);
    return { ...f, path: p, metadataPath: m };
  });
  fs.renameSync(path.join(staging, MANIFEST), path.join(dir, MANIFEST));
  fs.rmSync(staging, { recursive: true, force: true });
  return moved;
}

/**
 * Tokenizes every document of the inputs into token files in `o.output` and returns a summary.
 * On a bad line with onError 'fail' (or an unreadable file) nothing is left behind and the
 * DataError names file:line; with 'skip' bad lines are listed in `summary.skipped`.
 */
export async function prepareData(o: PrepareOptions): Promise<PrepareSummary> {
  const t0 = performance.now();
  if (o.dtype !== undefined && o.dtype !== 'uint16' && o.dtype !== 'uint32') throw new DataError(`expected uint16 or uint32, got ${JSON.stringify(o.dtype)}`, { key: 'dtype' });
  const onError = o.onError ?? 'fail';
  if (onError !== 'skip' && onError !== 'fail') throw new DataError(`expected skip or fail, got ${JSON.stringify(onError)}`, { key: 'onError' });
  const files = expandInputs(o.inputs);
  const tok = await loadTokenizer(o.tokenizer);
  // Default: the smallest dtype that holds every id (uint32 for vocabularies over 65,536, e.g. dolma2's).
  const dtype: TokenDType = o.dtype ?? (tok.vocabSize - 1 > DTYPE_MAX.uint16 ? 'uint32' : 'uint16');
  if (tok.vocabSize - 1 > DTYPE_MAX[dtype]) {
    throw new DataError(`${tok.identifier} has ${tok.vocabSize} ids, more than ${dtype} holds; use --dtype uint32`, { key: 'dtype' });
  }
  const spec: TokenizerSpec = { identifier: tok.identifier, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId };
  // Default workers: HF tokenizers already encode a batch on every core (Rust thread pool), so
  // worker threads only add contention (bench/tokenize.bench.ts, 2 cores: 4.1 MB/s with none, 3.3
  // with 2); js-tiktoken is single-threaded JS and scales with workers (2.6 -> 4.0 MB/s with 2).
  const hf = fs.existsSync(tok.identifier);
  const nWorkers = Math.max(0, Math.floor(o.workers ?? (hf ? 0 : Math.min(os.availableParallelism(), 8))));
  const maxTokens = o.maxTokensPerFile ?? 512 * 1024 * 1024;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new DataError(`expected a positive integer, got ${maxTokens}`, { key: 'maxTokensPerFile' });
  makeOutputFolder(o.output);
  const lock = o.heldLock ?? await acquireFolderLock(o.output, { purpose: 'prepare-data runs', waitMs: o.lockWaitMs });
  const releaseLock = (): void => { if (!o.heldLock) lock.release(); };
  const staging = path.join(o.output, `${STAGING_PREFIX}${process.pid}`);
  let writer: TokenFileWriter;
  try {
    // Holding the lock, any staging folder is a dead run's.
    for (const n of fs.readdirSync(o.output)) if (n.startsWith(STAGING_PREFIX)) fs.rmSync(path.join(o.output, n), { recursive: true, force: true });
    checkPreviousOutputs(o.output, !!o.overwrite);
    writer = new TokenFileWriter(staging, dtype, maxTokens);
  } catch (e) {
    releaseLock();
    throw e;
  }
  const pool = new Pool(nWorkers, spec, dtype, tok);
  const progress: PrepareProgress = { documents: 0, tokens: 0, bytes: 0, filesDone: 0, filesTotal: files.length, seconds: 0 };
  const skipped: SkippedLine[] = [];
  let empty = 0;
  let lastReport = 0;
  const report = (force = false): void => {
    progress.seconds = (performance.now() - t0) / 1000;
    if (o.onProgress && (force || performance.now() - lastReport >= (o.progressMs ?? 250))) {
      lastReport = performance.now();
      o.onProgress({ ...progress });
    }
  };
  const hashes = new Map<string, string>();
  const defaultId = (file: string, line: number): string => {
    let h = hashes.get(file);
    if (!h) hashes.set(file, (h = createHash('sha256').update(file).digest('hex')));
    return `${h}-${line}`; // dolma's id for documents without one
  };
  const badLine = (file: string, line: number, message: string): void => {
    if (onError === 'fail') throw new DataError(`${message} (use --on-error skip to skip bad lines)`, { file, line });
    skipped.push({ file, line, message });
  };

  // Reader: numbers the chunks; results are consumed strictly in that order.
  const inFlight: Array<{ job: Job; result: Promise<ChunkResult> }> = [];
  const maxInFlight = Math.max(2, nWorkers * 3);
  const checkAborted = (): void => {
    if (o.signal?.aborted) throw new DataError(`interrupted (${String(o.signal.reason ?? 'aborted')}); nothing was written`, { file: o.output });
  };
  const consume = async (): Promise<void> => {
    checkAborted();
    const { job, result } = inFlight.shift()!;
    if (job.fileError) {
      // An unreadable or corrupt file under 'skip', recorded in input order: what was read is kept.
      skipped.push({ file: job.file, line: job.fileError.line ?? 0, message: job.fileError.detail });
      return;
    }
    let r: ChunkResult;
    try {
      r = await result;
    } catch (e) {
      throw new DataError(`tokenizing lines ${job.chunk.firstLine}-${job.chunk.firstLine + job.chunk.count - 1} failed: ${(e as Error).message}`, { file: job.file, cause: e });
    }
    let errI = 0, off = 0;
    for (let d = 0; d < r.docLengths.length; d++) {
      const line = r.docLines[d]!;
      while (errI < r.errors.length && r.errors[errI]!.line < line) { badLine(job.file, r.errors[errI]!.line, r.errors[errI]!.message); errI++; }
      const len = r.docLengths[d]!;
      await writer.write(r.tokens.subarray(off, off + len), r.docIds[d] ?? defaultId(job.file, line), job.file, line);
      off += len;
      progress.documents++;
      progress.tokens += len;
    }
    for (; errI < r.errors.length; errI++) badLine(job.file, r.errors[errI]!.line, r.errors[errI]!.message);
    empty += r.empty;
    progress.bytes += r.bytes;
    if (job.lastOfFile) progress.filesDone++;
    report();
  };

  let seq = 0;
  try {
    for (let fi = 0; fi < files.length; fi++) {
      const file = files[fi]!;
      let sawChunk = false;
      try {
        // Look one chunk ahead so the last chunk of a file is known.
        let prev: LineChunk | undefined;
        for await (const chunk of readLineChunks(file, o.chunkBytes ?? 1 << 20)) {
          checkAborted();
          if (prev) {
            const job: Job = { seq: seq++, file, fileIndex: fi, chunk: prev, lastOfFile: false };
            inFlight.push({ job, result: pool.run(job.seq, prev) });
            while (inFlight.length >= maxInFlight) await consume();
          }
          prev = chunk;
          sawChunk = true;
        }
        if (prev) {
          const job: Job = { seq: seq++, file, fileIndex: fi, chunk: prev, lastOfFile: true };
          inFlight.push({ job, result: pool.run(job.seq, prev) });
        }
      } catch (e) {
        if (!(e instanceof DataError) || onError === 'fail') throw e;
        const job: Job = { seq: seq++, file, fileIndex: fi, chunk: { bytes: new Uint8Array(0), firstLine: 0, count: 0 }, lastOfFile: true, fileError: e };
        inFlight.push({ job, result: Promise.resolve(null as unknown as ChunkResult) });
      }
      if (!sawChunk) progress.filesDone++;
      while (inFlight.length > maxInFlight / 2) await consume();
    }
    while (inFlight.length) await consume();
    checkAborted();
    const staged = await writer.close();
    report(true);
    const manifest = {
      format: 'olmo-memmap', dtype, tokenizer: tok.identifier, vocab_size: tok.vocabSize,
      eos_token_id: tok.eosTokenId, pad_token_id: tok.padTokenId, inputs: files,
      files: staged.map((f) => ({ path: path.basename(f.path), metadata: path.basename(f.metadataPath), tokens: f.tokens, documents: f.documents, max_token_id: f.maxTokenId })),
      documents: progress.documents, tokens: progress.tokens, empty_documents: empty, skipped: skipped.length,
      max_token_id: staged.reduce((m, f) => Math.max(m, f.maxTokenId), -1),
    };
    writeAtomic(path.join(staging, MANIFEST), [Buffer.from(JSON.stringify(manifest, null, 2) + '\n')]);
    const outputs = publish(o.output, staging, staged);
    return {
      ...progress, outputs, skipped, emptyDocuments: empty, workers: nWorkers, manifestPath: path.join(o.output, MANIFEST),
      eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId, vocabSize: tok.vocabSize, dtype,
    };
  } catch (e) {
    await writer.abort();
    await Promise.allSettled(inFlight.map((x) => x.result));
    fs.rmSync(staging, { recursive: true, force: true });
    if (isErrnoError(e)) throw new DataError(describeFsError(e), { file: o.output, cause: e });
    throw e;
  } finally {
    await pool.close();
    releaseLock();
  }
}

/** A one-line human summary of a finished run. */
export function formatSummary(s: PrepareSummary): string {
  const mb = s.bytes / 1e6;
  return [
    `prepared ${s.documents.toLocaleString('en-US')} documents, ${s.tokens.toLocaleString('en-US')} tokens (${s.dtype}) from ${s.filesTotal} file(s)`,
    `into ${s.outputs.length} token file(s) in ${s.seconds.toFixed(1)} s: ${(mb / Math.max(s.seconds, 1e-9)).toFixed(2)} MB/s of text on ${s.workers || 'no'} worker thread(s)`,
    s.emptyDocuments ? `${s.emptyDocuments} empty document(s) skipped` : '',
    s.skipped.length ? `${s.skipped.length} bad line(s) skipped; first: ${s.skipped[0]!.file}:${s.skipped[0]!.line}: ${s.skipped[0]!.message}` : '',
  ].filter(Boolean).join('\n');
}
