// Two speed settings a training process reports: what the caching CPU allocator holds idle (the
// memory it trades for fewer page faults), logged with the system metrics, and start-up banner
// lines for the caching allocator and the fused LM head + loss. (The process's peak memory is
// memory-stats.ts's System/Peak CPU Memory.)
import type { TrainConfig } from '../config/train';
import { cpuCache } from '../tensor/runtime';
import { headChunkRows } from '../tensor/functional';
import { METRIC, type Metrics } from './logging';
import { usesFusedLoss } from './loss';

/** `System/CPU Cache (MB)` when the caching allocator is on (else nothing). */
export function cpuCacheMetrics(): Metrics {
  const c = cpuCache.stats();
  return c.enabled ? { [METRIC.cpuCacheMb]: c.cachedBytes / 2 ** 20 } : {};
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 10 * 2 ** 30 ? 1 : 0)} GB`;

/** Banner lines: how the LM head + loss runs, and what the caching CPU allocator may hold. */
export function headAndCacheBannerLines(cfg: TrainConfig): [string, string][] {
  const c = cpuCache.stats();
  const vocab = cfg.model.embedding_size ?? cfg.model.vocab_size;
  const tokens = cfg.device_train_microbatch_size * cfg.model.max_sequence_length;
  const head = usesFusedLoss(cfg)
    ? `fused, ${headChunkRows(vocab, tokens)}-token chunks of a ${tokens}-token micro-batch (no float32 logits)`
    : 'plain: full logits, then the loss (fused_loss: false)';
  const cache = c.enabled
    ? `holds up to ${gb(c.limitBytes)} of freed blocks for reuse (machine ${gb(c.machineBytes)}; OLMO_TS_CPU_CACHE_MB), releases them below ${gb(c.minFreeBytes)} free`
    : 'off (OLMO_TS_CPU_CACHE_MB=0)';
  return [['LM head + loss', head], ['CPU cache', cache]];
}
