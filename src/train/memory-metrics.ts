// Memory metrics of a training process: its peak resident memory and what the caching CPU
// allocator holds idle (the memory it trades for fewer page faults), logged with each step.
import { cpuCache } from '../tensor/runtime';
import { METRIC, type Metrics } from './logging';

/** `System/Peak RSS (MB)` and, when the caching allocator is on, `System/CPU Cache (MB)`. */
export function memoryMetrics(): Metrics {
  const m: Metrics = { [METRIC.peakRssMb]: process.resourceUsage().maxRSS / 1024 };
  const c = cpuCache.stats();
  if (c.enabled) m[METRIC.cpuCacheMb] = c.cachedBytes / 2 ** 20;
  return m;
}
