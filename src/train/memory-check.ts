// The trainer's start-up memory check: the memory this process may use (cgroup limit or RAM),
// the estimate of memory-plan.ts against it (refuse with the numbers when the run would be killed,
// warn when it is close), and the banner's memory lines.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ConfigError } from '../config/errors';
import type { TrainConfig } from '../config/train';
import type { Device } from '../tensor/dtype';
import { cuda } from '../tensor/runtime';
import { deviceIndex } from './device';
import { MemoryPlan, formatBytes, planTrainMemory } from './memory-plan';

/** Memory this process can use, and where the number comes from. */
export interface AvailableMemory {
  bytes: number;
  /** e.g. "cgroup memory.max 24.0 GiB, 3.1 GiB in use" or "MemAvailable". */
  source: string;
}

function readNumber(file: string): number | null {
  try {
    const s = fs.readFileSync(file, 'utf8').trim();
    if (s === 'max' || s === '') return null;
    const n = Number(s);
    return Number.isFinite(n) && n > 0 && n < 2 ** 62 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Memory available to this process now: the smaller of what its cgroup still allows (limit minus
 * usage, cgroup v2 or v1) and the kernel's MemAvailable (free RAM plus reclaimable cache).
 */
export function availableMemory(): AvailableMemory {
  let bytes = os.freemem();
  let source = 'free RAM';
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) {
      bytes = Number(m[1]) * 1024;
      source = `MemAvailable ${formatBytes(bytes)}`;
    }
  } catch { /* not Linux */ }
  const candidates: Array<[string, string]> = [
    ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'],
    ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'],
  ];
  for (const [limitFile, usageFile] of candidates) {
    const limit = readNumber(limitFile);
    if (limit === null || limit >= os.totalmem()) continue;
    const used = readNumber(usageFile) ?? 0;
    const left = Math.max(0, limit - used);
    if (left < bytes) {
      bytes = left;
      source = `cgroup limit ${formatBytes(limit)}, ${formatBytes(used)} in use`;
    }
    break;
  }
  return { bytes, source };
}

/** Free memory on a GPU (the driver's count: other processes' use is already taken off). */
export function deviceMemory(device: Device): AvailableMemory {
  const m = cuda.memInfo(deviceIndex(device));
  return { bytes: m.free, source: `${device} ${m.name}: ${formatBytes(m.free)} free of ${formatBytes(m.total)}` };
}

/** The verdict of checking a plan against the memory available. */
export interface MemoryCheck {
  verdict: 'ok' | 'warn' | 'refuse';
  /** One line naming the estimate, the memory available and what to change. */
  message: string;
}

/** Warn above this share of the available memory (the estimate is approximate). */
export const MEMORY_WARN_FRACTION = 0.85;

/**
 * Compares the estimate with what is available: refuse when it does not fit (the kernel would
 * kill the run with no message), warn when it is close.
 */
export function checkMemory(plan: MemoryPlan, available: AvailableMemory, sharing = 1): MemoryCheck {
  const p = plan.perDevice;
  const transient = plan.sharding ? 'gathered FSDP units' : plan.input.parallel.worldSize > 1 ? 'autocast copies and all-reduce buckets' : 'autocast weight copies';
  let est = `parameters ${formatBytes(p.params)} + gradients ${formatBytes(p.grads)} + optimizer state ${formatBytes(p.optimizerState)} + activations ${formatBytes(p.activations)}` +
    (p.transient ? ` + ${transient} ${formatBytes(p.transient)}` : '') + ` = ${formatBytes(p.total)}`;
  // Before sharding, every rank briefly holds the whole fp32 model.
  let need = Math.max(p.total, plan.setupPeak);
  if (plan.setupPeak > p.total) est += ` (${formatBytes(plan.setupPeak)} while the whole model is built, before it is sharded)`;
  // Ranks of one machine share its memory (CPU training): each needs its own share.
  if (sharing > 1) {
    need *= sharing;
    est += `, times ${sharing} ranks on this machine = ${formatBytes(need)}`;
  }
  const avail = `${formatBytes(available.bytes)} available (${available.source})`;
  if (need <= MEMORY_WARN_FRACTION * available.bytes) return { verdict: 'ok', message: `estimated memory ${est}; ${avail}` };
  const hints = hintsFor(plan);
  if (need > available.bytes) {
    return { verdict: 'refuse', message: `this run needs about ${formatBytes(need)} but only ${avail}: ${est}. ${hints} (OLMO_TS_MEMORY_CHECK=warn starts it anyway)` };
  }
  return { verdict: 'warn', message: `this run needs about ${formatBytes(need)} of ${avail} (${Math.round((100 * need) / available.bytes)}%): ${est}. If it is killed, ${hints.charAt(0).toLowerCase()}${hints.slice(1)}` };
}

