// `batch_size_warmup:` — an olmo-ts extension (not in OLMo v0.2.5): the global batch grows during
// training, as in the OLMo paper's 65B run (about 2M tokens doubling to about 16M, every ~100B
// tokens). Either `start` + `doubling_interval` (doubling up to global_train_batch_size), or an
// explicit `schedule` of (tokens, batch_size) steps. Sizes are instances, or tokens as "NT".
import { parseDuration } from './duration';
import { ConfigError, showValue } from './errors';
import { custom, Infer, list, nullable, section } from './spec';

/** A batch size: an integer number of instances, or "NT" tokens (a multiple of max_sequence_length). */
export type BatchSizeValue = number | string;

const sizeField = (doc: string) => custom<BatchSizeValue>({
  doc,
  schema: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^\\s*[0-9._eE+-]+\\s*T\\s*$' }] },
  parse: (v, key) => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1) return v;
    if (typeof v === 'string' && v.trim().endsWith('T')) {
      let tokens = 0;
      try {
        tokens = parseDuration(v, key).value;
      } catch { /* below */ }
      if (tokens >= 1) return v;
    }
    throw new ConfigError(key, `got ${showValue(v)}, expected a number of instances (e.g. 1024) or of tokens (e.g. "2097152T")`);
  },
});

const tokensField = (doc: string) => custom<number | string>({
  doc,
  schema: { anyOf: [{ type: 'number', minimum: 0 }, { type: 'string', pattern: '^\\s*[0-9._eE+-]+\\s*T?\\s*$' }] },
  parse: (v, key) => {
    if ((typeof v === 'number' && v >= 0) || typeof v === 'string') {
      try {
        tokensOf(v, key);
        return v;
      } catch { /* the message below names the key and the form */ }
    }
    throw new ConfigError(key, `got ${showValue(v)}, expected a number of tokens (e.g. "100e9T" or 100000000000)`);
  },
});

/** One explicit step of the schedule: from `tokens` trained on, batches of `batch_size`. */
export const batchSizeStepSpec = section(
  {
    tokens: tokensField('Tokens trained on (all ranks) from which this batch size applies; the first step is at 0.'),
    batch_size: sizeField('The global batch size from here: instances, or "NT" tokens.'),
  },
  { title: 'BatchSizeStep', doc: 'One step of an explicit batch-size schedule.' },
);

/** The `batch_size_warmup:` section. */
export const batchSizeWarmupSpec = section(
  {
    start: nullable(sizeField('The global batch size at the start: instances (e.g. 1024) or tokens (e.g. "2097152T").')),
    doubling_interval: nullable(tokensField('Tokens trained on between doublings of the batch size (e.g. "100e9T"); it stops at global_train_batch_size.')),
    schedule: nullable(list(batchSizeStepSpec, {
      doc: 'Instead of start/doubling_interval: explicit (tokens, batch_size) steps, tokens increasing from 0; the last batch_size must be global_train_batch_size.',
    })),
  },
  {
    title: 'BatchSizeWarmupConfig',
    doc: 'olmo-ts extension (not in OLMo v0.2.5): grow the global batch size during training, by token count. global_train_batch_size is the size after the warm-up. The data order stays OLMo\'s: a bigger batch takes more of the same sequence. Needs scheduler.units: tokens.',
  },
);
/** The parsed `batch_size_warmup:` section. */
export interface BatchSizeWarmupConfig extends Infer<typeof batchSizeWarmupSpec> {}

/** Tokens of a tokens value ("100e9T" or a number). */
export function tokensOf(v: number | string, key: string): number {
  return parseDuration(typeof v === 'number' ? `${v}T` : v.trim().endsWith('T') ? v : `${v}T`, key).value;
}

/** Instances of a batch-size value: itself, or tokens / seqLen (which must divide exactly). */
export function instancesOf(v: BatchSizeValue, seqLen: number, key: string): number {
  if (typeof v === 'number') return v;
  const tokens = parseDuration(v, key).value;
  if (tokens % seqLen !== 0) {
    const near = Math.max(1, Math.round(tokens / seqLen));
    throw new ConfigError(key, `got ${showValue(v)}, expected a multiple of max_sequence_length (${seqLen}), e.g. "${near * seqLen}T" (${near} instances)`);
  }
  return tokens / seqLen;
}

/** The schedule as (tokens, instances) steps, validated against the rest of the config. */
export function batchSizeSteps(w: BatchSizeWarmupConfig, o: { globalBatchSize: number; seqLen: number; key?: string }): Array<{ tokens: number; size: number }> {
  const key = o.key ?? 'batch_size_warmup';
  const final = o.globalBatchSize;
  if (w.schedule !== null) {
    if (w.start !== null || w.doubling_interval !== null) {
      throw new ConfigError(`${key}.schedule`, 'got a schedule together with start/doubling_interval, expected one or the other');
    }
    if (w.schedule.length === 0) throw new ConfigError(`${key}.schedule`, 'got an empty list, expected at least one (tokens, batch_size) step');
    const steps = w.schedule.map((s, i) => ({ tokens: tokensOf(s.tokens, `${key}.schedule.${i}.tokens`), size: instancesOf(s.batch_size, o.seqLen, `${key}.schedule.${i}.batch_size`) }));
    if (steps[0]!.tokens !== 0) throw new ConfigError(`${key}.schedule.0.tokens`, `got ${steps[0]!.tokens}, expected 0 (the schedule must say the batch size at the start)`);
    for (let i = 1; i < steps.length; i++) {
      if (!(steps[i]!.tokens > steps[i - 1]!.tokens)) throw new ConfigError(`${key}.schedule.${i}.tokens`, `got ${steps[i]!.tokens}, expected more than the previous step's ${steps[i - 1]!.tokens}`);
    }
    const last = steps[steps.length - 1]!.size;
    if (last !== final) throw new ConfigError(`${key}.schedule.${steps.length - 1}.batch_size`, `got ${last} instances, expected global_train_batch_size (${final}): it is the batch size after the warm-up`);
    return steps;
  }
  if (w.start === null || w.doubling_interval === null) {
    const missing = w.start === null ? 'start' : 'doubling_interval';
    throw new ConfigError(`${key}.${missing}`, 'is required (give start and doubling_interval, or a schedule)');
  }
  const start = instancesOf(w.start, o.seqLen, `${key}.start`);
  if (start > final) throw new ConfigError(`${key}.start`, `got ${start} instances, expected at most global_train_batch_size (${final})`);
  const interval = tokensOf(w.doubling_interval, `${key}.doubling_interval`);
  if (!(interval > 0)) throw new ConfigError(`${key}.doubling_interval`, `got ${showValue(w.doubling_interval)}, expected a positive number of tokens`);
  const steps = [{ tokens: 0, size: start }];
  for (let size = start, k = 1; size < final; k++) {
    size = Math.min(size * 2, final);
    steps.push({ tokens: k * interval, size });
  }
  return steps;
}
