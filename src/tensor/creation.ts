// Factory functions: tensors from JS data, constants, ranges and random draws, plus the
// multi-tensor ops (cat, stack, where). Defaults follow PyTorch: float32 on the CPU.
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { Device, DType, deviceCode, dtypeCode } from './dtype';
import { Tensor, tid, wrap } from './tensor';

const N = native;

/** Options shared by the factories. */
export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}
interface RandomOptions extends TensorOptions {
  /** A Generator; the default generator (seeded by manualSeed) otherwise. */
  generator?: { id: number };
}

type Nested = number | boolean | Nested[];
type Typed = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | Uint32Array | BigInt64Array;

function finish(t: Tensor, o: TensorOptions): Tensor {
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}
function dev(o: TensorOptions): number {
  return o.device ? deviceCode(o.device) : -1;
}

function naturalDType(a: Typed): DType {
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array || a instanceof Uint32Array) return 'int64';
  if (a instanceof Int32Array || a instanceof Int16Array || a instanceof Int8Array || a instanceof Uint16Array) return 'int32';
  if (a instanceof Uint8Array) return 'uint8';
  return 'float32';
}

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

/**
 * A tensor from JS data: a (nested) number/boolean array, or a typed array with `shape`.
 * bfloat16/float16 from a Uint16Array take the array's bits as they are.
 */
export function tensor(data: Nested | Typed, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const typed = data as Typed;
    const shape = opts.shape ?? [typed.length];
    const dtype = opts.dtype ?? naturalDType(typed);
    return finish(wrap(N.fromArray(typed, shape, dtypeCode(dtype), dev(opts))), opts);
  }
  const shape = opts.shape ?? inferShape(data);
  const flat: (number | boolean)[] = Array.isArray(data) ? ((data as unknown[]).flat(Infinity) as (number | boolean)[]) : [data];
  const expected = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== expected) throw new ArgumentError(`ragged or mis-shaped data: ${flat.length} values for shape [${shape}]`);
  const isBool = flat.length > 0 && typeof flat[0] === 'boolean';
  const dtype = opts.dtype ?? (isBool ? 'bool' : 'float32');
  for (const v of flat) {
    if (typeof v !== 'number' && typeof v !== 'boolean') throw new ArgumentError(`tensor data must be numbers or booleans, got ${typeof v}`);
  }
  const host = dtype === 'float64' || dtype === 'int64' || dtype === 'int32' ? Float64Array.from(flat as number[], Number) : Float32Array.from(flat as number[], Number);
  return finish(wrap(N.fromArray(host, shape, dtypeCode(dtype), dev(opts))), opts);
}

/** A 0-d tensor. */
export function scalar(value: number, opts: TensorOptions = {}): Tensor {
  return full([], value, opts);
}

function shapeOf(shape: number[] | number): number[] {
  return typeof shape === 'number' ? [shape] : shape;
}
export function zeros(shape: number[] | number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.zeros(shapeOf(shape), dtypeCode(opts.dtype ?? 'float32'), dev(opts))), opts);
}
export function ones(shape: number[] | number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.ones(shapeOf(shape), dtypeCode(opts.dtype ?? 'float32'), dev(opts))), opts);
}
/** Uninitialised memory. */
export function empty(shape: number[] | number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.empty(shapeOf(shape), dtypeCode(opts.dtype ?? 'float32'), dev(opts))), opts);
}
export function full(shape: number[] | number, value: number | boolean, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32');
  return finish(wrap(N.full(shapeOf(shape), value, dtypeCode(dtype), dev(opts))), opts);
}
export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}
export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}
export function fullLike(t: Tensor, value: number, opts: TensorOptions = {}): Tensor {
  return full(t.shape, value, { dtype: t.dtype, device: t.device, ...opts });
}
/** arange(end) or arange(start, end, step); int64 by default, as in PyTorch for integer bounds. */
export function arange(startOrEnd: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  const integral = Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step);
  const dtype = opts.dtype ?? (integral ? 'int64' : 'float32');
  return finish(wrap(N.arange(s, e, step, dtypeCode(dtype), dev(opts))), opts);
}
/** Standard normal draws. */
export function randn(shape: number[] | number, opts: RandomOptions = {}): Tensor {
  return finish(wrap(N.randn(shapeOf(shape), dtypeCode(opts.dtype ?? 'float32'), dev(opts), opts.generator?.id ?? -1)), opts);
}
/** Uniform draws in [0, 1). */
export function rand(shape: number[] | number, opts: RandomOptions = {}): Tensor {
  return finish(wrap(N.rand(shapeOf(shape), dtypeCode(opts.dtype ?? 'float32'), dev(opts), opts.generator?.id ?? -1)), opts);
}
/** Integers in [low, high). */
export function randint(low: number, high: number, shape: number[] | number, opts: RandomOptions = {}): Tensor {
  return wrap(N.randint(low, high, shapeOf(shape), dtypeCode(opts.dtype ?? 'int64'), dev(opts), opts.generator?.id ?? -1));
}
/** A random permutation of 0..n-1. */
export function randperm(n: number, opts: RandomOptions = {}): Tensor {
  return wrap(N.randperm(n, dtypeCode(opts.dtype ?? 'int64'), dev(opts), opts.generator?.id ?? -1));
}
/** Samples n indices per row from the (unnormalised) probabilities. */
export function multinomial(probs: Tensor, n: number, opts: { replacement?: boolean; generator?: { id: number } } = {}): Tensor {
  return wrap(N.multinomial(tid(probs, 'probs'), n, opts.replacement ?? false, opts.generator?.id ?? -1));
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return wrap(N.cat(tensors.map((t, i) => tid(t, `cat: tensor ${i}`)), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return wrap(N.stack(tensors.map((t, i) => tid(t, `stack: tensor ${i}`)), dim));
}
/** Elementwise cond ? a : b (numbers become 0-d tensors of the other operand's dtype). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  const opts: TensorOptions = like ? { dtype: like.dtype, device: like.device } : {};
  const ta = a instanceof Tensor ? a : scalar(a, opts);
  const tb = b instanceof Tensor ? b : scalar(b, opts);
  try {
    return wrap(N.where(tid(cond, 'cond'), tid(ta, 'a'), tid(tb, 'b')));
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}
