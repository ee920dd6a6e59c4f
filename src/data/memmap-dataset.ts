// OLMo's MemMapDataset (olmo/data/memmap_dataset.py): fixed-length instances of `chunkSize` tokens
// over a list of headerless token files, each file truncated to whole instances, with optional
// label-mask files and per-file metadata. Reads are positioned reads of one instance; files are
// never loaded whole.
import * as fs from 'node:fs';
import { DataError } from './errors';
import type { ManifestEntry } from './manifest';
import { IntDType, itemSize } from './npy';

/** Token file dtypes OLMo's `memmap_dtype` allows. */
export type MemmapDType = 'uint8' | 'uint16' | 'uint32' | 'uint64';
export const MEMMAP_DTYPES: readonly MemmapDType[] = ['uint8', 'uint16', 'uint32', 'uint64'];

/** Options of a MemMapDataset (OLMo's constructor arguments). */
export interface MemMapDatasetOptions {
  /** Token files, concatenated in this order. */
  paths: string[];
  /** Tokens per instance (`model.max_sequence_length`). */
  chunkSize: number;
  /** Element type of the token files (default uint16). */
  memmapDtype?: MemmapDType;
  /** One metadata object per path, or one shared by all (OLMo: {path} or {label}). */
  metadata?: Record<string, unknown>[] | Record<string, unknown>;
  /** Attach the file's metadata to each instance (default true). */
  includeInstanceMetadata?: boolean;
  /** Add an attention mask that is 0 at pad tokens. */
  generateAttentionMask?: boolean;
  /** Required with generateAttentionMask. */
  padTokenId?: number;
  /** np.bool_ files (1 byte per token), one per path, the same length as their token file. */
  labelMaskPaths?: string[];
  /** The prepare-data manifest entry of each path (null for raw files), when known. */
  manifests?: (ManifestEntry | null)[];
}

/** One instance, as OLMo's `__getitem__` returns it (plus `index`). */
export interface Instance {
  index: number;
  /** (chunkSize,) token ids. */
  inputIds: Int32Array;
  /** (chunkSize,) 1/0, present with label mask files. */
  labelMask?: Uint8Array;
  /** (chunkSize,) 1 except 0 at pad tokens, present with generateAttentionMask. */
  attentionMask?: Uint8Array;
  metadata?: Record<string, unknown>;
}

/** Where an instance comes from. */
export interface InstanceSource {
  /** Position of its file in `paths`. */
  fileIndex: number;
  path: string;
  /** Instance index within its file. */
  localIndex: number;
  /** Token offsets [start, end) within its file. */
  tokenStart: number;
  tokenEnd: number;
}

function dtypeBytes(d: MemmapDType): number {
  return itemSize(d as IntDType);
}

/** A dataset of fixed-length token instances over memmap files (see OLMo's MemMapDataset). */
export class MemMapDataset {
  readonly paths: readonly string[];
  readonly chunkSize: number;
  readonly dtype: MemmapDType;
  private readonly metadata: Record<string, unknown>[];
  private readonly opts: MemMapDatasetOptions;
  private offsetsCache: Array<[number, number]> | null = null;
  private readonly fds = new Map<string, number>();
  private closed = false;

