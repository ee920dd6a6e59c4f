// Process-level runtime controls: intra-op threads, CUDA availability and memory, build info.
import { native } from '../native';
import { ArgumentError } from '../native/errors';

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

/** CUDA queries (all safe to call on a CPU-only build: they report no devices). */
export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  /** Waits for all kernels on the device. // SYNC */
  synchronize: (device = 0): void => native.cudaSynchronize(device),
  /** Bytes allocated/reserved by the caching allocator, current and peak. */
  memoryStats: (device = 0) => native.cudaMemoryStats(device),
  resetPeakMemoryStats: (device = 0): void => native.cudaResetPeakStats(device),
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
 * every step. OLMO_TS_CPU_CACHE_MB sets its limit (default 1/8 of RAM up to 8 GB, 0 disables).
 */
export const cpuCache = {
  stats: () => native.cpuCacheStats(),
  /** Returns every cached block to the OS. */
  trim: (): void => native.cpuCacheTrim(),
};
