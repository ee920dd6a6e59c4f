// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the raw little-endian
// tensor bytes. Reads and writes named tensors, checking the file as it goes. Files are written
// from chunks and read with positioned reads (src/io/chunked-file.ts): no file is ever one buffer.
import * as fs from 'node:fs';
import { Tensor } from '../tensor/tensor';
import { tensor } from '../tensor/creation';
import { tidy } from '../tensor/scope';
import { Device, DType, elementSize } from '../tensor/dtype';
import { MAX_BUFFER_BYTES, chunksBytes, readAt, writeChunksFile } from './chunked-file';

/** A malformed safetensors file, or a tensor it cannot hold. */
export class SafetensorsError extends Error {
  readonly code = 'ERR_SAFETENSORS';
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

const TO_DTYPE: Record<string, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  BOOL: 'bool',
};
const FROM_DTYPE: Record<DType, string> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

/** One tensor's entry in the header. */
export interface TensorEntry {
  dtype: DType;
  shape: number[];
  /** Byte range [begin, end) within the data section. */
  begin: number;
  end: number;
}

/** A parsed file: metadata, entries by name (in file order) and where the data section starts. */
export interface SafetensorsHeader {
  metadata: Record<string, string>;
  entries: Map<string, TensorEntry>;
  dataStart: number;
}

const MAX_HEADER = 100 * 1024 * 1024;

/** The header length in the first 8 bytes of a file of `size` bytes, checked. */
function headerLength(first8: Uint8Array, size: number, what: string): number {
  if (size < 8 || first8.byteLength < 8) throw new SafetensorsError(`${what}: too short (${size} bytes) for a header length`);
  const n = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > size) throw new SafetensorsError(`${what}: header length ${n} does not fit a ${size}-byte file`);
  return n;
}

/** Parses and checks the JSON header (`json`: its bytes) of a file of `size` bytes. */
function parseHeaderJson(json: Uint8Array, size: number, what: string): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(`${what}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError(`${what}: header is not a JSON object`);
  const dataStart = 8 + json.byteLength;
  const dataLen = size - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, TensorEntry>();
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      for (const [k, s] of Object.entries((v ?? {}) as Record<string, unknown>)) {
        if (typeof s !== 'string') throw new SafetensorsError(`${what}: metadata value of '${k}' is not a string`);
        metadata[k] = s;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof e?.dtype === 'string' ? TO_DTYPE[e.dtype] : undefined;
    if (!dtype) throw new SafetensorsError(`${what}: tensor '${name}' has unsupported dtype ${JSON.stringify(e?.dtype)} (supported: ${Object.keys(TO_DTYPE).join(', ')})`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new SafetensorsError(`${what}: tensor '${name}' has a bad shape ${JSON.stringify(shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${what}: tensor '${name}' has bad data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLen) throw new SafetensorsError(`${what}: tensor '${name}' data [${begin}, ${end}) lies outside the ${dataLen}-byte data section`);
    if (end - begin !== numel * elementSize(dtype)) {
      throw new SafetensorsError(`${what}: tensor '${name}' has ${end - begin} bytes, expected ${numel * elementSize(dtype)} for ${dtype} [${shape}]`);
    }
    entries.set(name, { dtype, shape: shape as number[], begin, end });
  }
  return { metadata, entries, dataStart };
}

/** Parses and checks the header of a safetensors buffer (offsets in range, sizes consistent). */
export function parseHeader(buf: Uint8Array, what = 'safetensors data'): SafetensorsHeader {
  const n = headerLength(buf, buf.byteLength, what);
  return parseHeaderJson(buf.subarray(8, 8 + n), buf.byteLength, what);
}

/**
 * Parses and checks the header of an open safetensors file with positioned reads (never the
 * whole file).
 */
export function readHeader(fd: number, what: string): SafetensorsHeader {
  const size = fs.fstatSync(fd).size;
  const first8 = size >= 8 ? readAt(fd, 0, 8, what) : new Uint8Array(0);
  const n = headerLength(first8, size, what);
  return parseHeaderJson(readAt(fd, 8, n, what), size, what);
}

function typedView(bytes: Uint8Array, dtype: DType): ArrayBufferView {
  // Copy into a fresh, aligned buffer: typed arrays need element-aligned offsets.
  const b = new Uint8Array(bytes.byteLength);
  b.set(bytes);
  return viewAs(b, dtype);
}

/** `b` (which owns its whole, aligned ArrayBuffer) as the typed array of `dtype`. */
function viewAs(b: Uint8Array, dtype: DType): ArrayBufferView {
  switch (dtype) {
    case 'float64':
      return new Float64Array(b.buffer);
    case 'float32':
      return new Float32Array(b.buffer);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(b.buffer);
    case 'int64':
      return new BigInt64Array(b.buffer);
    case 'int32':
      return new Int32Array(b.buffer);
    case 'uint8':
    case 'bool':
      return b;
  }
}

