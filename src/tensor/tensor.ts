// The Tensor class: a handle to an at::Tensor in the native addon, with PyTorch's method names so
// model code reads like PyTorch (`x.matmul(w).softmax(-1)`). Every op returns a new Tensor that
// belongs to the current tidy() scope; methods ending in `_` work in place and return `this`.
import { native, Id } from '../native';
import { ArgumentError, DisposedError } from '../native/errors';
import { BinaryOp, ReduceOp, UnaryOp } from './ops';
import { Device, DType, deviceCode, deviceFromCode, dtypeCode, dtypeFromCode } from './dtype';
import { Disposable, track } from './scope';

const N = native;

/** Either a dims list or a single dim. */
export type Dims = number | number[];

/** Wraps a fresh native id in a Tensor (tracked by the current scope). */
export function wrap(id: Id): Tensor {
  return new Tensor(id);
}
function wrapAll(ids: Id[]): Tensor[] {
  return ids.map(wrap);
}

/** Id of a tensor argument, with a readable error for non-tensors and disposed tensors. */
export function tid(t: Tensor, what = 'argument'): Id {
  if (!(t instanceof Tensor)) throw new ArgumentError(`${what} must be a Tensor, got ${describe(t)}`);
  if (t.id < 0) throw new DisposedError(`${what} was disposed`);
  return t.id;
}
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? (v as object).constructor?.name ?? 'an object' : `${typeof v} ${String(v)}`;
}
function dimsOf(d: Dims | undefined | null): number[] | null {
  return d === undefined || d === null ? null : typeof d === 'number' ? [d] : d;
}

export class Tensor implements Disposable {
  /** Native handle; -1 once disposed. */
  id: Id;
  /** True once keep() exempted it from tidy scopes. */
  kept = false;

  /** @internal Use the factory functions (tensor, zeros, ...) instead. */
  constructor(id: Id) {
    this.id = id;
    track(this);
  }

  /** Frees the native tensor now. Idempotent. */
  dispose(): void {
    if (this.id >= 0) {
      N.dispose(this.id);
      this.id = -1;
    }
  }
  get isDisposed(): boolean {
    return this.id < 0;
  }

