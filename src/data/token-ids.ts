// Token data against the model it trains: ids must index the embedding (checked at start from the
// prepare-data manifests' largest ids, and per batch for raw files), and the tokenizer the data was
// prepared with should be the one the model config describes (EOS id, vocabulary size).
import * as path from 'node:path';
import type { Batch } from './collator';
import { DataError } from './errors';
import type { MemMapDataset } from './memmap-dataset';

/** What the model side says about tokens (`model.*`, `tokenizer.identifier`). */
export interface ModelTokens {
  /** model.embedding_size (or vocab_size when null): ids must be below it. */
  embeddingSize: number;
  vocabSize: number;
  eosTokenId: number;
  /** tokenizer.identifier, when known. */
  tokenizer?: string;
}

/**
 * Start-up check of the dataset's prepare-data manifests against the model. Throws DataError when a
 * file holds ids the embedding cannot index (naming the file and its largest id); returns warnings
 * for a tokenizer that differs from the model config (EOS id, vocabulary size, tokenizer name).
 */
export function checkDataAgainstModel(ds: MemMapDataset, m: ModelTokens): string[] {
  const warnings: string[] = [];
  const seen = new Set<string>();
  (ds.options.manifests ?? []).forEach((e, i) => {
    if (!e) return;
    const file = ds.paths[i]!;
    const max = e.file.max_token_id;
    if (max !== undefined && max >= m.embeddingSize) {
      throw new DataError(`holds token id ${max}, but model.embedding_size is ${m.embeddingSize} (ids must be below it): the data was prepared with ${e.manifest.tokenizer} (vocabulary ${e.manifest.vocab_size}); use a model config for that tokenizer`, { file });
    }
    if (max === undefined && e.manifest.vocab_size > m.embeddingSize) {
      throw new DataError(`was prepared with ${e.manifest.tokenizer}, whose ${e.manifest.vocab_size} ids do not fit model.embedding_size ${m.embeddingSize}`, { file });
    }
    if (seen.has(e.manifestPath)) return;
    seen.add(e.manifestPath);
    const where = `${path.dirname(e.manifestPath)} was prepared with ${e.manifest.tokenizer}`;
    if (e.manifest.eos_token_id !== m.eosTokenId) warnings.push(`${where} (EOS id ${e.manifest.eos_token_id}), but model.eos_token_id is ${m.eosTokenId}`);
    if (e.manifest.vocab_size !== m.vocabSize) warnings.push(`${where} (vocabulary ${e.manifest.vocab_size}), but model.vocab_size is ${m.vocabSize}`);
    if (m.tokenizer && tokenizerName(m.tokenizer) !== tokenizerName(e.manifest.tokenizer)) {
      warnings.push(`${where}, but tokenizer.identifier is ${m.tokenizer}`);
    }
  });
  return warnings;
}

function tokenizerName(id: string): string {
  return path.basename(id).replace(/\.json$/, '').toLowerCase();
}

/**
 * Per-batch check (raw token files have no manifest): every id must be below `embeddingSize`.
 * Throws DataError naming the token file of the largest offending id, instead of libtorch's
 * "index out of range in self". Costs one pass over the batch's ids.
 */
export function checkBatchTokenIds(batch: Batch, ds: MemMapDataset, embeddingSize: number): void {
  const ids = batch.inputIds;
  let max = -1, at = -1;
  for (let i = 0; i < ids.length; i++) if (ids[i]! > max) { max = ids[i]!; at = i; }
  if (max < embeddingSize) return;
  const row = Math.floor(at / batch.shape[1]);
  const index = batch.index[row]!;
  const src = index >= 0 ? ds.source(index) : null;
  const where = src ? `${src.path} (instance ${index}, tokens ${src.tokenStart}:${src.tokenEnd})` : `instance ${index}`;
  throw new DataError(
    `${where} holds token id ${max}, but model.embedding_size is ${embeddingSize} (ids must be below it): ` +
    `the data was tokenized for another vocabulary, or is read with the wrong dtype (data.memmap_dtype is ${ds.dtype})`,
    { key: 'data.paths' },
  );
}
