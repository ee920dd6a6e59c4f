// Dtypes and devices as the TypeScript API names them, and their integer codes in the addon
// (kept in step with native/registry.cc: kDTypes and device codes).
import { native } from '../native';
import { ArgumentError } from '../native/errors';

/** Element types, named as in PyTorch. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool';
/** 'cpu', 'cuda' (= cuda:0) or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];
const CODE: Record<string, number> = Object.fromEntries(DTYPES.map((d, i) => [d, i]));
const ALIASES: Record<string, DType> = { float: 'float32', double: 'float64', half: 'float16', long: 'int64', int: 'int32', bf16: 'bfloat16', fp16: 'float16', fp32: 'float32' };

/** Integer code of a dtype; throws ArgumentError naming the bad value. */
export function dtypeCode(d: DType | string): number {
  const c = CODE[d] ?? CODE[ALIASES[d] ?? ''];
  if (c === undefined) throw new ArgumentError(`unknown dtype '${d}' (expected one of ${DTYPES.join(', ')})`);
  return c;
}
export function dtypeFromCode(c: number): DType {
  const d = DTYPES[c];
  if (!d) throw new ArgumentError(`unknown dtype code ${c}`);
  return d;
}
export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}
export function elementSize(d: DType): number {
  return { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, uint8: 1, bool: 1 }[d];
}

let cudaDevices: number | null = null;

/** Integer code of a device: -1 for cpu, N for cuda:N (checked against the devices present). */
export function deviceCode(d: Device | string): number {
  if (d === 'cpu') return -1;
  const m = d === 'cuda' ? ['cuda', '0'] : /^cuda:(\d+)$/.exec(d);
  if (!m) throw new ArgumentError(`unknown device '${d}' (expected 'cpu', 'cuda' or 'cuda:N')`);
  const n = Number(m[1]);
  cudaDevices ??= native.cudaIsAvailable() ? native.cudaDeviceCount() : 0;
  if (n >= cudaDevices) {
    throw new ArgumentError(cudaDevices === 0
      ? `device '${d}': CUDA is not available (this libtorch has no CUDA, or no GPU is visible)`
      : `device '${d}': only ${cudaDevices} CUDA device(s) are visible`);
  }
  return n;
}
export function deviceFromCode(c: number): Device {
  return c === -1 ? 'cpu' : (`cuda:${c}` as Device);
}
