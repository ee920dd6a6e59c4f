// Traces tokens back to documents: reads the dolma-style `<name>.csv.gz` beside a token file
// (rows start,end,id,src,loc) and finds the documents overlapping a token range.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { DataError } from './errors';

/** One document's place in a token file. */
export interface DocumentSpan {
  start: number;
  end: number;
  id: string;
  /** Source file the document came from. */
  src: string;
  /** Its line in `src` (1-based). */
  loc: number;
}

/** Splits one CSV record (Python csv, QUOTE_MINIMAL). */
export function parseCsvRecord(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let s = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) { s += line.slice(i); i = line.length; break; }
        s += line.slice(i, q);
        if (line[q + 1] === '"') { s += '"'; i = q + 2; } else { i = q + 1; break; }
      }
      out.push(s);
      i++; // the comma
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? line.length : c;
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

/** The metadata file dolma writes beside a token file: `x.npy` -> `x.csv.gz`. */
export function metadataPathFor(tokenFile: string): string {
  return tokenFile.replace(/(\.npy)?$/, '.csv.gz');
}

/** Documents of one token file, sorted by start. */
export class DocumentIndex {
  private constructor(readonly file: string, readonly docs: DocumentSpan[]) {}

  /** Loads the metadata beside `tokenFile`, or returns undefined when there is none. */
  static forTokenFile(tokenFile: string): DocumentIndex | undefined {
    const meta = metadataPathFor(tokenFile);
    if (!fs.existsSync(meta)) return undefined;
    let text: string;
    try {
      text = zlib.gunzipSync(fs.readFileSync(meta)).toString('utf8');
    } catch (e) {
      throw new DataError(`unreadable metadata: ${(e as Error).message}`, { file: meta, cause: e });
    }
    // Records end in \r\n; quoted fields may hold newlines, so split records quote-aware.
    const docs: DocumentSpan[] = [];
    let rec = '', inQuote = false, lineNo = 1;
    const flush = (): void => {
      if (rec.length === 0) return;
      const [start, end, id, src, loc] = parseCsvRecord(rec);
      if (loc === undefined || Number.isNaN(Number(start)) || Number.isNaN(Number(end))) throw new DataError(`expected start,end,id,src,loc, got ${JSON.stringify(rec)}`, { file: meta, line: lineNo });
      docs.push({ start: Number(start), end: Number(end), id: id!, src: src!, loc: Number(loc) });
      rec = '';
    };
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (ch === '"') inQuote = !inQuote;
      if (!inQuote && (ch === '\n' || ch === '\r')) {
        if (ch === '\n') { flush(); lineNo++; }
        continue;
      }
      rec += ch;
    }
    flush();
    docs.sort((a, b) => a.start - b.start);
    return new DocumentIndex(meta, docs);
  }

  /** Documents overlapping tokens [start, end). */
  overlapping(start: number, end: number): DocumentSpan[] {
    let lo = 0, hi = this.docs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.docs[mid]!.end <= start) lo = mid + 1;
      else hi = mid;
    }
    const out: DocumentSpan[] = [];
    for (let i = lo; i < this.docs.length && this.docs[i]!.start < end; i++) out.push(this.docs[i]!);
    return out;
  }
}
