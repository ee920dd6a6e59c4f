// Tokenizers for preparing and inspecting data: any Hugging Face tokenizer.json (through HF's own
// Rust `tokenizers` N-API package) or GPT-2 / cl100k BPE (js-tiktoken), with EOS/pad ids checked
// against the tokenizer's special tokens, and OLMo's "append EOS" rule for documents.
import * as fs from 'node:fs';
import { DataError } from './errors';
import { readTokenizerJson, resolveTokenizerFile } from './tokenizer-files';

/** A loaded tokenizer; ids are plain numbers. */
export interface TextTokenizer {
  /** What was asked for: 'gpt2', 'cl100k' or the tokenizer.json path. */
  readonly identifier: string;
  /** Number of ids, added tokens included (OLMo's `vocab_size`). */
  readonly vocabSize: number;
  /** Appended after every document; checked to be a special token. */
  readonly eosTokenId: number;
  /** Fills padded positions; checked to be a special token (defaults to a pad token, else EOS). */
  readonly padTokenId: number;
  /** Token ids of each text, without EOS (the backend's own special-token handling applies). */
  encodeBatch(texts: string[]): Promise<number[][]>;
  /** Text of the ids; special tokens are dropped when `skipSpecialTokens`. */
  decode(ids: ArrayLike<number>, skipSpecialTokens?: boolean): Promise<string>;
  /** The token string of an id, or undefined outside the vocabulary. */
  idToToken(id: number): string | undefined;
  /** True for special tokens (EOS, padding, ...). */
  isSpecial(id: number): boolean;
}

/** How to pick and check a tokenizer (OLMo's `tokenizer.identifier`, `model.eos_token_id`, `model.pad_token_id`). */
export interface TokenizerSpec {
  /** A tokenizer.json path, or 'gpt2' / 'cl100k' (also 'cl100k_base'). */
  identifier: string;
  eosTokenId?: number;
  padTokenId?: number;
}

/** The names `loadTokenizer` accepts besides a tokenizer.json path. */
export const BUILTIN_TOKENIZERS = ['gpt2', 'cl100k'] as const;

const EOS_NAMES = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '[SEP]'];
const PAD_NAMES = ['<|padding|>', '<|pad|>', '<pad>', '[PAD]'];

interface Backend {
  vocabSize: number;
  special: Map<number, string>;
  encodeBatch(texts: string[]): Promise<number[][]>;
  decode(ids: number[], skip: boolean): Promise<string>;
  idToToken(id: number): string | undefined;
}

async function hfBackend(file: string): Promise<Backend> {
  let json: { added_tokens?: Array<{ id: number; content: string; special: boolean }> };
  let text: string;
  try {
    text = readTokenizerJson(file);
    json = JSON.parse(text);
  } catch (e) {
    throw new DataError(`cannot read tokenizer.json: ${(e as Error).message}`, { file, cause: e });
  }
  const { Tokenizer } = await import('tokenizers');
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = Tokenizer.fromString(text);
  } catch (e) {
    throw new DataError(`not a Hugging Face tokenizer.json: ${(e as Error).message}`, { file, cause: e });
  }
  const special = new Map<number, string>();
  for (const t of json.added_tokens ?? []) if (t.special) special.set(t.id, t.content);
  return {
    vocabSize: tok.getVocabSize(true),
    special,
    async encodeBatch(texts) {
      const encs = await tok.encodeBatch(texts);
      return encs.map((e) => e.getIds());
    },
    decode: (ids, skip) => tok.decode(ids, skip),
    idToToken: (id) => tok.idToToken(id) ?? undefined,
  };
}

async function tiktokenBackend(name: 'gpt2' | 'cl100k'): Promise<Backend> {
  const { Tiktoken } = await import('js-tiktoken/lite');
  // The ranks' subpath exports are not visible to this tsconfig's module resolution; load them untyped.
  const ranksModule: string = name === 'gpt2' ? 'js-tiktoken/ranks/gpt2' : 'js-tiktoken/ranks/cl100k_base';
  const mod: unknown = await import(ranksModule);
  const ranks = ((mod as { default?: unknown }).default ?? mod) as { special_tokens: Record<string, number>; explicit_n_vocab?: number };
  const enc = new Tiktoken(ranks as never);
  const special = new Map<number, string>(Object.entries(ranks.special_tokens).map(([k, v]) => [v, k] as [number, string]));
  const vocabSize = Math.max(ranks.explicit_n_vocab ?? 0, Math.max(...special.keys()) + 1);
  return {
    vocabSize,
    special,
    // Special-token text in a document becomes the special id, as Hugging Face tokenizers do.
    encodeBatch: async (texts) => texts.map((t) => enc.encode(t, 'all')),
    decode: async (ids, skip) => enc.decode(skip ? ids.filter((i) => !special.has(i)) : ids),
    idToToken: (id) => {
      if (special.has(id)) return special.get(id);
      if (id < 0 || id >= vocabSize) return undefined;
      try {
        return enc.decode([id]);
      } catch {
        return undefined;
      }
    },
  };
}