  // ------------------------------------------------------------------ metadata
  get shape(): number[] {
    return N.shape(tid(this, 'tensor'));
  }
  /** PyTorch's size(): the shape, or one dim of it (negative dims count from the end). */
  size(dim?: number): number[] | number {
    const s = this.shape;
    if (dim === undefined) return s;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new ArgumentError(`dim ${dim} out of range for a ${s.length}-d tensor`);
    return s[d]!;
  }
  get dtype(): DType {
    return dtypeFromCode(N.dtype(tid(this, 'tensor')));
  }
  get device(): Device {
    return deviceFromCode(N.device(tid(this, 'tensor')));
  }
  get ndim(): number {
    return N.ndim(tid(this, 'tensor'));
  }
  get numel(): number {
    return N.numel(tid(this, 'tensor'));
  }
  get strides(): number[] {
    return N.strides(tid(this, 'tensor'));
  }
  isContiguous(): boolean {
    return N.isContiguous(tid(this, 'tensor'));
  }
  toString(): string {
    return this.id < 0 ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ------------------------------------------------------------------ host transfer (SYNC)
  /** Copies the data to a typed array: Float32Array for float32, raw bits in a Uint16Array for
   *  bfloat16/float16, BigInt64Array for int64, Uint8Array for uint8/bool. */
  toArray(): ReturnType<typeof N.toArray> {
    return N.toArray(tid(this, 'tensor'));
  }
  /** The data as float64 numbers (converted on the native side), row-major. */
  toFloat64Array(): Float64Array {
    const t = N.to(tid(this, 'tensor'), 1, -1, false);
    try {
      return N.toArray(t) as Float64Array;
    } finally {
      N.dispose(t);
    }
  }
  /** The data as a flat array of JS numbers. */
  toList(): number[] {
    return Array.from(this.toFloat64Array());
  }
  /** The value of a one-element tensor. */
  item(): number {
    return N.item(tid(this, 'tensor')) as number;
  }

  // ------------------------------------------------------------------ conversion
  /** Converts dtype and/or device (a no-op view when nothing changes, unless copy). */
  to(dtypeOrDevice: DType | Device, opts: { copy?: boolean } = {}): Tensor {
    const id = tid(this, 'tensor');
    const isDevice = dtypeOrDevice === 'cpu' || dtypeOrDevice.startsWith('cuda');
    const dt = isDevice ? N.dtype(id) : dtypeCode(dtypeOrDevice);
    const dev = isDevice ? deviceCode(dtypeOrDevice) : N.device(id);
    return wrap(N.to(id, dt, dev, opts.copy ?? false));
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  cpu(): Tensor { return this.to('cpu'); }
  cuda(index = 0): Tensor { return this.to(`cuda:${index}`); }
  contiguous(): Tensor { return wrap(N.contiguous(tid(this, 'tensor'))); }
  clone(): Tensor { return wrap(N.clone(tid(this, 'tensor'))); }
  /** A tensor sharing data but cut from the autograd graph. */
  detach(): Tensor { return wrap(N.detach(tid(this, 'tensor'))); }

  // ------------------------------------------------------------------ views and shape
  reshape(...shape: number[] | [number[]]): Tensor { return wrap(N.reshape(tid(this, 'tensor'), flatShape(shape))); }
  view(...shape: number[] | [number[]]): Tensor { return wrap(N.view(tid(this, 'tensor'), flatShape(shape))); }
  transpose(dim0: number, dim1: number): Tensor { return wrap(N.transpose(tid(this, 'tensor'), dim0, dim1)); }
  /** Transpose of a 2-d tensor. */
  get T(): Tensor { return this.transpose(0, 1); }
  permute(...dims: number[] | [number[]]): Tensor { return wrap(N.permute(tid(this, 'tensor'), flatShape(dims))); }
  narrow(dim: number, start: number, length: number): Tensor { return wrap(N.narrow(tid(this, 'tensor'), dim, start, length)); }
  /** Python's t[..., start:end:step] along dim (end clamps; negative indices count from the end). */
  slice(dim: number, start = 0, end = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return wrap(N.slice(tid(this, 'tensor'), dim, start, end, step));
  }
  /** t.select(dim, i): indexes one position, removing the dim. */
  select(dim: number, index: number): Tensor { return wrap(N.select(tid(this, 'tensor'), dim, index)); }
  chunk(chunks: number, dim = 0): Tensor[] { return wrapAll(N.chunk(tid(this, 'tensor'), chunks, dim)); }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] { return wrapAll(N.split(tid(this, 'tensor'), sizeOrSizes, dim)); }
  squeeze(dim?: number): Tensor { return wrap(N.squeeze(tid(this, 'tensor'), dim ?? null)); }
  unsqueeze(dim: number): Tensor { return wrap(N.unsqueeze(tid(this, 'tensor'), dim)); }
  expand(...shape: number[] | [number[]]): Tensor { return wrap(N.expand(tid(this, 'tensor'), flatShape(shape))); }
  flatten(startDim = 0, endDim = -1): Tensor { return wrap(N.flatten(tid(this, 'tensor'), startDim, endDim)); }
  repeat(...sizes: number[] | [number[]]): Tensor { return wrap(N.repeat(tid(this, 'tensor'), flatShape(sizes))); }
  repeatInterleave(repeats: number, dim: number): Tensor { return wrap(N.repeatInterleave(tid(this, 'tensor'), repeats, dim)); }
  flip(dims: Dims): Tensor { return wrap(N.flip(tid(this, 'tensor'), dimsOf(dims)!)); }
  indexSelect(dim: number, index: Tensor): Tensor { return wrap(N.indexSelect(tid(this, 'tensor'), dim, tid(index, 'index'))); }
  gather(dim: number, index: Tensor): Tensor { return wrap(N.gather(tid(this, 'tensor'), dim, tid(index, 'index'))); }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(N.scatter(tid(this, 'tensor'), dim, tid(index, 'index'), tid(src, 'src')));
  }
  maskedFill(mask: Tensor, value: number): Tensor { return wrap(N.maskedFill(tid(this, 'tensor'), tid(mask, 'mask'), value)); }
  maskedFill_(mask: Tensor, value: number): this { N.maskedFill_(tid(this, 'tensor'), tid(mask, 'mask'), value); return this; }
  tril(diagonal = 0): Tensor { return wrap(N.tril(tid(this, 'tensor'), diagonal)); }
  triu(diagonal = 0): Tensor { return wrap(N.triu(tid(this, 'tensor'), diagonal)); }
  /** [values, indices] sorted along dim. */
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = N.sort(tid(this, 'tensor'), dim, descending);
    return [wrap(v), wrap(i)];
  }
  /** [values, indices] of the k largest along dim. */
  topk(k: number, dim = -1): [Tensor, Tensor] {
    const [v, i] = N.topk(tid(this, 'tensor'), k, dim);
    return [wrap(v), wrap(i)];
  }
  cumsum(dim: number): Tensor { return wrap(N.cumsum(tid(this, 'tensor'), dim)); }

  // ------------------------------------------------------------------ elementwise
  private bin(op: BinaryOp, other: Tensor | number, name: string): Tensor {
    return typeof other === 'number'
      ? wrap(N.binaryScalar(op, tid(this, 'tensor'), other))
      : wrap(N.binary(op, tid(this, 'tensor'), tid(other, `${name}(other)`)));
  }
  add(other: Tensor | number): Tensor { return this.bin(BinaryOp.Add, other, 'add'); }
  sub(other: Tensor | number): Tensor { return this.bin(BinaryOp.Sub, other, 'sub'); }
  /** other - this (PyTorch's rsub). */
  rsub(other: number): Tensor { return wrap(N.binaryScalar(BinaryOp.RSub, tid(this, 'tensor'), other)); }
  mul(other: Tensor | number): Tensor { return this.bin(BinaryOp.Mul, other, 'mul'); }
  div(other: Tensor | number): Tensor { return this.bin(BinaryOp.Div, other, 'div'); }
  pow(exponent: Tensor | number): Tensor { return this.bin(BinaryOp.Pow, exponent, 'pow'); }
  maximum(other: Tensor | number): Tensor { return this.bin(BinaryOp.Maximum, other, 'maximum'); }
  minimum(other: Tensor | number): Tensor { return this.bin(BinaryOp.Minimum, other, 'minimum'); }
  remainder(other: Tensor | number): Tensor { return this.bin(BinaryOp.Remainder, other, 'remainder'); }
  floorDivide(other: Tensor | number): Tensor { return this.bin(BinaryOp.FloorDivide, other, 'floorDivide'); }
  eq(other: Tensor | number): Tensor { return this.bin(BinaryOp.Eq, other, 'eq'); }
  ne(other: Tensor | number): Tensor { return this.bin(BinaryOp.Ne, other, 'ne'); }
  lt(other: Tensor | number): Tensor { return this.bin(BinaryOp.Lt, other, 'lt'); }
  le(other: Tensor | number): Tensor { return this.bin(BinaryOp.Le, other, 'le'); }
  gt(other: Tensor | number): Tensor { return this.bin(BinaryOp.Gt, other, 'gt'); }
  ge(other: Tensor | number): Tensor { return this.bin(BinaryOp.Ge, other, 'ge'); }
  logicalAnd(other: Tensor): Tensor { return this.bin(BinaryOp.LogicalAnd, other, 'logicalAnd'); }
  logicalOr(other: Tensor): Tensor { return this.bin(BinaryOp.LogicalOr, other, 'logicalOr'); }

  private inplace(op: BinaryOp, other: Tensor | number, alpha: number, name: string): this {
    if (typeof other === 'number') N.binaryInplace(op, tid(this, 'tensor'), other, true, alpha);
    else N.binaryInplace(op, tid(this, 'tensor'), tid(other, `${name}(other)`), false, alpha);
    return this;
  }
  /** this += alpha * other */
  add_(other: Tensor | number, alpha = 1): this { return this.inplace(BinaryOp.Add, other, alpha, 'add_'); }
  sub_(other: Tensor | number, alpha = 1): this { return this.inplace(BinaryOp.Sub, other, alpha, 'sub_'); }
  mul_(other: Tensor | number): this { return this.inplace(BinaryOp.Mul, other, 1, 'mul_'); }
  div_(other: Tensor | number): this { return this.inplace(BinaryOp.Div, other, 1, 'div_'); }
  pow_(exponent: Tensor | number): this { return this.inplace(BinaryOp.Pow, exponent, 1, 'pow_'); }

  private un(op: UnaryOp): Tensor { return wrap(N.unary(op, tid(this, 'tensor'))); }
  private un_(op: UnaryOp): this { N.unaryInplace(op, tid(this, 'tensor')); return this; }
  neg(): Tensor { return this.un(UnaryOp.Neg); }
  exp(): Tensor { return this.un(UnaryOp.Exp); }
  log(): Tensor { return this.un(UnaryOp.Log); }
  log1p(): Tensor { return this.un(UnaryOp.Log1p); }
  expm1(): Tensor { return this.un(UnaryOp.Expm1); }
  sqrt(): Tensor { return this.un(UnaryOp.Sqrt); }
  rsqrt(): Tensor { return this.un(UnaryOp.Rsqrt); }
  abs(): Tensor { return this.un(UnaryOp.Abs); }
  sin(): Tensor { return this.un(UnaryOp.Sin); }
  cos(): Tensor { return this.un(UnaryOp.Cos); }
  tanh(): Tensor { return this.un(UnaryOp.Tanh); }
  sigmoid(): Tensor { return this.un(UnaryOp.Sigmoid); }
  silu(): Tensor { return this.un(UnaryOp.Silu); }
  /** GELU; approximate 'tanh' uses the tanh formula (OLMo's GELU uses the exact 'none'). */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return this.un(approximate === 'tanh' ? UnaryOp.GeluTanh : UnaryOp.Gelu); }
  relu(): Tensor { return this.un(UnaryOp.Relu); }
  erf(): Tensor { return this.un(UnaryOp.Erf); }
  erfinv(): Tensor { return this.un(UnaryOp.Erfinv); }
  square(): Tensor { return this.un(UnaryOp.Square); }
  reciprocal(): Tensor { return this.un(UnaryOp.Reciprocal); }
  sign(): Tensor { return this.un(UnaryOp.Sign); }
  floor(): Tensor { return this.un(UnaryOp.Floor); }
  ceil(): Tensor { return this.un(UnaryOp.Ceil); }
  round(): Tensor { return this.un(UnaryOp.Round); }
  isfinite(): Tensor { return this.un(UnaryOp.IsFinite); }
  isnan(): Tensor { return this.un(UnaryOp.IsNan); }
  isinf(): Tensor { return this.un(UnaryOp.IsInf); }
  logicalNot(): Tensor { return this.un(UnaryOp.LogicalNot); }
  neg_(): this { return this.un_(UnaryOp.Neg); }
  exp_(): this { return this.un_(UnaryOp.Exp); }
  log_(): this { return this.un_(UnaryOp.Log); }
  sqrt_(): this { return this.un_(UnaryOp.Sqrt); }
  rsqrt_(): this { return this.un_(UnaryOp.Rsqrt); }
  abs_(): this { return this.un_(UnaryOp.Abs); }
  tanh_(): this { return this.un_(UnaryOp.Tanh); }
  sigmoid_(): this { return this.un_(UnaryOp.Sigmoid); }
  silu_(): this { return this.un_(UnaryOp.Silu); }
  relu_(): this { return this.un_(UnaryOp.Relu); }
  erf_(): this { return this.un_(UnaryOp.Erf); }
  erfinv_(): this { return this.un_(UnaryOp.Erfinv); }
  square_(): this { return this.un_(UnaryOp.Square); }
  reciprocal_(): this { return this.un_(UnaryOp.Reciprocal); }

  clamp(min: number | null = null, max: number | null = null): Tensor { return wrap(N.clamp(tid(this, 'tensor'), min, max)); }
  clamp_(min: number | null = null, max: number | null = null): this { N.clamp_(tid(this, 'tensor'), min, max); return this; }

  // ------------------------------------------------------------------ in-place writes and init
  fill_(value: number | boolean): this { N.fill_(tid(this, 'tensor'), value); return this; }
  zero_(): this { N.zero_(tid(this, 'tensor')); return this; }
  /** Copies src into this (broadcasting, converting dtype/device). */
  copy_(src: Tensor): this { N.copy_(tid(this, 'tensor'), tid(src, 'src')); return this; }
  /** Fills with U(a, b) from the default (or given) generator. */
  uniform_(a = 0, b = 1, generator?: { id: number }): this { N.uniform_(tid(this, 'tensor'), a, b, generator?.id ?? -1); return this; }
  /** Fills with N(mean, std²) from the default (or given) generator. */
  normal_(mean = 0, std = 1, generator?: { id: number }): this { N.normal_(tid(this, 'tensor'), mean, std, generator?.id ?? -1); return this; }

  // ------------------------------------------------------------------ reductions
  private red(op: ReduceOp, dims: Dims | undefined, keepdim: boolean, dtype?: DType): Tensor {
    return wrap(N.reduce(op, tid(this, 'tensor'), dimsOf(dims), keepdim, dtype ? dtypeCode(dtype) : -1));
  }
  sum(dims?: Dims, keepdim = false, dtype?: DType): Tensor { return this.red(ReduceOp.Sum, dims, keepdim, dtype); }
  mean(dims?: Dims, keepdim = false, dtype?: DType): Tensor { return this.red(ReduceOp.Mean, dims, keepdim, dtype); }
  amax(dims?: Dims, keepdim = false): Tensor { return this.red(ReduceOp.Amax, dims ?? [], keepdim); }
  amin(dims?: Dims, keepdim = false): Tensor { return this.red(ReduceOp.Amin, dims ?? [], keepdim); }
  /** Max over everything, or [values, indices] along dim. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return this.amax();
    const [v, i] = N.maxDim(tid(this, 'tensor'), dim, keepdim);
    return [wrap(v), wrap(i)];
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return this.amin();
    const [v, i] = N.minDim(tid(this, 'tensor'), dim, keepdim);
    return [wrap(v), wrap(i)];
  }
  argmax(dim?: number, keepdim = false): Tensor { return wrap(N.argmax(tid(this, 'tensor'), dim ?? null, keepdim)); }
  all(dim?: number, keepdim = false): Tensor { return this.red(ReduceOp.All, dim, keepdim); }
  any(dim?: number, keepdim = false): Tensor { return this.red(ReduceOp.Any, dim, keepdim); }
  /** Unbiased variance (PyTorch's default); `unbiased: false` for the population variance. */
  var(dims?: Dims, keepdim = false, unbiased = true): Tensor { return this.red(unbiased ? ReduceOp.Var : ReduceOp.VarBiased, dims, keepdim); }
  std(dims?: Dims, keepdim = false): Tensor { return this.red(ReduceOp.Std, dims, keepdim); }
  /** p-norm over everything or over dims. */
  norm(p = 2, dims?: Dims, keepdim = false): Tensor { return wrap(N.norm(tid(this, 'tensor'), p, dimsOf(dims), keepdim)); }

  // ------------------------------------------------------------------ nn ops as methods
  matmul(other: Tensor): Tensor { return wrap(N.matmul(tid(this, 'tensor'), tid(other, 'matmul(other)'))); }
  softmax(dim: number, dtype?: DType): Tensor { return wrap(N.softmax(tid(this, 'tensor'), dim, dtype ? dtypeCode(dtype) : -1)); }
  logSoftmax(dim: number, dtype?: DType): Tensor { return wrap(N.logSoftmax(tid(this, 'tensor'), dim, dtype ? dtypeCode(dtype) : -1)); }
  logsumexp(dims: Dims, keepdim = false): Tensor { return wrap(N.logsumexp(tid(this, 'tensor'), dims, keepdim)); }

  // ------------------------------------------------------------------ autograd
  get requiresGrad(): boolean { return N.requiresGrad(tid(this, 'tensor')); }
  set requiresGrad(on: boolean) { N.setRequiresGrad(tid(this, 'tensor'), on); }
  /** Sets requires_grad (leaf tensors only) and returns this. */
  requiresGrad_(on = true): this { N.setRequiresGrad(tid(this, 'tensor'), on); return this; }
  get isLeaf(): boolean { return N.isLeaf(tid(this, 'tensor')); }
  /** Keeps .grad for a non-leaf tensor. */
  retainGrad(): this { N.retainGrad(tid(this, 'tensor')); return this; }
  /** The accumulated gradient as a new handle (owned by the current scope), or null. */
  get grad(): Tensor | null {
    const g = N.grad(tid(this, 'tensor'));
    return g < 0 ? null : wrap(g);
  }
  set grad(g: Tensor | null) { N.setGrad(tid(this, 'tensor'), g === null ? -1 : tid(g, 'grad')); }
  /** Name of the autograd node that produced this tensor (e.g. 'AddBackward0'), or null. */
  get gradFn(): string | null { return N.gradFnName(tid(this, 'tensor')); }
  /** Back-propagates from this tensor (a scalar, unless gradient is given). */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    N.backward(tid(this, 'tensor'), gradient ? tid(gradient, 'gradient') : -1, opts.retainGraph ?? false);
  }
}

function flatShape(args: number[] | [number[]]): number[] {
  return Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
}