  constructor(o: MemMapDatasetOptions) {
    if (!o.paths || o.paths.length === 0) throw new DataError('at least one path is required', { key: 'data.paths' });
    if (!Number.isInteger(o.chunkSize) || o.chunkSize < 1) throw new DataError(`expected a positive integer, got ${o.chunkSize}`, { key: 'model.max_sequence_length' });
    const dtype = o.memmapDtype ?? 'uint16';
    if (!MEMMAP_DTYPES.includes(dtype)) throw new DataError(`expected one of ${MEMMAP_DTYPES.join(', ')}, got ${JSON.stringify(dtype)}`, { key: 'data.memmap_dtype' });
    if (o.generateAttentionMask && (o.padTokenId === undefined || o.padTokenId === null)) {
      throw new DataError("'pad_token_id' is required for 'generate_attention_mask'", { key: 'model.pad_token_id' });
    }
    if (o.labelMaskPaths && o.labelMaskPaths.length !== o.paths.length) {
      throw new DataError(`there must be as many label_mask_paths (${o.labelMaskPaths.length}) as paths (${o.paths.length})`, { key: 'data.label_mask_paths' });
    }
    if (Array.isArray(o.metadata)) {
      if (o.metadata.length !== o.paths.length) throw new DataError(`'metadata' has ${o.metadata.length} entries for ${o.paths.length} paths`, { key: 'metadata' });
      this.metadata = o.metadata;
    } else {
      const shared = (o.metadata ?? {}) as Record<string, unknown>;
      this.metadata = o.paths.map(() => shared);
    }
    this.paths = [...o.paths];
    this.chunkSize = o.chunkSize;
    this.dtype = dtype;
    this.opts = o;
  }

  private fileInstances(p: string, bytesPerToken: number, key: string): number {
    let size: number;
    try {
      size = fs.statSync(p).size;
    } catch (e) {
      throw new DataError(`cannot read token file: ${(e as Error).message}`, { file: p, key, cause: e });
    }
    return Math.floor(size / (bytesPerToken * this.chunkSize));
  }

  /** [start, end) instance ranges of each file in the concatenation (computed once). */
  get offsets(): ReadonlyArray<readonly [number, number]> {
    if (!this.offsetsCache) {
      const out: Array<[number, number]> = [];
      let start = 0;
      this.paths.forEach((p, i) => {
        const n = this.fileInstances(p, dtypeBytes(this.dtype), `data.paths[${i}]`);
        const mask = this.opts.labelMaskPaths?.[i];
        if (mask !== undefined) {
          const m = this.fileInstances(mask, 1, `data.label_mask_paths[${i}]`);
          if (m !== n) throw new DataError(`masking file '${mask}' should be the same size as '${p}' (${m} vs ${n} instances)`, { key: `data.label_mask_paths[${i}]` });
        }
        out.push([start, start + n]);
        start += n;
      });
      this.offsetsCache = out;
    }
    return this.offsetsCache;
  }

  /** Number of instances. */
  get length(): number {
    const o = this.offsets;
    return o.length ? o[o.length - 1]![1] : 0;
  }

