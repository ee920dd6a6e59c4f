// max_duration: OLMo's "how long to train" value (an int of steps, "N" steps, "NT" tokens or "Nep"
// epochs, with Python's float/int parsing such as "2e12T" or 739_328) and OLMo's conversions of it
// into a step or token budget for the trainer and the scheduler (olmo/train.py max_steps/max_tokens).
import { ConfigError, showValue } from './errors';

/** A parsed max_duration. */
export interface Duration {
  /** What `value` counts. */
  unit: 'steps' | 'tokens' | 'epochs';
  /** The budget (a non-negative integer). */
  value: number;
}

// Python's float(): digits with single underscores between them, optional fraction and exponent.
const PY_FLOAT = /^[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const PY_INT = /^[+-]?\d(?:_?\d)*$/;

const EXPECTED = 'a number of steps (e.g. 10000 or "1e4"), tokens (e.g. "2e12T") or epochs (e.g. "3ep")';

/**
 * Parses max_duration as OLMo does: an integer is steps; a string ending in "T" is
 * int(float(rest)) tokens; ending in "ep" is int(rest) epochs; else int(float(s)) steps.
 */
export function parseDuration(v: unknown, key = 'max_duration'): Duration {
  const bad = (): never => {
    throw new ConfigError(key, `got ${showValue(v)}, expected ${EXPECTED}`);
  };
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) bad();
    return { unit: 'steps', value: v };
  }
  if (typeof v !== 'string') return bad();
  let s = v.trim();
  let unit: Duration['unit'] = 'steps';
  if (s.endsWith('ep')) {
    unit = 'epochs';
    s = s.slice(0, -2).trim();
    if (!PY_INT.test(s)) return bad();
  } else {
    if (s.endsWith('T')) {
      unit = 'tokens';
      s = s.slice(0, -1).trim();
    }
    if (!PY_FLOAT.test(s)) return bad();
  }
  const value = Math.trunc(Number(s.replace(/_/g, '')));
  if (!Number.isFinite(value) || value < 0) return bad();
  if (!Number.isSafeInteger(value)) throw new ConfigError(key, `got ${showValue(v)}, which is beyond 2^53 and cannot be counted exactly`);
  return { unit, value };
}

/**
 * A global batch size that changes with the tokens trained on (batch_size_warmup, an olmo-ts
 * extension); implemented by BatchSizeSchedule (src/data/batch-schedule.ts).
 */
export interface BatchSizeProgress {
  /** Tokens trained on after `steps` more steps from `tokensSeen`. */
  tokensAfterSteps(tokensSeen: number, steps: number): number;
  /** Steps whose whole batch fits below `budget` tokens, from `tokensSeen`. */
  stepsWithinTokens(tokensSeen: number, budget: number): number;
}

/** The training progress the budget conversions depend on (OLMo Trainer state). */
export interface Progress {
  /** Optimizer steps taken so far. */
  globalStep: number;
  /** Training tokens seen so far (all ranks). */
  tokensSeen: number;
  /** global_train_batch_size * model.max_sequence_length. */
  tokensPerBatch: number;
  /** Batches in one epoch (dataset size // global_train_batch_size); needed only for "ep" durations. */
  batchesPerEpoch?: number;
  /** With a changing batch size: the conversions follow it instead of tokensPerBatch. */
  batchSizes?: BatchSizeProgress;
  /** With a changing batch size: steps of N whole epochs from the start of training. */
  stepsForEpochs?: (epochs: number) => number;
}

function needEpochs(p: Progress): number {
  if (p.batchesPerEpoch === undefined) throw new Error('max_duration is in epochs: batchesPerEpoch is required');
  return p.batchesPerEpoch;
}

/** The last step of training (OLMo Trainer.max_steps). */
export function maxSteps(d: Duration, p: Progress): number {
  switch (d.unit) {
    case 'steps':
      return d.value;
    case 'tokens':
      if (p.batchSizes) return p.globalStep + p.batchSizes.stepsWithinTokens(p.tokensSeen, d.value);
      return p.globalStep + Math.floor(Math.max(d.value - p.tokensSeen, 0) / p.tokensPerBatch);
    case 'epochs':
      return p.stepsForEpochs ? p.stepsForEpochs(d.value) : d.value * needEpochs(p);
  }
}

/** The token budget of training (OLMo Trainer.max_tokens). */
export function maxTokens(d: Duration, p: Progress): number {
  switch (d.unit) {
    case 'steps':
      if (p.batchSizes) return p.batchSizes.tokensAfterSteps(p.tokensSeen, Math.max(d.value - p.globalStep, 0));
      return p.tokensSeen + Math.max(d.value - p.globalStep, 0) * p.tokensPerBatch;
    case 'tokens':
      return d.value;
    case 'epochs':
      if (p.batchSizes && p.stepsForEpochs) return p.batchSizes.tokensAfterSteps(0, p.stepsForEpochs(d.value));
      return d.value * needEpochs(p) * p.tokensPerBatch;
  }
}

/** The number of epochs to loop over (OLMo Trainer.max_epochs: 1 unless given in epochs). */
export function maxEpochs(d: Duration): number {
  return d.unit === 'epochs' ? d.value : 1;
}
