// The manifest.json `olmo-ts prepare-data` writes last into its output folder: the token dtype,
// the tokenizer (name, vocabulary, EOS/pad ids) and every part file with its token count. Reading
// it validated, finding the manifest that covers a token file, and recognising a prepare-data
// folder that never finished (parts or staging left without a manifest).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors';
import type { MemmapDType } from './memmap-dataset';

/** The manifest's file name. */
export const MANIFEST = 'manifest.json';
/** Prefix of the folder prepare-data writes parts into before they are complete. */
export const STAGING_PREFIX = '.prepare-tmp-';

/** One part file as the manifest lists it. */
export interface ManifestFile {
  /** File name inside the folder. */
  path: string;
  /** Its dolma-style metadata (.csv.gz) file name. */
  metadata: string;
  tokens: number;
  documents: number;
  /** The largest token id in the file (manifests from before olmo-ts 0.1 lack it). */
  max_token_id?: number;
}

/** A prepare-data manifest (format "olmo-memmap"). */
export interface PreparedManifest {
  format: 'olmo-memmap';
  dtype: MemmapDType;
  tokenizer: string;
  vocab_size: number;
  eos_token_id: number;
  pad_token_id: number;
  files: ManifestFile[];
  documents: number;
  tokens: number;
  [key: string]: unknown;
}

/** A token file together with the manifest that describes it. */
export interface ManifestEntry {
  /** The manifest.json path. */
  manifestPath: string;
  manifest: PreparedManifest;
  file: ManifestFile;
}

const DTYPES: readonly string[] = ['uint8', 'uint16', 'uint32', 'uint64'];
const ITEM: Record<string, number> = { uint8: 1, uint16: 2, uint32: 4, uint64: 8 };

/** Bytes per token of a manifest dtype. */
export function dtypeItemSize(d: MemmapDType): number {
  return ITEM[d]!;
}

/** Reads and validates `dir/manifest.json`; null when there is none. Throws DataError naming the field. */
export function readPreparedManifest(dir: string): PreparedManifest | null {
  const file = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DataError(`unreadable manifest: ${(e as Error).message}`, { file, cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DataError(`manifest is not valid JSON (${(e as Error).message}); rerun \`olmo-ts prepare-data ... --overwrite\` for this folder`, { file, cause: e });
  }
  const bad = (field: string, v: unknown, expected: string): never => {
    throw new DataError(`field "${field}" is ${JSON.stringify(v) ?? String(v)}, expected ${expected}`, { file });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('', raw, 'an object');
  const m = raw as Record<string, unknown>;
  if (m.format !== 'olmo-memmap') bad('format', m.format, '"olmo-memmap"');
  if (typeof m.dtype !== 'string' || !DTYPES.includes(m.dtype)) bad('dtype', m.dtype, `one of ${DTYPES.join(', ')}`);
  const count = (v: unknown, field: string) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : bad(field, v, 'an integer >= 0'));
  for (const k of ['vocab_size', 'eos_token_id', 'pad_token_id']) count(m[k], k);
  if (typeof m.tokenizer !== 'string') bad('tokenizer', m.tokenizer, 'a string');
  if (!Array.isArray(m.files)) bad('files', m.files, 'a list of part files');
  (m.files as unknown[]).forEach((f, i) => {
    if (typeof f !== 'object' || f === null) bad(`files.${i}`, f, 'an object');
    const e = f as Record<string, unknown>;
    if (typeof e.path !== 'string' || e.path.includes('/') || e.path.includes('\\')) bad(`files.${i}.path`, e.path, 'a file name in this folder');
    count(e.tokens, `files.${i}.tokens`);
    if (e.max_token_id !== undefined) count(e.max_token_id, `files.${i}.max_token_id`);
  });
  return m as PreparedManifest;
}

/**
 * True when `dir` looks like prepare-data output that never finished: no manifest, but part files,
 * their metadata, or a staging folder / lock left behind.
 */
export function isUnfinishedPrepare(dir: string): boolean {
  if (fs.existsSync(path.join(dir, MANIFEST))) return false;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((n) => n.startsWith(STAGING_PREFIX) || /^part-\d{5}\.(npy|csv\.gz)(\.tmp-\d+)?$/.test(n));
}

/** The advice every refusal of unfinished prepare-data output gives. */
export function redoAdvice(dir: string): string {
  return `\`olmo-ts prepare-data\` did not finish there (interrupted?): run it again with \`-o ${dir} --overwrite\``;
}

/**
 * The manifest entry covering a token file, from the manifest in the file's folder. Null for a
 * file in a folder without a manifest (OLMo's own raw token files). Throws DataError for a file
 * of an unfinished prepare-data folder, one its folder's manifest does not list, or one whose
 * size disagrees with the manifest.
 */
export function manifestEntryFor(tokenFile: string, key: string): ManifestEntry | null {
  const dir = path.dirname(path.resolve(tokenFile));
  const manifest = readPreparedManifest(dir);
  if (!manifest) {
    if (isUnfinishedPrepare(dir)) throw new DataError(`${tokenFile} belongs to a prepare-data folder without a manifest: ${redoAdvice(dir)}`, { key });
    return null;
  }
  const name = path.basename(tokenFile);
  const file = manifest.files.find((f) => f.path === name);
  const manifestPath = path.join(dir, MANIFEST);
  if (!file) throw new DataError(`${tokenFile} is not listed in ${manifestPath} (a stray file in a prepare-data folder?)`, { key });
  let size: number;
  try {
    size = fs.statSync(tokenFile).size;
  } catch (e) {
    throw new DataError(`${tokenFile} is listed in ${manifestPath} but cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { key, cause: e });
  }
  const want = file.tokens * dtypeItemSize(manifest.dtype);
  if (size !== want) {
    throw new DataError(`${tokenFile} has ${size} bytes but ${manifestPath} lists ${file.tokens} ${manifest.dtype} tokens (${want} bytes): the file changed after prepare-data; ${redoAdvice(dir)}`, { key });
  }
  return { manifestPath, manifest, file };
}