function pickSpecial(b: Backend, names: string[]): number | undefined {
  for (const n of names) for (const [id, s] of b.special) if (s === n) return id;
  return undefined;
}

function describe(b: Backend, id: number): string {
  const t = b.idToToken(id);
  return t === undefined ? 'outside the vocabulary' : JSON.stringify(t);
}

function checkId(b: Backend, ident: string, key: string, id: number, eos?: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= b.vocabSize) {
    throw new DataError(`${id} is not a token id of ${ident} (vocabulary size ${b.vocabSize})`, { key });
  }
  if (!b.special.has(id) && id !== eos) {
    const eosGuess = pickSpecial(b, EOS_NAMES);
    const hint = key.endsWith('eos_token_id') && eosGuess !== undefined
      ? `; this tokenizer's end-of-text token is ${JSON.stringify(b.special.get(eosGuess))} = id ${eosGuess}`
      : `; its special tokens are ${[...b.special].slice(0, 8).map(([i, s]) => `${i}=${JSON.stringify(s)}`).join(', ')}`;
    throw new DataError(`id ${id} is ${describe(b, id)} in ${ident}, not a special token${hint}`, { key });
  }
}

/**
 * Loads a tokenizer by name or tokenizer.json path and settles its EOS/pad ids: given ids must be
 * special tokens of that tokenizer (catching OLMo's EOS mix-up between two similar files); when
 * absent, EOS is the tokenizer's end-of-text token and pad its padding token (else EOS).
 */
export async function loadTokenizer(spec: TokenizerSpec | string): Promise<TextTokenizer> {
  const s: TokenizerSpec = typeof spec === 'string' ? { identifier: spec } : spec;
  const ident = s.identifier;
  let backend: Backend;
  if (ident === 'gpt2') backend = await tiktokenBackend('gpt2');
  else if (ident === 'cl100k' || ident === 'cl100k_base') backend = await tiktokenBackend('cl100k');
  else if (resolveTokenizerFile(ident)) backend = await hfBackend(resolveTokenizerFile(ident)!);
  else {
    throw new DataError(
      `tokenizer ${JSON.stringify(ident)} is neither a tokenizer.json file nor one of ${BUILTIN_TOKENIZERS.join(', ')} ` +
        '(hub names cannot be downloaded offline; pass the path of the tokenizer.json)',
      { key: 'tokenizer.identifier' },
    );
  }
  let eos = s.eosTokenId;
  if (eos === undefined) {
    eos = pickSpecial(backend, EOS_NAMES);
    if (eos === undefined) throw new DataError(`${ident} has no end-of-text special token; set eos_token_id`, { key: 'model.eos_token_id' });
  }
  checkId(backend, ident, 'model.eos_token_id', eos);
  const pad = s.padTokenId ?? pickSpecial(backend, PAD_NAMES) ?? eos;
  checkId(backend, ident, 'model.pad_token_id', pad, eos);
  const b = backend;
  return {
    identifier: ident,
    vocabSize: b.vocabSize,
    eosTokenId: eos,
    padTokenId: pad,
    encodeBatch: (texts) => b.encodeBatch(texts),
    decode: (ids, skip = false) => b.decode(Array.from(ids), skip),
    idToToken: (id) => b.idToToken(id),
    isSpecial: (id) => b.special.has(id),
  };
}

/** OLMo's `Tokenizer.add_special_tokens`: appends EOS unless the ids already end with it. */
export function appendEos(ids: number[], eosTokenId: number): number[] {
  if (ids.length === 0 || ids[ids.length - 1] !== eosTokenId) ids.push(eosTokenId);
  return ids;
}

/** Python's `str.strip()` whitespace (what OLMo and dolma strip before tokenizing). */
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'g');

/** `text.strip()` with Python's notion of whitespace. */
export function pythonStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}
