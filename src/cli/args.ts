// Option-value parsers shared by the commands: each rejects a bad value with commander's
// InvalidArgumentError, so the user sees "error: option '--x <n>' argument 'y' is invalid. ...".
import { InvalidArgumentError } from 'commander';

/** An integer >= min (default 0). */
export function intAtLeast(min = 0): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}.`);
    return n;
  };
}

/** A positive integer. */
export const positiveInt = intAtLeast(1);
/** A non-negative integer. */
export const nonNegativeInt = intAtLeast(0);

/** An integer from `min` to `max`. */
export function intInRange(min: number, max: number): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    return n;
  };
}

/** A finite number within [min, max] (`exclusiveMin`: above min). NaN and infinities are refused. */
export function finiteNumber(min: number, max: number, o: { exclusiveMin?: boolean } = {}): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    const low = o.exclusiveMin ? n > min : n >= min;
    if (v.trim() === '' || !Number.isFinite(n) || !low || n > max) {
      throw new InvalidArgumentError(`expected a number ${o.exclusiveMin ? 'above' : 'from'} ${min}${Number.isFinite(max) ? ` ${o.exclusiveMin ? 'up ' : ''}to ${max}` : ' or more'}.`);
    }
    return n;
  };
}

/** A seed: an integer from 0 to 2^53-1 (what JavaScript numbers and the RNGs take exactly). */
export const seedInt = intInRange(0, Number.MAX_SAFE_INTEGER);
