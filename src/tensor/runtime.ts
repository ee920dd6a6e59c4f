// Process-level runtime controls: intra-op threads, CUDA availability and memory, build info.
import { CpuCacheStats, native } from '../native';
import { ArgumentError } from '../native/errors';
import { dtypeCode } from './dtype';

/**
 * Sets the number of threads libtorch uses inside one op (torch.set_num_threads), and the size of
 * OpenBLAS's own thread pool when OpenBLAS is the BLAS (libtorch leaves that one at every core).
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError(`thread count must be a positive integer, got ${n}`);
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
/** OpenBLAS's thread count, or -1 when the BLAS libtorch uses is not OpenBLAS. */
export function blasNumThreads(): number {
  return native.blasNumThreads();
}

/** Which libtorch the addon was built against, and whether that build has CUDA. */
export function buildInfo(): { torchVersion: string; cudaBuild: boolean; parallel: string } {
  return native.buildInfo();
}

/**
 * The caching allocator's statistics exist once CUDA is initialised (libtorch does that lazily, at
 * the first CUDA tensor): before that they throw "Invalid device argument: did you call init?".
 */
const initialised = new Set<number>();
function initDevice(device: number): void {
  if (initialised.has(device) || !native.cudaIsAvailable()) return;
  native.dispose(native.zeros([1], dtypeCode('float32'), device));
  initialised.add(device);
}

/** CUDA queries (all safe to call on a CPU-only build: they report no devices). */
export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  /** Waits for all kernels on the device. // SYNC */
  synchronize: (device = 0): void => native.cudaSynchronize(device),
  /** Bytes allocated/reserved by the caching allocator, current and peak (zeros before any CUDA work). */
  memoryStats: (device = 0) => { initDevice(device); return native.cudaMemoryStats(device); },
  resetPeakMemoryStats: (device = 0): void => { initDevice(device); native.cudaResetPeakStats(device); },
  emptyCache: (): void => native.cudaEmptyCache(),
  /** The device's free and total memory in bytes, as the driver reports them, and its name. */
  memInfo: (device = 0): { free: number; total: number; name: string } => native.cudaMemInfo(device),
  /** The device's name ("NVIDIA H100 80GB HBM3"). */
  deviceName: (device = 0): string => native.cudaMemInfo(device).name,
  /** Makes `device` this process's current CUDA device (one rank per device, before any CUDA work). */
  setDevice: (device: number): void => native.cudaSetDevice(device),
};

/**
 * The caching allocator for large CPU blocks (native/cpu_cache.cc): freed blocks of 1 MB and more
 * are reused instead of returned to the OS, which saves the page faults of re-mapping activations
 * every step. OLMO_TS_CPU_CACHE_MB sets its limit on idle blocks (default 1/8 of the machine's memory
 * or cgroup limit, 256 MB to 8 GB; 0 disables). When a new block is needed and
 * less than 1/16 of that memory is available (OLMO_TS_CPU_CACHE_MIN_FREE_MB), it empties itself first.
 */
export const cpuCache = {
  stats: (): CpuCacheStats => native.cpuCacheStats(),
  /** Returns every cached block to the OS. */
  trim: (): void => native.cpuCacheTrim(),
  /** Restarts the peak counters (peakLiveBytes, peakTotalBytes) from the current values. */
  resetPeak: (): void => native.cpuCacheResetPeak(),
};
