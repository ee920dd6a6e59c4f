// Memory a run actually uses, per device: bytes of parameters, gradients and optimizer state (from
// the tensors themselves) and the peak (the CUDA caching allocator's peak on CUDA, OLMo's
// `System/Peak GPU Memory (MB)`; the process's peak resident set on CPU), as metrics.
import type { Optimizer } from '../optim/optimizer';
import { elementSize } from '../tensor/dtype';
import { cuda } from '../tensor/runtime';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

/** Metric names (OLMo's unit: MB = 1e6 bytes, as its peak_gpu_memory). */
export const MEMORY_METRIC = {
  /** OLMo's name: torch.cuda.max_memory_allocated / 1e6 since the start. */
  peakGpu: 'System/Peak GPU Memory (MB)',
  /** The CPU counterpart (not in OLMo): the process's peak resident set (VmHWM) / 1e6. */
  peakCpu: 'System/Peak CPU Memory (MB)',
  params: 'System/Parameter Memory (MB)',
  grads: 'System/Gradient Memory (MB)',
  optimizerState: 'System/Optimizer State Memory (MB)',
} as const;

/** Bytes of the tensors' elements. */
export function tensorBytes(ts: Iterable<Tensor>): number {
  let n = 0;
  for (const t of ts) n += t.numel * elementSize(t.dtype);
  return n;
}

/**
 * What the parameters, their current gradients and the optimizer's state occupy on this device:
 * `params` is what the optimizer updates (the model's parameters, or this rank's shards of them
 * under FSDP).
 */
export function modelMemory(params: Tensor[], optimizer: Optimizer | null): { params: number; grads: number; optimizerState: number } {
  const grads = tidy(() => tensorBytes(params.map((p) => p.grad).filter((g): g is Tensor => g !== null)));
  let optimizerState = 0;
  if (optimizer) for (const byName of Object.values(optimizer.stateDict().tensors)) optimizerState += tensorBytes(Object.values(byName));
  return { params: tensorBytes(params), grads, optimizerState };
}

/** Peak memory of the device the model is on: the CUDA allocator's peak, or the process's peak RSS. */
export function peakMemory(device: string): { bytes: number; metric: string } {
  if (device !== 'cpu') {
    const index = device === 'cuda' ? 0 : Number(device.split(':')[1] ?? 0);
    return { bytes: cuda.memoryStats(index).peakAllocated, metric: MEMORY_METRIC.peakGpu };
  }
  return { bytes: process.resourceUsage().maxRSS * 1024, metric: MEMORY_METRIC.peakCpu };
}

/** OLMo logs the peak at steps 1, 2 and every 10th step. */
export function logsSystemMetrics(step: number): boolean {
  return step < 3 || step % 10 === 0;
}

/** The step's memory metrics: peak of the device and what parameters (or shards), gradients and optimizer state hold. */
export function memoryMetrics(params: Tensor[], optimizer: Optimizer | null, device: string): Record<string, number> {
  const m = modelMemory(params, optimizer);
  const peak = peakMemory(device);
  return {
    [peak.metric]: peak.bytes / 1e6,
    [MEMORY_METRIC.params]: m.params / 1e6,
    [MEMORY_METRIC.grads]: m.grads / 1e6,
    [MEMORY_METRIC.optimizerState]: m.optimizerState / 1e6,
  };
}
