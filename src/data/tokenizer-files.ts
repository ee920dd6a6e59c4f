// Where a tokenizer.json named in a config lives: the path itself, its gzipped copy, or the
// tokenizers shipped with olmo-ts (tokenizers/ at the package root, as OLMo v0.2.5 ships its own).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/** The folder of tokenizers shipped with olmo-ts (OLMo's, gzipped; see tokenizers/README.md). */
export const BUNDLED_TOKENIZERS = path.resolve(__dirname, '..', '..', 'tokenizers');

const isFile = (p: string) => fs.existsSync(p) && fs.statSync(p).isFile();

/**
 * The file to read for a tokenizer identifier that names a tokenizer.json, or null: the path as
 * given (from the current folder), else `<path>.gz`, else, for a relative path, the same name in
 * the shipped tokenizers (OLMo's configs say `tokenizers/allenai_...json`).
 */
export function resolveTokenizerFile(identifier: string): string | null {
  const candidates = [identifier, `${identifier}.gz`];
  if (!path.isAbsolute(identifier)) {
    const shipped = path.join(BUNDLED_TOKENIZERS, identifier.replace(/^(\.\/)?tokenizers[\\/]/, ''));
    candidates.push(shipped, `${shipped}.gz`);
  }
  return candidates.find(isFile) ?? null;
}

/** The text of a tokenizer.json file, gunzipped when it ends in .gz. */
export function readTokenizerJson(file: string): string {
  const raw = fs.readFileSync(file);
  return (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
}
