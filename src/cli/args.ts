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
