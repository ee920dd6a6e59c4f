// Dropout as OLMo uses it: the identity when p is 0 or the module is in eval mode (no op is even
// dispatched), F.dropout otherwise.
import { Tensor } from '../tensor/tensor';
import { dropout } from '../tensor/functional';
import { ArgumentError } from '../native/errors';
import { Module } from './module';

/** Zeroes elements with probability p in training and scales the rest by 1/(1-p). */
export class Dropout extends Module {
  readonly p: number;
  constructor(p: number) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`dropout probability must be in [0, 1], got ${p}`);
    this.p = p;
  }
  /** Returns x itself (not a copy) when inactive. */
  forward(x: Tensor): Tensor {
    if (this.p === 0 || !this.training) return x;
    return dropout(x, this.p, true);
  }
}
