// inspect-data (OLMo's scripts/inspect_train_data.py): for given training steps (and ranks), the
// decoded text of every instance in the batch, with its token file and the documents it spans.
// Indices come from the run's data-indices logs, its global_indices.npy, or are rebuilt from the seed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError } from './errors';
import { DataConfig, buildMemmapDataset } from './config';
import { DocumentIndex, DocumentSpan } from './doc-index';
import { buildGlobalIndices, loadGlobalIndices, rankIndices, readGlobalIndicesInfo } from './global-indices';
import { MemMapDataset } from './memmap-dataset';
import { loadTokenizer } from './tokenizer';
import { BatchSizeSchedule } from './batch-schedule';
import { batchSizeSteps, batchSizeWarmupSpec } from '../config/batch-size-warmup';

/** What to inspect: a run folder, or the data settings given directly (which override the run's). */
export interface InspectOptions {
  /** A run's save folder (config.yaml, train_data/global_indices.npy, data-indices/). */
  runDir?: string;
  data?: DataConfig;
  tokenizer?: string;
  eosTokenId?: number;
  padTokenId?: number;
  maxSequenceLength?: number;
  globalBatchSize?: number;
  seed?: number;
  /**
   * The epoch `steps` count from (default: the run's first epoch, its config's `epoch`, so steps
   * are the run's global steps). Steps past an epoch's last batch continue into the next epochs.
   */
  epoch?: number;
  worldSize?: number;
  /** Training steps, 1-based (step s trains global batch s-1). */
  steps: number[];
  /** Only this rank (default: all ranks). */
  rank?: number;
}

/** One inspected instance. */
export interface InspectedInstance {
  step: number;
  /** The epoch the step trained in, and the batch within that epoch (0-based). */
  epoch: number;
  epochBatch: number;
  rank: number;
  /** Row within the rank's device batch. */
  example: number;
  /** Dataset index. */
  index: number;
  file: string;
  tokenStart: number;
  tokenEnd: number;
  /** Documents the instance overlaps (when the token file has dolma metadata beside it). */
  documents: DocumentSpan[];
  text: string;
}

interface RunConfig {
  data?: DataConfig;
  model?: { max_sequence_length?: number; eos_token_id?: number; pad_token_id?: number };
  tokenizer?: { identifier?: string };
  global_train_batch_size?: number;
  batch_size_warmup?: unknown;
  seed?: number;
  epoch?: number | null;
}

function readRunConfig(runDir: string): RunConfig {
  const file = path.join(runDir, 'config.yaml');
  if (!fs.existsSync(file)) throw new DataError('run folder has no config.yaml', { file: runDir });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  try {
    return (YAML.parse(fs.readFileSync(file, 'utf8')) ?? {}) as RunConfig;
  } catch (e) {
    throw new DataError(`unreadable YAML: ${(e as Error).message}`, { file, cause: e });
  }
}

function need<T>(v: T | undefined | null, key: string, hint: string): T {
  if (v === undefined || v === null) throw new DataError(`is required (${hint})`, { key });
  if (typeof v === 'string' && v.includes('${')) throw new DataError(`${JSON.stringify(v)} is an unresolved interpolation; give the value directly`, { key });
  return v;
}

/**
 * Per-rank index rows logged by the trainer: data-indices/rank{r}.tsv (olmo-ts) or rank{r}.tsv.gz
 * (OLMo), "step\tidx\tidx...". A step logged twice (re-run after a resume) keeps its last line; a
 * torn last line (the writer was killed) is skipped.
 */
function loggedIndices(runDir: string, rank: number, steps: Set<number>): Map<number, number[]> | undefined {
  const base = path.join(runDir, 'data-indices', `rank${rank}.tsv`);
  const text = fs.existsSync(base) ? fs.readFileSync(base, 'utf8')
    : fs.existsSync(base + '.gz') ? zlib.gunzipSync(fs.readFileSync(base + '.gz')).toString('utf8') : undefined;
  if (text === undefined) return undefined;
  const out = new Map<number, number[]>();
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop(); // torn
  for (const line of lines) {
    const parts = line.trim().split('\t');
    const step = Number(parts[0]);
    if (parts.length > 1 && steps.has(step)) out.set(step, parts.slice(1).map(Number));
  }
  return out;
}

