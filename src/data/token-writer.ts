// Writes prepared documents as OLMo memmap token files (headerless little-endian uint16/uint32,
// `.npy` names) that roll over at a size limit, each with a dolma-style `.csv.gz` beside it
// (rows: start,end,id,src,loc). Files get their final names only once complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { once } from 'node:events';
import { DataError } from './errors';

/** Token file dtypes prepare can write. */
export type TokenDType = 'uint16' | 'uint32';

/** Largest id each dtype can hold. */
export const DTYPE_MAX: Record<TokenDType, number> = { uint16: 0xffff, uint32: 0xffffffff };

/** One finished output file. */
export interface WrittenFile {
  path: string;
  metadataPath: string;
  tokens: number;
  documents: number;
  /** The largest token id written to the file (-1 when empty). */
  maxTokenId: number;
}

/** Python csv's QUOTE_MINIMAL quoting of one field. */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

interface Open {
  final: string;
  tmp: string;
  fd: number;
  metaFinal: string;
  metaTmp: string;
  gzip: zlib.Gzip;
  metaOut: fs.WriteStream;
  tokens: number;
  documents: number;
  maxTokenId: number;
  rows: string[];
}

/**
 * Appends documents to `<dir>/<prefix>-NNNNN.npy`; a document never straddles two files (as in
 * dolma): when it would pass `maxTokens`, the current file is closed and the next one started.
 */
export class TokenFileWriter {
  readonly files: WrittenFile[] = [];
  private cur: Open | null = null;
  private readonly tmpSuffix = `.tmp-${process.pid}`;

  constructor(
    private readonly dir: string,
    private readonly dtype: TokenDType,
    private readonly maxTokens: number,
    private readonly prefix = 'part',
  ) {
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new DataError(`expected a positive integer, got ${maxTokens}`, { key: 'maxTokensPerFile' });
    fs.mkdirSync(dir, { recursive: true });
  }

  private open(): Open {
    const name = `${this.prefix}-${String(this.files.length).padStart(5, '0')}`;
    const final = path.join(this.dir, `${name}.npy`);
    const metaFinal = path.join(this.dir, `${name}.csv.gz`);
    const tmp = final + this.tmpSuffix, metaTmp = metaFinal + this.tmpSuffix;
    const fd = fs.openSync(tmp, 'w');
    const gzip = zlib.createGzip();
    const metaOut = fs.createWriteStream(metaTmp);
    gzip.pipe(metaOut);
    return { final, tmp, fd, metaFinal, metaTmp, gzip, metaOut, tokens: 0, documents: 0, maxTokenId: -1, rows: [] };
  }

  /** Appends one document's tokens (EOS included) with its id and source location. */
  async write(tokens: Uint16Array | Uint32Array, id: string, src: string, loc: number): Promise<void> {
    if (this.cur && this.cur.tokens > 0 && this.cur.tokens + tokens.length > this.maxTokens) await this.closeCurrent();
    const c = (this.cur ??= this.open());
    let max = c.maxTokenId;
    for (let i = 0; i < tokens.length; i++) if (tokens[i]! > max) max = tokens[i]!;
    c.maxTokenId = max;
    const bytes = new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength);
    for (let off = 0; off < bytes.length;) off += fs.writeSync(c.fd, bytes, off, bytes.length - off);
    c.rows.push(`${c.tokens},${c.tokens + tokens.length},${csvField(id)},${csvField(src)},${loc}\r\n`);
    c.tokens += tokens.length;
    c.documents++;
    if (c.rows.length >= 4096) await this.flushRows(c);
  }

  private async flushRows(c: Open): Promise<void> {
    if (!c.gzip.write(c.rows.join(''))) await once(c.gzip, 'drain');
    c.rows = [];
  }

  private async closeCurrent(): Promise<void> {
    const c = this.cur;
    if (!c) return;
    this.cur = null;
    await this.flushRows(c);
    c.gzip.end();
    await once(c.metaOut, 'close');
    fs.fsyncSync(c.fd);
    fs.closeSync(c.fd);
    fs.renameSync(c.metaTmp, c.metaFinal);
    fs.renameSync(c.tmp, c.final);
    this.files.push({ path: c.final, metadataPath: c.metaFinal, tokens: c.tokens, documents: c.documents, maxTokenId: c.maxTokenId });
  }

  /** Finishes the last file and returns every file written. */
  async close(): Promise<WrittenFile[]> {
    await this.closeCurrent();
    return this.files;
  }

  /**
   * Abandons the run: deletes the open temporary files and every file already finished. Resolves
   * once the metadata stream has closed (it may still be opening its file when this is called).
   */
  async abort(): Promise<void> {
    const c = this.cur;
    this.cur = null;
    if (c) {
      try { fs.closeSync(c.fd); } catch { /* already closed */ }
      const closed = c.metaOut.closed ? Promise.resolve() : once(c.metaOut, 'close').then(() => undefined, () => undefined);
      c.gzip.destroy();
      c.metaOut.destroy();
      await closed;
      fs.rmSync(c.tmp, { force: true });
      fs.rmSync(c.metaTmp, { force: true });
    }
    for (const f of this.files) {
      fs.rmSync(f.path, { force: true });
      fs.rmSync(f.metadataPath, { force: true });
    }
    this.files.length = 0;
  }
}
