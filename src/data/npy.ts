// Reading and writing numpy's .npy format (version 1.0/2.0 headers) for 1-D little-endian integer
// arrays, plus the headerless "memmap .npy" files OLMo actually writes (np.memmap, no header).
import * as fs from 'node:fs';
import { DataError } from './errors';

/** Integer dtypes that token, mask and index files use. */
export type IntDType = 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int32' | 'int64' | 'bool';

const DESCR: Record<IntDType, string> = {
  uint8: '|u1', bool: '|b1', uint16: '<u2', uint32: '<u4', uint64: '<u8', int32: '<i4', int64: '<i8',
};
const ITEM: Record<IntDType, number> = { uint8: 1, bool: 1, uint16: 2, uint32: 4, uint64: 8, int32: 4, int64: 8 };

/** Bytes per element of a dtype. */
export function itemSize(dtype: IntDType): number {
  return ITEM[dtype];
}

/** The parsed header of a .npy file. */
export interface NpyHeader {
  dtype: IntDType;
  shape: number[];
  /** Byte offset of the first element. */
  dataOffset: number;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** True if the bytes start with numpy's .npy magic string. */
export function hasNpyMagic(head: Uint8Array): boolean {
  return head.length >= 6 && Buffer.from(head.buffer, head.byteOffset, 6).equals(MAGIC);
}

/** Parses a .npy header from the first bytes of a file (at least the whole header). */
export function parseNpyHeader(head: Buffer, file = '<buffer>'): NpyHeader {
  if (!hasNpyMagic(head)) throw new DataError('not a .npy file (no \\x93NUMPY magic)', { file });
  const major = head[6]!;
  const headerLen = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const text = head.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new DataError(`unreadable .npy header ${JSON.stringify(text)}`, { file });
  const dtype = (Object.keys(DESCR) as IntDType[]).find((k) => DESCR[k] === descr || (descr === '<u1' && k === 'uint8'));
  if (!dtype) throw new DataError(`unsupported .npy dtype ${descr} (expected one of ${Object.values(DESCR).join(', ')})`, { file });
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => parseInt(s, 10));
  return { dtype, shape, dataOffset: start + headerLen };
}

/** Builds a version-1.0 .npy header for a C-order array, padded to 64 bytes as numpy.save does. */
export function npyHeader(dtype: IntDType, shape: number[]): Buffer {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const unpadded = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + dict.length);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(dict.length, 8);
  out.write(dict, 10, 'latin1');
  return out;
}

/** Writes a 1-D typed array as a real .npy file (with header) to `path`, via a temporary name. */
export function writeNpy(path: string, data: Uint8Array | Uint16Array | Uint32Array | Int32Array, dtype?: IntDType): void {
  const dt: IntDType = dtype ?? (data instanceof Uint16Array ? 'uint16' : data instanceof Uint32Array ? 'uint32' : data instanceof Int32Array ? 'int32' : 'uint8');
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  writeAtomic(path, [npyHeader(dt, [data.length]), body]);
}

/** Writes buffers to `path.tmp-<pid>` and renames it into place, so a crash never leaves a partial file. */
export function writeAtomic(path: string, parts: Uint8Array[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const p of parts) {
      let off = 0;
      while (off < p.byteLength) off += fs.writeSync(fd, p, off, p.byteLength - off);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, path);
}

/** Reads a whole 1-D uint32 array from either a real .npy file or a headerless one (OLMo's). */
export function readUint32File(path: string): Uint32Array {
  const buf = fs.readFileSync(path);
  let offset = 0;
  let count = Math.floor(buf.length / 4);
  if (hasNpyMagic(buf)) {
    const h = parseNpyHeader(buf, path);
    if (h.dtype !== 'uint32') throw new DataError(`expected a uint32 array, found ${h.dtype}`, { file: path });
    offset = h.dataOffset;
    count = h.shape.reduce((a, b) => a * b, 1);
  } else if (buf.length % 4 !== 0) {
    throw new DataError(`size ${buf.length} bytes is not a multiple of 4 (uint32)`, { file: path });
  }
  const out = new Uint32Array(count);
  Buffer.from(out.buffer).set(buf.subarray(offset, offset + count * 4));
  return out;
}