  /** Which file and token range instance `index` (negative counts from the end) comes from. */
  source(index: number): InstanceSource {
    const n = this.length;
    const pos = index < 0 ? n + index : index;
    if (!Number.isInteger(pos) || pos < 0 || pos >= n) throw new RangeError(`${index} is out of bounds for dataset of size ${n}`);
    const offs = this.offsets;
    let lo = 0, hi = offs.length - 1;
    // binary search for the file whose range holds pos (files with no instances have empty ranges)
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offs[mid]![1] <= pos) lo = mid + 1;
      else hi = mid;
    }
    const localIndex = pos - offs[lo]![0];
    return { fileIndex: lo, path: this.paths[lo]!, localIndex, tokenStart: localIndex * this.chunkSize, tokenEnd: (localIndex + 1) * this.chunkSize };
  }

  private fd(p: string): number {
    if (this.closed) throw new Error('MemMapDataset is closed');
    let fd = this.fds.get(p);
    if (fd === undefined) {
      try {
        fd = fs.openSync(p, 'r');
      } catch (e) {
        throw new DataError(`cannot open: ${(e as Error).message}`, { file: p, cause: e });
      }
      this.fds.set(p, fd);
    }
    return fd;
  }

  private readRange(p: string, position: number, bytes: number): Uint8Array {
    const buf = new Uint8Array(bytes); // own, aligned buffer: typed views need no copy
    let got = 0;
    while (got < bytes) {
      const n = fs.readSync(this.fd(p), buf, got, bytes - got, position + got);
      if (n === 0) throw new DataError(`short read at byte ${position + got} (file changed since the dataset was opened?)`, { file: p });
      got += n;
    }
    return buf;
  }

  private readRangeAsync(p: string, position: number, bytes: number): Promise<Uint8Array> {
    const fd = this.fd(p);
    const buf = new Uint8Array(bytes);
    return new Promise((resolve, reject) => {
      const step = (got: number): void => {
        // fs.read runs on libuv's thread pool: the JS thread is free meanwhile.
        fs.read(fd, buf, got, bytes - got, position + got, (err, n) => {
          if (err) reject(new DataError(`read failed: ${err.message}`, { file: p, cause: err }));
          else if (n === 0) reject(new DataError(`short read at byte ${position + got} (file changed since the dataset was opened?)`, { file: p }));
          else if (got + n < bytes) step(got + n);
          else resolve(buf);
        });
      };
      step(0);
    });
  }

  /** Token ids of instance `index` as int32. */
  readTokens(index: number, out?: Int32Array): Int32Array {
    const s = this.source(index);
    const item = dtypeBytes(this.dtype);
    return this.decode(this.readRange(s.path, s.tokenStart * item, this.chunkSize * item), out);
  }

  private decode(buf: Uint8Array, out?: Int32Array): Int32Array {
    const ids = out ?? new Int32Array(this.chunkSize);
    const T = this.chunkSize;
    // Token files are little-endian, as is every platform Node supports in practice.
    switch (this.dtype) {
      case 'uint8': ids.set(buf); break;
      case 'uint16': ids.set(new Uint16Array(buf.buffer, 0, T)); break;
      case 'uint32': {
        const v = new Uint32Array(buf.buffer, 0, T);
        for (let i = 0; i < T; i++) ids[i] = v[i]!; // ids above 2^31 would wrap; no vocabulary is that large
        break;
      }
      case 'uint64': {
        const v = new BigUint64Array(buf.buffer, 0, T);
        for (let i = 0; i < T; i++) ids[i] = Number(v[i]!);
        break;
      }
    }
    return ids;
  }

  /** OLMo's `dataset[index]`: input ids, label mask, attention mask and metadata as configured. */
  get(index: number): Instance {
    const s = this.source(index);
    const item = dtypeBytes(this.dtype);
    const mask = this.opts.labelMaskPaths?.[s.fileIndex];
    const tokens = this.readRange(s.path, s.tokenStart * item, this.chunkSize * item);
    return this.assemble(s, tokens, mask === undefined ? undefined : this.readRange(mask, s.tokenStart, this.chunkSize));
  }

  /** `get` through asynchronous positioned reads, off the JS thread. */
  async getAsync(index: number): Promise<Instance> {
    const s = this.source(index);
    const item = dtypeBytes(this.dtype);
    const mask = this.opts.labelMaskPaths?.[s.fileIndex];
    const [tokens, maskBytes] = await Promise.all([
      this.readRangeAsync(s.path, s.tokenStart * item, this.chunkSize * item),
      mask === undefined ? undefined : this.readRangeAsync(mask, s.tokenStart, this.chunkSize),
    ]);
    return this.assemble(s, tokens, maskBytes);
  }

  private assemble(s: InstanceSource, tokens: Uint8Array, maskBytes: Uint8Array | undefined): Instance {
    const inputIds = this.decode(tokens);
    const out: Instance = { index: this.offsets[s.fileIndex]![0] + s.localIndex, inputIds };
    if (maskBytes) out.labelMask = Uint8Array.from(maskBytes, (v) => (v ? 1 : 0));
    if (this.opts.includeInstanceMetadata ?? true) out.metadata = structuredClone(this.metadata[s.fileIndex]!);
    if (this.opts.generateAttentionMask) {
      const pad = this.opts.padTokenId!;
      out.attentionMask = Uint8Array.from(inputIds, (v) => (v === pad ? 0 : 1));
    }
    return out;
  }

  /** The options this dataset was built from (to rebuild it in a worker thread). */
  get options(): MemMapDatasetOptions {
    return { ...this.opts, paths: [...this.paths], memmapDtype: this.dtype };
  }

  /** Closes the open files; idempotent. */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    this.closed = true;
  }
}
