// The only module that loads the compiled addon (build/Release/olmo_native.node) and its typed
// interface. Everything else imports `native` from here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorClasses } from './errors';
import { prepareNativeEnvironment } from './environment';

/** Tensor ids are indexes into the addon's handle table; -1 means "none". */
export type Id = number;

/** What the caching CPU allocator (native/cpu_cache.cc) reports; bytes are of blocks >= 1 MB. */
export interface CpuCacheStats {
  /** Whether it is installed (OLMO_TS_CPU_CACHE_MB is not 0). */
  enabled: boolean;
  /** Most bytes it keeps idle for reuse. */
  limitBytes: number;
  /** Bytes held idle now (freed by tensors, not yet returned to the OS). */
  cachedBytes: number;
  /** Bytes of large blocks in use by tensors now. */
  liveBytes: number;
  /** Highest liveBytes since start or resetPeak(). */
  peakLiveBytes: number;
  /** Highest liveBytes + cachedBytes since start or resetPeak(): the most it made the process hold. */
  peakTotalBytes: number;
  hits: number;
  misses: number;
  /** Bytes given back to the OS: over the limit, under memory pressure, or trimmed. */
  releasedBytes: number;
  /** Times it emptied itself because the machine was short of memory. */
  pressureTrims: number;
  /** Available memory below which it empties itself before taking a new block. */
  minFreeBytes: number;
  /** The machine's memory (the cgroup limit when smaller): what the default limit derives from. */
  machineBytes: number;
}

/** The raw addon surface. Argument conventions: dtype and device are integer codes
 *  (src/tensor/dtype.ts), optional tensors are -1, dims lists are number[]. */
