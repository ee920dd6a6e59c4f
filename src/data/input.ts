// Input documents for prepare-data: expanding files, folders and globs into a sorted file list, and
// streaming a JSON-lines file (plain, .gz or .zst) as byte chunks that end on line boundaries.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { glob, hasMagic } from '../util/glob';
import { DataError } from './errors';

/** File names that a folder input contributes. */
const DOC_FILE = /\.(jsonl?|ndjson)(\.gz|\.zst|\.zstd)?$|\.(gz|zst|zstd)$/i;

function walk(dir: string, out: string[]): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && DOC_FILE.test(e.name)) out.push(p);
  }
}

function globMatch(pattern: string): string[] {
  return glob(pattern.split(path.sep).join('/'), { recursive: true }).filter((p) => fs.statSync(p).isFile());
}

/**
 * Expands inputs into a sorted, de-duplicated list of files: a file is taken as is, a folder
 * contributes its *.json[l][.gz|.zst] files recursively, anything with * ? [ is a glob (`**` too).
 * An input that names nothing is an error.
 */
export function expandInputs(inputs: string[]): string[] {
  if (inputs.length === 0) throw new DataError('no input files given', { key: 'inputs' });
  const out = new Set<string>();
  for (const inp of inputs) {
    const found: string[] = [];
    if (fs.existsSync(inp)) {
      if (fs.statSync(inp).isDirectory()) walk(inp, found);
      else found.push(inp);
    } else if (hasMagic(inp)) found.push(...globMatch(inp));
    else throw new DataError('input file or folder not found', { file: inp });
    if (found.length === 0) throw new DataError('no input documents match (expected *.jsonl, *.json.gz, *.jsonl.zst, ...)', { file: inp });
    for (const f of found) out.add(path.normalize(f));
  }
  return [...out].sort();
}

/** Complete lines of a file: `bytes` holds `count` lines (each ended by \n, except maybe the file's last). */
export interface LineChunk {
  bytes: Uint8Array;
  /** 1-based number of the chunk's first line in its file. */
  firstLine: number;
  count: number;
}

function countNewlines(b: Uint8Array, from = 0, to = b.length): number {
  let n = 0;
  for (let i = b.indexOf(10, from); i >= 0 && i < to; i = b.indexOf(10, i + 1)) n++;
  return n;
}

async function* decompressed(file: string): AsyncGenerator<Uint8Array> {
  const fd = await fs.promises.open(file, 'r').catch((e: Error) => {
    throw new DataError(`cannot read: ${e.message}`, { file, cause: e });
  });
  const head = Buffer.alloc(4);
  await fd.read(head, 0, 4, 0);
  await fd.close();
  const isGzip = head[0] === 0x1f && head[1] === 0x8b;
  const isZstd = head.readUInt32LE(0) === 0xfd2fb528;
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  if (isGzip) {
    const gunzip = zlib.createGunzip();
    raw.on('error', (e) => gunzip.destroy(e));
    raw.pipe(gunzip);
    for await (const c of gunzip) yield c as Buffer;
  } else if (isZstd) {
    const { Decompress } = await import('fzstd');
    let pending: Uint8Array[] = [];
    const dec = new Decompress((d) => { pending.push(d); });
    for await (const c of raw) {
      dec.push(c as Buffer);
      for (const p of pending) yield p;
      pending = [];
    }
    dec.push(new Uint8Array(0), true);
    for (const p of pending) yield p;
  } else {
    for await (const c of raw) yield c as Buffer;
  }
}

/**
 * Streams a JSON-lines file (decompressing .gz/.zst by their magic bytes) as chunks of about
 * `chunkBytes` that always end on a line boundary, numbered so errors can name file:line.
 */
export async function* readLineChunks(file: string, chunkBytes = 1 << 20): AsyncGenerator<LineChunk> {
  let carry: Uint8Array = new Uint8Array(0);
  let nextLine = 1;
  try {
    for await (const piece of decompressed(file)) {
      let buf: Uint8Array = carry.length ? Buffer.concat([carry, piece]) : piece;
      while (buf.length >= chunkBytes) {
        const cut = buf.lastIndexOf(10, buf.length - 1);
        if (cut < 0) break; // one very long line: keep reading
        const bytes = buf.subarray(0, cut + 1);
        const count = countNewlines(bytes);
        yield { bytes: Uint8Array.from(bytes), firstLine: nextLine, count };
        nextLine += count;
        buf = buf.subarray(cut + 1);
      }
      carry = Uint8Array.from(buf);
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    // Hand over the complete lines read before the failure, then report where reading stopped.
    const cut = carry.lastIndexOf(10);
    if (cut >= 0) {
      const bytes = carry.slice(0, cut + 1);
      const count = countNewlines(bytes);
      yield { bytes, firstLine: nextLine, count };
      nextLine += count;
    }
    throw new DataError(`unreadable from this line on (${(e as Error).message}); the lines before it were read`, { file, line: nextLine, cause: e });
  }
  if (carry.length) {
    const count = countNewlines(carry) + (carry[carry.length - 1] === 10 ? 0 : 1);
    yield { bytes: carry, firstLine: nextLine, count };
  }
}

/** One parsed input line: a document, an empty document, or a problem. */
export type ParsedLine =
  | { kind: 'doc'; line: number; text: string; id?: string }
  | { kind: 'error'; line: number; message: string };

/** Splits a chunk into lines and parses each as a JSON document with a "text" string (blank lines are skipped). */
export function parseChunk(chunk: LineChunk): ParsedLine[] {
  const out: ParsedLine[] = [];
  const dec = new TextDecoder('utf-8', { fatal: true });
  const b = chunk.bytes;
  let start = 0;
  for (let i = 0; i < chunk.count; i++) {
    let end = b.indexOf(10, start);
    if (end < 0) end = b.length;
    const lineNo = chunk.firstLine + i;
    let stop = end;
    if (stop > start && b[stop - 1] === 13) stop--; // \r\n
    const bytes = b.subarray(start, stop);
    start = end + 1;
    let s: string;
    try {
      s = dec.decode(bytes);
    } catch {
      out.push({ kind: 'error', line: lineNo, message: 'invalid UTF-8' });
      continue;
    }
    if (s.trim().length === 0) continue;
    let row: unknown;
    try {
      row = JSON.parse(s);
    } catch (e) {
      out.push({ kind: 'error', line: lineNo, message: `malformed JSON (${(e as Error).message})` });
      continue;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      out.push({ kind: 'error', line: lineNo, message: 'expected a JSON object with a "text" field' });
      continue;
    }
    const r = row as { text?: unknown; id?: unknown };
    if (typeof r.text !== 'string') {
      out.push({ kind: 'error', line: lineNo, message: r.text === undefined ? 'document has no "text" field' : `"text" is ${typeof r.text === 'object' ? (r.text === null ? 'null' : 'an object') : `a ${typeof r.text}`}, not a string` });
      continue;
    }
    const id = typeof r.id === 'string' ? r.id : typeof r.id === 'number' ? String(r.id) : undefined;
    out.push({ kind: 'doc', line: lineNo, text: r.text, id });
  }
  return out;
}
