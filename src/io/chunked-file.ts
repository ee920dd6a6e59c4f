// Files of any size as lists of in-memory chunks: writing them in order (fsynced), SHA-256 over
// chunks or over a file streamed from disk, and positioned reads into fresh buffers. Node 20 caps
// one Buffer at 4 GiB and one readFile at 2 GiB, so no file content here is ever one buffer: every
// read, write and hash update touches at most ioChunkBytes() bytes at a time. Free of tensors, so
// the checkpoint writer thread can use it.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';

/** A file's content: its bytes are the chunks in order (never concatenated). */
export type FileChunks = readonly Uint8Array[];

/** Total bytes of a file's chunks. */
export function chunksBytes(chunks: FileChunks): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}

const DEFAULT_CHUNK = 64 * 1024 * 1024;

function chunkFromEnv(): number {
  const v = process.env.OLMO_TS_IO_CHUNK_BYTES;
  if (v === undefined || v === '') return DEFAULT_CHUNK;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1024 * 1024 * 1024) {
    throw new RangeError(`OLMO_TS_IO_CHUNK_BYTES is ${JSON.stringify(v)}, expected an integer number of bytes in [1, 1073741824]`);
  }
  return n;
}
let chunkLimit = chunkFromEnv();

/**
 * The most bytes one read, write or hash update touches (64 MiB by default). A test knob: tests
 * lower it (setIoChunkBytes, or the env var OLMO_TS_IO_CHUNK_BYTES) to a few bytes so that
 * multi-piece reads, writes and hashes run on small tensors.
 */
export function ioChunkBytes(): number {
  return chunkLimit;
}
/** Sets ioChunkBytes() (tests); returns the previous value so it can be restored. */
export function setIoChunkBytes(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1024 * 1024 * 1024) throw new RangeError(`io chunk bytes must be an integer in [1, 1073741824], got ${n}`);
  const old = chunkLimit;
  chunkLimit = n;
  return old;
}

/** The largest single buffer (one tensor's bytes) Node can hold here. */
export const MAX_BUFFER_BYTES: number = bufferConstants.MAX_LENGTH;

/**
 * What the I/O here did since resetIoStats(), so tests can see that large content went through
 * in pieces no larger than ioChunkBytes().
 */
export const ioStats = { writes: 0, largestWrite: 0, reads: 0, largestRead: 0, hashUpdates: 0, largestHashUpdate: 0 };
export function resetIoStats(): void {
  for (const k of Object.keys(ioStats) as (keyof typeof ioStats)[]) ioStats[k] = 0;
}

/** Calls fn on consecutive slices of `data`, each at most ioChunkBytes() long. */
function forSlices(data: Uint8Array, fn: (slice: Uint8Array) => void): void {
  const step = chunkLimit;
  for (let off = 0; off < data.byteLength; off += step) fn(data.subarray(off, Math.min(data.byteLength, off + step)));
}

/** Writes the chunks to an open file descriptor, in order, in pieces of at most ioChunkBytes(). */
export function writeChunksToFd(fd: number, chunks: FileChunks): number {
  let total = 0;
  for (const c of chunks) {
    forSlices(c, (s) => {
      ioStats.writes++;
      ioStats.largestWrite = Math.max(ioStats.largestWrite, s.byteLength);
      for (let off = 0; off < s.byteLength; ) off += fs.writeSync(fd, s, off, s.byteLength - off);
    });
    total += c.byteLength;
  }
  return total;
}

/** Size and SHA-256 (hex) of a file's chunks, hashed piece by piece. */
export function describeChunks(chunks: FileChunks): { bytes: number; sha256: string } {
  const h = createHash('sha256');
  let bytes = 0;
  for (const c of chunks) {
    forSlices(c, (s) => {
      ioStats.hashUpdates++;
      ioStats.largestHashUpdate = Math.max(ioStats.largestHashUpdate, s.byteLength);
      h.update(s);
    });
    bytes += c.byteLength;
  }
  return { bytes, sha256: h.digest('hex') };
}

/**
 * Reads `length` bytes at `position` of an open file into a fresh buffer (its own ArrayBuffer,
 * so typed arrays of any element size can view it), in reads of at most ioChunkBytes().
 * Throws a RangeError when `length` exceeds MAX_BUFFER_BYTES, and an Error when the file ends first.
 */
export function readAt(fd: number, position: number, length: number, what: string): Uint8Array {
  if (length > MAX_BUFFER_BYTES) throw new RangeError(`${what}: ${length} bytes do not fit one buffer (Node's limit is ${MAX_BUFFER_BYTES} bytes)`);
  const out = new Uint8Array(new ArrayBuffer(length));
  const step = chunkLimit;
  for (let off = 0; off < length; ) {
    const want = Math.min(step, length - off);
    ioStats.reads++;
    ioStats.largestRead = Math.max(ioStats.largestRead, want);
    const got = fs.readSync(fd, out, off, want, position + off);
    if (got === 0) throw new Error(`${what}: the file ends at byte ${position + off}, before the ${length} bytes at ${position}`);
    off += got;
  }
  return out;
}

/** Size and SHA-256 (hex) of a file on disk, streamed in reads of at most ioChunkBytes(). */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const h = createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(chunkLimit);
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, bytes);
      if (bytesRead === 0) break;
      ioStats.reads++;
      ioStats.largestRead = Math.max(ioStats.largestRead, bytesRead);
      ioStats.hashUpdates++;
      ioStats.largestHashUpdate = Math.max(ioStats.largestHashUpdate, bytesRead);
      h.update(buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    return { bytes, sha256: h.digest('hex') };
  } finally {
    await fh.close();
  }
}

/**
 * Creates `file` (never overwrites), writes the chunks in order, fsyncs and closes. On failure the
 * partial file is left for the caller (which writes into a temporary folder) to remove.
 */
export function writeChunksFile(file: string, chunks: FileChunks): void {
  const fd = fs.openSync(file, 'wx');
  try {
    writeChunksToFd(fd, chunks);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