export interface NativeBinding {
  dispose(id: Id): void;
  liveCount(): number;
  mallocTrim(): boolean;
  setErrorClasses(classes: typeof errorClasses): void;
  // creation and host transfer
  fromArray(data: ArrayBufferView, shape: number[], dtype: number, device: number): Id;
  toArray(id: Id): Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
  item(id: Id): number | boolean;
  empty(shape: number[], dtype: number, device: number): Id;
  zeros(shape: number[], dtype: number, device: number): Id;
  ones(shape: number[], dtype: number, device: number): Id;
  full(shape: number[], value: number | boolean, dtype: number, device: number): Id;
  arange(start: number, end: number, step: number, dtype: number, device: number): Id;
  randn(shape: number[], dtype: number, device: number, gen: number): Id;
  rand(shape: number[], dtype: number, device: number, gen: number): Id;
  randint(low: number, high: number, shape: number[], dtype: number, device: number, gen: number): Id;
  randperm(n: number, dtype: number, device: number, gen: number): Id;
  uniform_(id: Id, a: number, b: number, gen: number): void;
  normal_(id: Id, mean: number, std: number, gen: number): void;
  fill_(id: Id, value: number | boolean): void;
  zero_(id: Id): void;
  copy_(dst: Id, src: Id): void;
  // queries
  shape(id: Id): number[];
  strides(id: Id): number[];
  dtype(id: Id): number;
  device(id: Id): number;
  numel(id: Id): number;
  ndim(id: Id): number;
  isContiguous(id: Id): boolean;
  sharesStorage(a: Id, b: Id): boolean;
  // conversion
  to(id: Id, dtype: number, device: number, copy: boolean): Id;
  contiguous(id: Id): Id;
  clone(id: Id): Id;
  detach(id: Id): Id;
  // views and shape
  reshape(id: Id, shape: number[]): Id;
  view(id: Id, shape: number[]): Id;
  transpose(id: Id, d0: number, d1: number): Id;
  permute(id: Id, dims: number[]): Id;
  narrow(id: Id, dim: number, start: number, length: number): Id;
  slice(id: Id, dim: number, start: number, end: number, step: number): Id;
  select(id: Id, dim: number, index: number): Id;
  chunk(id: Id, chunks: number, dim: number): Id[];
  split(id: Id, sizeOrSizes: number | number[], dim: number): Id[];
  cat(ids: Id[], dim: number): Id;
  stack(ids: Id[], dim: number): Id;
  squeeze(id: Id, dim?: number | null): Id;
  unsqueeze(id: Id, dim: number): Id;
  expand(id: Id, shape: number[]): Id;
  flatten(id: Id, start: number, end: number): Id;
  repeat(id: Id, sizes: number[]): Id;
  repeatInterleave(id: Id, repeats: number, dim: number): Id;
  flip(id: Id, dims: number[]): Id;
  indexSelect(id: Id, dim: number, index: Id): Id;
  gather(id: Id, dim: number, index: Id): Id;
  scatter(id: Id, dim: number, index: Id, src: Id): Id;
  maskedFill(id: Id, mask: Id, value: number | boolean): Id;
  maskedFill_(id: Id, mask: Id, value: number | boolean): void;
  where(cond: Id, a: Id, b: Id): Id;
  tril(id: Id, k: number): Id;
  triu(id: Id, k: number): Id;
  sort(id: Id, dim: number, descending: boolean): [Id, Id];
  topk(id: Id, k: number, dim: number): [Id, Id];
  multinomial(id: Id, n: number, replacement: boolean, gen: number): Id;
  cumsum(id: Id, dim: number): Id;
  // elementwise
  binary(op: number, a: Id, b: Id): Id;
  binaryScalar(op: number, a: Id, b: number | boolean): Id;
  binaryInplace(op: number, a: Id, b: Id | number, bIsScalar: boolean, alpha: number): void;
  unary(op: number, a: Id): Id;
  unaryInplace(op: number, a: Id): void;
  clamp(id: Id, min: number | null, max: number | null): Id;
  clamp_(id: Id, min: number | null, max: number | null): void;
  // reductions
  reduce(op: number, id: Id, dims: number[] | null, keepdim: boolean, dtype: number): Id;
  maxDim(id: Id, dim: number, keepdim: boolean): [Id, Id];
  minDim(id: Id, dim: number, keepdim: boolean): [Id, Id];
  argmax(id: Id, dim: number | null, keepdim: boolean): Id;
  norm(id: Id, p: number, dims: number[] | null, keepdim: boolean): Id;
  // nn
  matmul(a: Id, b: Id): Id;
  linear(x: Id, w: Id, b: Id): Id;
  softmax(id: Id, dim: number, dtype: number): Id;
  logSoftmax(id: Id, dim: number, dtype: number): Id;
  logsumexp(id: Id, dims: number | number[], keepdim: boolean): Id;
  layerNorm(x: Id, shape: number[], w: Id, b: Id, eps: number): Id;
  rmsNorm(x: Id, w: Id, b: Id, eps: number): Id;
  embedding(weight: Id, ids: Id): Id;
  crossEntropy(logits: Id, target: Id, ignoreIndex: number, reduction: number, labelSmoothing: number): Id;
  /** Fused LM head + loss (native/fused_head.cc): [loss, ce, z], 0-dim float32 each. */
  headLoss(hidden: Id, weight: Id, bias: Id, targets: Id, ignoreIndex: number, ceWeight: number, zWeight: number, scale: number, chunkRows: number, cpuKernel: boolean): [Id, Id, Id];
  dropout(x: Id, p: number, train: boolean): Id;
  sdpa(q: Id, k: Id, v: Id, mask: Id, dropoutP: number, isCausal: boolean): Id;
  // autograd
  setRequiresGrad(id: Id, on: boolean): void;
  requiresGrad(id: Id): boolean;
  isLeaf(id: Id): boolean;
  retainGrad(id: Id): void;
  backward(id: Id, grad: Id, retainGraph: boolean): void;
  grad(id: Id): Id;
  setGrad(id: Id, grad: Id): void;
  zeroGrad(ids: Id[], setToNone: boolean): void;
  gradFnName(id: Id): string | null;
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  autocastEnter(cuda: boolean, dtype: number, enabled: boolean): [boolean, number];
  autocastExit(cuda: boolean, prevEnabled: boolean, prevDtype: number): void;
  autocastState(cuda: boolean): [boolean, number];
  // random
  manualSeed(seed: number | bigint): void;
  getRngState(device: number): Uint8Array;
  setRngState(device: number, state: Uint8Array): void;
  generatorNew(seed: number | bigint): number;
  generatorFree(id: number): void;
  generatorGetState(id: number): Uint8Array;
  generatorSetState(id: number, state: Uint8Array): void;
  // optimizers (native/optim.cc)
  adamwStep(params: Id[], expAvgs: Id[], expAvgSqs: Id[], steps: Float64Array, lrs: Float64Array, wds: Float64Array, beta1: number, beta2: number, eps: number): number;
  lionStep(params: Id[], expAvgs: Id[], lrs: Float64Array, wds: Float64Array, beta1: number, beta2: number): [number, number, number];
  gradNorms(params: Id[]): Float64Array;
  scaleGrads(params: Id[], coefs: Float64Array): void;
  firstNonFinite(ids: Id[]): number;
  // activation checkpointing (native/checkpoint_fn.cc)
  ckptShare(ids: Id[]): Id[];
  /** [mailbox handle, cut point ids...] */
  ckptCut(ids: Id[]): number[];
  ckptBoxHasGrad(box: number): boolean;
  ckptBoxRelease(box: number): void;
  ckptCapture(cudaDevices: number[]): number;
  ckptRelease(handle: number): void;
  ckptEnter(handle: number): void;
  ckptExit(): void;
  ckptBackward(outputs: Id[], box: number): number;
  ckptDepth(): number;
  // CPU caching allocator (native/cpu_cache.cc)
  blasNumThreads(): number;
  cpuCacheStats(): CpuCacheStats;
  cpuCacheTrim(): void;
  cpuCacheResetPeak(): void;
  // c10d: stores, process groups, collectives (native/dist.cc). Collectives return work handles;
  // distWait settles once they are done (off the JS thread).
  distTcpStore(host: string, port: number, isServer: boolean, worldSize: number, timeoutMs: number): Promise<number>;
  distFileStore(path: string, worldSize: number): number;
  distStoreSet(store: number, key: string, value: Uint8Array): void;
  distStoreGet(store: number, key: string, timeoutMs: number): Promise<Uint8Array>;
  distStoreCheck(store: number, key: string): boolean;
  distStoreClose(store: number): void;
  distNewGroup(store: number, prefix: string, rank: number, size: number, backend: 'gloo' | 'nccl', timeoutMs: number, gloo?: { hostname?: string; ifname?: string }): Promise<number>;
  distCloseGroup(group: number): void;
  distHasNccl(): boolean;
  distAllReduce(group: number, tensors: Id[], op: number): number;
  distBroadcast(group: number, tensors: Id[], root: number): number;
  distAllGather(group: number, out: Id, input: Id): number;
  distReduceScatter(group: number, out: Id, input: Id, op: number): number;
  distBarrier(group: number): number;
  distWait(works: number[]): Promise<void>;
  distIsCompleted(work: number): boolean;
  distReducerNew(group: number, params: Id[], bucketBytes: number, overlap: boolean): number;
  distReducerArm(reducer: number): void;
  distReducerReduce(reducer: number): number;
  distReducerInfo(reducer: number): { buckets: number; bytes: number };
  distReducerClose(reducer: number): void;
  // FSDP flat-parameter units (native/fsdp.cc)
  fsdpUnitNew(shardGroup: number, replicateGroup: number, params: Id[], o: { name: string; strategy: number; root: boolean; paramDtype: string; reduceDtype: string; world: number }): { unit: number; segments: Id[]; layout: { padded: number; shard: number } };
  fsdpPreForward(unit: number): void;
  fsdpPrefetch(unit: number): void;
  fsdpPostForward(unit: number, outputs: Id[], gradEnabled: boolean): void;
  fsdpSetBackwardNext(unit: number, next: number): void;
  fsdpFinishBackward(units: number[]): number;
  fsdpZeroGrad(units: number[]): void;
  fsdpGatherFlat(unit: number, pieces: Id[]): { work: number; tensors: Id[] };
  fsdpShardOf(unit: number, fulls: Id[]): Id[];
  fsdpStats(): { fullBytesLive: number; fullBytesPeak: number; gathers: number; reductions: number };
  fsdpResetPeak(): void;
  fsdpUnitInfo(unit: number): { name: string; strategy: string; padded: number; shard: number; gathered: boolean; gradShard: boolean };
  fsdpUnitClose(unit: number): void;
  // runtime
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(device: number): void;
  cudaMemoryStats(device: number): { allocated: number; reserved: number; peakAllocated: number; peakReserved: number };
  cudaResetPeakStats(device: number): void;
  cudaEmptyCache(): void;
  cudaMemInfo(device: number): { free: number; total: number; name: string };
  cudaSetDevice(device: number): void;
  buildInfo(): { torchVersion: string; cudaBuild: boolean; parallel: string };
}

function findAddon(): string {
  const candidates = [
    process.env.OLMO_TS_NATIVE,
    path.resolve(__dirname, '..', '..', 'build', 'Release', 'olmo_native.node'),
    path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'olmo_native.node'),
  ].filter((p): p is string => !!p);
  for (const p of candidates) if (fs.existsSync(p)) return p;
  throw new Error(
    `olmo-ts: the native addon is not built (looked for ${candidates.join(', ')}). ` +
      'Run `npm run build:native` (or `bash scripts/setup.sh` on a fresh Debian machine).',
  );
}

function load(): NativeBinding {
  const file = findAddon();
  prepareNativeEnvironment();
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const binding = require(file) as NativeBinding;
  binding.setErrorClasses(errorClasses);
  return binding;
}

/** The loaded addon. */
export const native: NativeBinding = load();
