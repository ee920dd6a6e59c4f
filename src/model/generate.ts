// Text generation for OLMo models: greedy or sampled (temperature, top-k, top-p, seeded) decoding
// with a key/value cache, for one prompt or a left-padded batch of prompts.
import { Tensor } from '../tensor/tensor';
import { multinomial, tensor, zerosLike } from '../tensor/creation';
import { dispose, tidy } from '../tensor/scope';
import { noGrad } from '../tensor/autograd';
import { Generator } from '../tensor/random';
import { ArgumentError } from '../native/errors';
import { embeddingSize } from '../config/model';
import type { OLMo } from './olmo';
import type { LayerPast } from './block';

/** Decoding options. */
export interface GenerateOptions {
  /** Tokens to generate per prompt (default 32). */
  maxNewTokens?: number;
  /** Softmax temperature; 0 (default) is greedy (argmax). */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = off). */
  topK?: number;
  /** Sample only from the smallest set of tokens whose probability reaches topP (1 = off). */
  topP?: number;
  /** Seed for a private generator, so sampling is reproducible; the global generator otherwise. */
  seed?: number;
  /** Stop a sequence after this token (default config.eos_token_id; null never stops). */
  eosTokenId?: number | null;
  /** Use the key/value cache (default true); false re-runs the whole sequence every step. */
  useCache?: boolean;
}

/**
 * Picks the next token per row from logits (B, V): argmax at temperature 0, else a draw after
 * temperature, top-k and top-p filtering. Returns (B) int64.
 */
export function sampleNext(logits: Tensor, o: { temperature?: number; topK?: number; topP?: number; generator?: Generator }): Tensor {
  return tidy(() => {
    const temp = o.temperature ?? 0;
    if (temp === 0) return logits.argmax(-1);
    let l = logits.float().div(temp); // (B, V)
    const V = l.shape[1]!;
    if (o.topK && o.topK > 0 && o.topK < V) {
      const kth = l.topk(o.topK, -1)[0].slice(1, o.topK - 1, o.topK); // (B, 1)
      l = l.maskedFill(l.lt(kth), -Infinity);
    }
    if (o.topP !== undefined && o.topP < 1) {
      const [sorted, idx] = l.sort(-1, true); // (B, V) descending
      const probs = sorted.softmax(-1);
      // Drop a token once the mass before it already reaches topP (the first token always stays).
      const drop = probs.cumsum(-1).sub(probs).ge(o.topP); // (B, V), sorted order
      l = l.maskedFill(zerosLike(drop).scatter(1, idx, drop), -Infinity);
    }
    return multinomial(l.softmax(-1), 1, { generator: o.generator }).squeeze(1); // (B)
  });
}

/**
 * Generates continuations of `prompts` (token ids; one prompt or several, left-padded to one
 * length with pad_token_id and masked). Returns the new tokens per prompt, cut after EOS.
 * Logits past vocab_size (embedding padding rows) are never chosen.
 */
export function generate(model: OLMo, prompts: number[] | number[][], opts: GenerateOptions = {}): number[][] {
  const c = model.config;
  const list = (prompts.length > 0 && Array.isArray(prompts[0]) ? prompts : [prompts]) as number[][];
  if (list.length === 0 || list.some((p) => p.length === 0)) throw new ArgumentError('generate: every prompt needs at least one token');
  const maxNew = opts.maxNewTokens ?? 32;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new ArgumentError(`maxNewTokens must be a non-negative integer, got ${maxNew}`);
  const temp = opts.temperature ?? 0;
  if (!(Number.isFinite(temp) && temp >= 0)) throw new ArgumentError(`temperature must be a finite number >= 0, got ${temp}`);
  if (opts.topK !== undefined && !(Number.isSafeInteger(opts.topK) && opts.topK >= 0)) throw new ArgumentError(`topK must be an integer >= 0, got ${opts.topK}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new ArgumentError(`topP must be in (0, 1], got ${opts.topP}`);
  if (opts.seed !== undefined && !(Number.isSafeInteger(opts.seed) && opts.seed >= 0)) throw new ArgumentError(`seed must be an integer from 0 to 2^53-1, got ${opts.seed}`);
  const L = Math.max(...list.map((p) => p.length));
  // OLMo's rule (OLMo.generate): prompt plus new tokens within the context the model was trained for.
  if (L + maxNew > c.max_sequence_length) {
    throw new ArgumentError(`prompt (${L} tokens) + maxNewTokens (${maxNew}) exceeds the model's max_sequence_length ${c.max_sequence_length}`);
  }
  for (const p of list) for (const id of p) if (!(Number.isInteger(id) && id >= 0 && id < c.vocab_size)) throw new ArgumentError(`token id ${id} is outside the vocabulary [0, ${c.vocab_size})`);
  const eos = opts.eosTokenId === undefined ? c.eos_token_id : opts.eosTokenId;
  const B = list.length;
  if (B > 1 && c.pad_token_id >= embeddingSize(c)) {
    throw new ArgumentError(`pad_token_id ${c.pad_token_id} is outside the embedding (${embeddingSize(c)} rows); batched generation pads with it`);
  }
  const padded = list.map((p) => [...new Array(L - p.length).fill(c.pad_token_id), ...p]);
  const needMask = list.some((p) => p.length < L);
  const maskRows = list.map((p) => [...new Array(L - p.length).fill(0), ...new Array(p.length).fill(1)]);
  const gen = opts.seed !== undefined ? new Generator(opts.seed) : undefined;
  const useCache = opts.useCache ?? true;
  const out: number[][] = list.map(() => []);
  // Every row grows by one token per step (pad once a row has finished) so the batch stays rectangular.
  const rows = padded.map((p) => [...p]);
  const done = new Array<boolean>(B).fill(false);
  let past: LayerPast[] | null = null;
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      for (let step = 0; step < maxNew && !done.every(Boolean); step++) {
        const res = tidy(() => {
          const mask = needMask ? tensor(maskRows.map((m) => [...m, ...new Array(step).fill(1)]), { dtype: 'int64', device: model.device }) : null;
          const feed = useCache && past ? rows.map((r) => [r[r.length - 1]!]) : rows; // (B, 1) or (B, L + step)
          const ids = tensor(feed, { dtype: 'int64', device: model.device });
          const o = model.forward(ids, { attentionMask: mask, pastKeyValues: useCache ? past : null, useCache, lastLogitsOnly: true });
          const logits = o.logits.select(1, 0).slice(1, 0, c.vocab_size); // (B, vocab_size)
          const next = sampleNext(logits, { temperature: opts.temperature, topK: opts.topK, topP: opts.topP, generator: gen });
          return { next: Array.from(next.toFloat64Array()), kv: o.attnKeyValues }; // SYNC
        });
        if (past) dispose(past);
        past = res.kv;
        res.next.forEach((t, b) => {
          rows[b]!.push(done[b] ? c.pad_token_id : t);
          if (done[b]) return;
          out[b]!.push(t);
          if (eos !== null && t === eos) done[b] = true;
        });
      }
    });
  } finally {
    if (past) dispose(past);
    gen?.close();
    model.train(wasTraining);
  }
  return out;
}