/** Resolves the data, order and tokenizer, then decodes every instance of the requested batches. */
export async function inspectBatches(o: InspectOptions): Promise<InspectedInstance[]> {
  const cfg: RunConfig = o.runDir ? readRunConfig(o.runDir) : {};
  const data: DataConfig = { ...(cfg.data ?? {}), ...(o.data ?? {}) };
  if (o.data?.paths) data.datasets = null;
  const seqLen = need(o.maxSequenceLength ?? cfg.model?.max_sequence_length, 'model.max_sequence_length', '--seq-len');
  const B = need(o.globalBatchSize ?? cfg.global_train_batch_size, 'global_train_batch_size', '--batch-size');
  const tokId = need(o.tokenizer ?? cfg.tokenizer?.identifier, 'tokenizer.identifier', '--tokenizer');
  // Inspection only decodes: the model's EOS/pad ids need not be the tokenizer's special tokens
  // (they are checked when they are given explicitly).
  const explicit = o.eosTokenId !== undefined || o.padTokenId !== undefined;
  const tok = await loadTokenizer(explicit ? { identifier: tokId, eosTokenId: o.eosTokenId, padTokenId: o.padTokenId } : { identifier: tokId });
  const ds: MemMapDataset = buildMemmapDataset(data, { maxSequenceLength: seqLen, padTokenId: o.padTokenId ?? cfg.model?.pad_token_id ?? tok.padTokenId });
  const steps = [...new Set(o.steps)].sort((a, b) => a - b);
  for (const s of steps) if (!Number.isInteger(s) || s < 1) throw new DataError(`steps are 1-based integers, got ${s}`, { key: 'step' });

  // World size: from the trainer's per-rank logs if present, else given (default 1).
  let W = o.worldSize ?? 1;
  if (o.runDir && o.worldSize === undefined && fs.existsSync(path.join(o.runDir, 'data-indices'))) {
    W = Math.max(1, fs.readdirSync(path.join(o.runDir, 'data-indices')).filter((n) => /^rank\d+\.tsv(\.gz)?$/.test(n)).length);
  }
  if (B % W !== 0) throw new DataError(`global batch size ${B} is not a multiple of the world size ${W}`, { key: 'global_train_batch_size' });
  const ranks = o.rank !== undefined ? [o.rank] : Array.from({ length: W }, (_, r) => r);
  const seed = o.seed ?? cfg.seed ?? 6198;
  const runFirstEpoch = cfg.epoch ?? 0;
  const firstEpoch = o.epoch ?? runFirstEpoch;
  // The saved global_indices.npy holds one epoch's order (it is rewritten every epoch): which one
  // its global_indices.json says (OLMo's runs have none: their config's epoch). Other epochs are
  // rebuilt from the seed exactly as the trainer builds them.
  const saved = o.runDir ? path.join(o.runDir, 'train_data', 'global_indices.npy') : undefined;
  const savedInfo = saved && fs.existsSync(saved) ? readGlobalIndicesInfo(saved) : null;
  const savedEpoch = saved && fs.existsSync(saved) ? (savedInfo ? savedInfo.epoch : runFirstEpoch) : null;
  const orders = new Map<number, Uint32Array>();
  const orderOf = (epoch: number): Uint32Array => {
    let order = orders.get(epoch);
    if (!order) {
      order = saved && epoch === savedEpoch && (o.seed === undefined || o.seed === cfg.seed)
        ? loadGlobalIndices(saved)
        : buildGlobalIndices({ numInstances: ds.length, seed, epoch, dropLast: data.drop_last ?? false, worldSize: W });
      orders.set(epoch, order);
    }
    return order;
  };
  const dB = B / W;
  // The run's global batch per step: constant, or growing with the tokens trained on (batch_size_warmup).
  const warmup = o.globalBatchSize === undefined && cfg.batch_size_warmup ? batchSizeWarmupSpec.parse(cfg.batch_size_warmup, 'batch_size_warmup') : null;
  const schedule = new BatchSizeSchedule(warmup ? batchSizeSteps(warmup, { globalBatchSize: B, seqLen }) : [{ tokens: 0, size: B }], seqLen, { divisor: W });
  /** Where step s (counted from the start of `firstEpoch`) takes its batch: epoch, batch in it, order slice. */
  let locate: (step: number) => { epoch: number; batch: number; start: number; size: number };
  /** The run's global step of step s (what OLMo's per-rank logs are keyed by). */
  let toRunStep: (step: number) => number;
  if (schedule.isConstant) {
    // Batches per epoch, as the trainer's loader makes them (whole device batches only).
    const perEpoch = Math.floor(rankIndices(orderOf(firstEpoch), { rank: 0, worldSize: W }).length / dB);
    if (perEpoch < 1) throw new DataError(`the data order holds fewer than one batch of ${B} instances`, { key: 'global_train_batch_size' });
    locate = (step) => {
      const batch = (step - 1) % perEpoch;
      return { epoch: firstEpoch + Math.floor((step - 1) / perEpoch), batch, start: batch * B, size: B };
    };
    toRunStep = (s) => s + (firstEpoch - runFirstEpoch) * perEpoch;
  } else {
    // Growing batches: the sizes follow the tokens trained on since the run's start, and an epoch
    // ends, as in the trainer, when the next global batch no longer fits its instances.
    const from = Math.min(firstEpoch, runFirstEpoch);
    const length = orderOf(firstEpoch).length; // the epoch's order, padded to the world size as the trainer's
    const offset = schedule.stepsForEpochs(length, firstEpoch - from);
    locate = (step) => {
      const l = schedule.locate(step + offset, length);
      return { epoch: from + l.epoch, batch: l.batch, start: l.start, size: l.size };
    };
    toRunStep = (s) => s + offset;
  }

  const docIndexes = new Map<string, DocumentIndex | undefined>();
  const out: InspectedInstance[] = [];
  try {
    for (const rank of ranks) {
      // OLMo's per-rank logs are keyed by the run's global step.
      const logged = o.runDir ? loggedIndices(o.runDir, rank, new Set(steps.map(toRunStep))) : undefined;
      for (const step of steps) {
        const at = locate(step);
        // The step's global batch is order[start : start + size]; rank r trains every W-th of it.
        const idx = logged?.get(toRunStep(step)) ?? Array.from(rankIndices(orderOf(at.epoch).subarray(at.start, at.start + at.size), { rank, worldSize: W }));
        if (idx.length === 0) throw new DataError(`step ${step} has no batch for rank ${rank}`, { key: 'step' });
        for (let i = 0; i < idx.length; i++) {
          const index = idx[i]!;
          const src = ds.source(index);
          if (!docIndexes.has(src.path)) docIndexes.set(src.path, DocumentIndex.forTokenFile(src.path));
          const docs = docIndexes.get(src.path)?.overlapping(src.tokenStart, src.tokenEnd) ?? [];
          const text = await tok.decode(ds.readTokens(index), false);
          out.push({ step, epoch: at.epoch, epochBatch: at.batch, rank, example: i, index, file: src.path, tokenStart: src.tokenStart, tokenEnd: src.tokenEnd, documents: docs, text });
        }
      }
    }
  } finally {
    ds.close();
  }
  return out;
}

/** OLMo's print format, with the source file and documents added. */
export function formatInspected(x: InspectedInstance, maxChars?: number): string {
  const docs = x.documents.map((d) => `${d.id} (${d.src}:${d.loc})`).join(', ');
  const text = maxChars !== undefined && x.text.length > maxChars ? x.text.slice(0, maxChars) + '...' : x.text;
  return `[step=${x.step}, epoch=${x.epoch}, rank=${x.rank}, example=${x.example}] index=${x.index} file=${x.file} tokens=${x.tokenStart}:${x.tokenEnd}` +
    (docs ? `\n  documents: ${docs}` : '') + `\n"${text}"\n`;
}