/** Options for loading. */
export interface LoadOptions {
  /** Device for the tensors (default cpu). */
  device?: Device;
  /** Only these names (all by default); a missing name is an error. */
  names?: string[];
}

/** Tensors and metadata from safetensors bytes. The caller owns (and disposes) the tensors. */
export function loadSafetensors(buf: Uint8Array, opts: LoadOptions = {}, what = 'safetensors data'): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const h = parseHeader(buf, what);
  const names = opts.names ?? [...h.entries.keys()];
  const tensors = new Map<string, Tensor>();
  try {
    for (const name of names) {
      const e = h.entries.get(name);
      if (!e) throw new SafetensorsError(`${what}: no tensor named '${name}'`);
      const bytes = buf.subarray(h.dataStart + e.begin, h.dataStart + e.end);
      const t = tidy(() => {
        const cpu = tensor(typedView(bytes, e.dtype) as Float32Array, { shape: e.shape, dtype: e.dtype });
        return opts.device && opts.device !== 'cpu' ? cpu.to(opts.device) : cpu;
      });
      tensors.set(name, t);
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata: h.metadata };
}

/**
 * Reads a .safetensors file: the header with positioned reads, then each tensor's bytes at its
 * offset into a buffer of its own (pieces of at most ioChunkBytes() per read), never the whole
 * file at once. A tensor larger than one Node buffer can hold is a SafetensorsError naming it.
 */
export function readSafetensors(path: string, opts: LoadOptions = {}): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot be opened (${(e as Error).message})`);
  }
  const tensors = new Map<string, Tensor>();
  try {
    const h = readHeader(fd, path);
    const names = opts.names ?? [...h.entries.keys()];
    for (const name of names) {
      const e = h.entries.get(name);
      if (!e) throw new SafetensorsError(`${path}: no tensor named '${name}'`);
      const n = e.end - e.begin;
      if (n > MAX_BUFFER_BYTES) {
        throw new SafetensorsError(`${path}: tensor '${name}' (${e.dtype} [${e.shape}]) has ${n} bytes, more than one Node buffer can hold (${MAX_BUFFER_BYTES} bytes); split it into smaller tensors`);
      }
      const bytes = readAt(fd, h.dataStart + e.begin, n, `${path}: tensor '${name}'`);
      const t = tidy(() => {
        const cpu = tensor(viewAs(bytes, e.dtype) as Float32Array, { shape: e.shape, dtype: e.dtype });
        return opts.device && opts.device !== 'cpu' ? cpu.to(opts.device) : cpu;
      });
      tensors.set(name, t);
    }
    return { tensors, metadata: h.metadata };
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err instanceof SafetensorsError ? err : new SafetensorsError(`${path}: ${(err as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Serialises named tensors, in the given order, with optional string metadata, as a file's chunks:
 * the length and header, then each tensor's host bytes as its own chunk (never concatenated, so
 * a file may exceed the 4 GiB of one Node buffer). Device tensors are copied to the host (SYNC).
 */
export function serializeSafetensorsChunks(tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array[] {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError(`'__metadata__' cannot be a tensor name`);
    const dtype = t.dtype;
    const n = t.numel * elementSize(dtype);
    if (n > MAX_BUFFER_BYTES) throw new SafetensorsError(`tensor '${name}' (${dtype} [${t.shape}]) has ${n} bytes, more than one Node buffer can hold (${MAX_BUFFER_BYTES} bytes); split it into smaller tensors`);
    const host = tidy(() => (t.device === 'cpu' ? t.contiguous() : t.to('cpu').contiguous()).toArray());
    const bytes = new Uint8Array(host.buffer, host.byteOffset, host.byteLength);
    header[name] = { dtype: FROM_DTYPE[dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const pad = (8 - (jsonBytes % 8)) % 8; // keep the data section 8-byte aligned
  const head = Buffer.alloc(8 + jsonBytes + pad, ' ');
  head.writeBigUInt64LE(BigInt(jsonBytes + pad), 0);
  head.write(json, 8, 'utf8');
  return [head, ...chunks];
}

/**
 * serializeSafetensorsChunks as one Buffer, for small in-memory use (tests, fixtures). Files are
 * written from the chunks; content over one Node buffer's limit is a SafetensorsError.
 */
export function serializeSafetensors(tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const chunks = serializeSafetensorsChunks(tensors, metadata);
  const total = chunksBytes(chunks);
  if (total > MAX_BUFFER_BYTES) throw new SafetensorsError(`${total} bytes of safetensors do not fit one Node buffer (${MAX_BUFFER_BYTES} bytes); write them with saveSafetensors`);
  return Buffer.concat(chunks, total);
}

/** Writes named tensors to a .safetensors file (atomically: a temp file, fsync, then rename), chunk by chunk. */
export function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const chunks = serializeSafetensorsChunks(tensors, metadata);
  fs.rmSync(tmp, { force: true });
  try {
    writeChunksFile(tmp, chunks);
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