function hintsFor(plan: MemoryPlan): string {
  const i = plan.input;
  const out: string[] = [];
  const act = plan.perDevice.activations;
  const whole = plan.activationsByStrategy.whole_layer;
  if (i.activationCheckpointing !== 'whole_layer' && whole < act * 0.8) out.push(`activation_checkpointing: whole_layer (activations ${formatBytes(whole)})`);
  if (i.microBatchSize > 1) out.push(`a smaller device_train_microbatch_size (now ${i.microBatchSize})`);
  if (i.optimizer === 'adamw') out.push('optimizer.name: lionw (one state tensor instead of two)');
  if (i.parallel.worldSize > 1 && !plan.sharding) out.push('fsdp.sharding_strategy: FULL_SHARD (shards parameters, gradients and optimizer state over the ranks)');
  return out.length ? `Try ${out.join(', or ')}.` : 'Use a smaller model or a machine with more memory.';
}

/** Raised before a model is built when the run would not fit in memory. */
export class InsufficientMemoryError extends Error {
  readonly code = 'ERR_INSUFFICIENT_MEMORY';
  constructor(message: string, readonly plan: MemoryPlan, readonly available: AvailableMemory) {
    super(message);
    this.name = 'InsufficientMemoryError';
  }
}

/** What to do when the estimate does not fit: refuse (default), warn, or skip the check. */
export type MemoryCheckMode = 'refuse' | 'warn' | 'off';

/** OLMO_TS_MEMORY_CHECK=refuse|warn|off, else `fallback`. */
export function memoryCheckModeFromEnv(fallback: MemoryCheckMode = 'refuse'): MemoryCheckMode {
  const v = process.env.OLMO_TS_MEMORY_CHECK;
  if (v === undefined || v === '') return fallback;
  if (v === 'refuse' || v === 'warn' || v === 'off') return v;
  throw new ConfigError('OLMO_TS_MEMORY_CHECK', `got ${JSON.stringify(v)}, expected refuse, warn or off`);
}

/**
 * The start-up check (before anything is built): estimates the run and compares it with the memory
 * available. Throws InsufficientMemoryError when it does not fit (mode 'refuse'), calls `warn` when
 * it is close or does not fit (mode 'warn'). Returns the plan and the verdict for the banner.
 */
export function preflightMemoryCheck(cfg: TrainConfig, o: { mode?: MemoryCheckMode; warn: (message: string) => void; available?: AvailableMemory; ranks?: { worldSize: number; localWorldSize: number; fsdp?: boolean }; sharing?: number; device?: Device }): MemoryPreflight {
  const mode = o.mode ?? memoryCheckModeFromEnv();
  const plan = planTrainMemory(cfg, {}, o.ranks);
  if (mode === 'off') return { plan, check: null, available: null };
  const available = o.available ?? (o.device && o.device !== 'cpu' ? deviceMemory(o.device) : availableMemory());
  const check = checkMemory(plan, available, o.sharing ?? 1);
  if (check.verdict === 'refuse' && mode === 'refuse') throw new InsufficientMemoryError(check.message, plan, available);
  if (check.verdict !== 'ok') o.warn(check.message);
  return { plan, check, available };
}

/** What the start-up check found (kept by the trainer for the banner). */
export interface MemoryPreflight {
  plan: MemoryPlan;
  /** null when the check is off. */
  check: MemoryCheck | null;
  available: AvailableMemory | null;
}

/**
 * The start-up banner's memory lines (src/train/logging/banner.ts), as [label, value]: the
 * estimate per device by kind, and the memory available with how much of it the run needs.
 */
export function memoryBannerEntries(m: MemoryPreflight): [string, string][] {
  const p = m.plan.perDevice;
  const i = m.plan.input;
  const out: [string, string][] = [[
    'memory',
    `about ${formatBytes(p.total)} per device = parameters ${formatBytes(p.params)} + gradients ${formatBytes(p.grads)} + optimizer state ${formatBytes(p.optimizerState)}` +
      ` + activations ${formatBytes(p.activations)}${p.transient ? ` + ${m.plan.sharding ? 'gathered units' : 'autocast copies'} ${formatBytes(p.transient)}` : ''}` +
      ` (micro-batch ${i.microBatchSize} x ${i.seqLen}, activation_checkpointing: ${i.activationCheckpointing ?? 'null'})`,
  ]];
  if (m.available && m.check) {
    const pct = Math.round((100 * p.total) / Math.max(1, m.available.bytes));
    out.push(['available', `${formatBytes(m.available.bytes)} (${m.available.source}): the run needs ${pct}% of it${m.check.verdict === 'ok' ? '' : ', close to the limit'}`]);
  }
  return out;
}
