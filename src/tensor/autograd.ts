// Grad mode and mixed-precision scopes: noGrad(fn), enableGrad(fn), autocast(fn, {dtype}).
// Both set thread-local libtorch state for the duration of a synchronous fn and restore it after.
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { Device, DType, dtypeCode } from './dtype';
import { Tensor, tid } from './tensor';

/** Runs fn with gradient tracking off (torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}
/** Runs fn with gradient tracking on (torch.enable_grad()). */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/**
 * Runs fn under automatic mixed precision (torch.autocast): matmuls and linear layers run in the
 * low-precision dtype, precision-sensitive ops stay in float32. CPU supports bfloat16; CUDA
 * bfloat16 and float16. `enabled: false` runs fn with autocast off (like OLMo's norms do).
 */
export function autocast<T>(fn: () => T, opts: { device?: Device | 'cuda'; dtype?: DType; enabled?: boolean } = {}): T {
  const cuda = (opts.device ?? 'cpu') !== 'cpu';
  const dtype = opts.dtype ?? 'bfloat16';
  if (dtype !== 'bfloat16' && dtype !== 'float16') throw new ArgumentError(`autocast dtype must be bfloat16 or float16, got ${dtype}`);
  const [prevOn, prevDtype] = native.autocastEnter(cuda, dtypeCode(dtype), opts.enabled ?? true);
  try {
    return fn();
  } finally {
    native.autocastExit(cuda, prevOn, prevDtype);
  }
}

/** Clears (or zeroes) the .grad of every tensor in one native call. */
export function zeroGrad(params: Tensor[], setToNone = true): void {
  native.zeroGrad(params.map((p, i) => tid(p, `param ${i}`)), setToNone);
}
