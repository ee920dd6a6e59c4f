// OLMo's learning-rate schedules and grad-clip warmup (olmo/optim.py v0.2.5: CosWithWarmup,
// LinearWithWarmup, InvSqrtWithWarmup, MaxScheduler, ConstantScheduler, BoltOnWarmupScheduler),
// with the same formulas and integer truncations, plus the step/token bookkeeping from olmo/train.py.
import { maxSteps, maxTokens, parseDuration, Progress } from '../config/duration';
import type { SchedulerConfig } from '../config/optimizer';
import type { TrainConfig } from '../config/train';

/** A schedule: the LR and clipping thresholds at position `current` of `max` (steps or tokens). */
export interface Scheduler {
  /** The learning rate at `current`, given the configured peak `initialLr` and the end `max`. */
  lr(initialLr: number, current: number, max: number): number;
  /** max_grad_norm at `current`: multiplied by grad_clip_warmup_factor while current <= grad_clip_warmup_steps. */
  maxGradNorm(initial: number | null, current: number, max: number): number | null;
  /** max_grad_norm_ratio at `current` (same warmup rule as maxGradNorm). */
  maxGradNormRatio(initial: number | null, current: number, max: number): number | null;
}

interface Common {
  gradClipWarmupSteps: number | null;
  gradClipWarmupFactor: number | null;
  warmupMinLr: number | null;
}

function clipCoeff(c: Common, initial: number | null, current: number): number | null {
  if (initial === null) return null;
  if (c.gradClipWarmupSteps === null || c.gradClipWarmupFactor === null || current > c.gradClipWarmupSteps) return initial;
  return c.gradClipWarmupFactor * initial;
}

// OLMo's _linear_warmup: from warmup_min_lr (default 10% of the peak) up to the peak.
function linearWarmup(c: Common, initialLr: number, step: number, warmupSteps: number): number {
  if (c.warmupMinLr === null) return initialLr * (0.1 + (0.9 * Math.min(step, warmupSteps)) / warmupSteps);
  return c.warmupMinLr + ((initialLr - c.warmupMinLr) * Math.min(step, warmupSteps)) / warmupSteps;
}

function make(c: Common, lr: Scheduler['lr']): Scheduler {
  return {
    lr,
    maxGradNorm: (initial, current) => clipCoeff(c, initial, current),
    maxGradNormRatio: (initial, current) => clipCoeff(c, initial, current),
  };
}

const trunc = (v: number | null): number | null => (v === null ? null : Math.trunc(v));

/**
 * OLMo's CosWithWarmup / LinearWithWarmup shape: linear warmup, then `decay` from the peak to
 * eta_min = alpha_f * peak over [warmup, t_max] (step and t_max shifted by the warmup), then eta_min.
 */
function warmupThenDecay(
  c: Common, warmup: number, tMax: number | null, alphaF: number,
  decay: (initialLr: number, etaMin: number, step: number, maxSteps: number) => number,
): Scheduler['lr'] {
  return (initialLr, step, max) => {
    const maxSteps = tMax ?? max;
    const etaMin = initialLr * alphaF;
    if (step < warmup) return linearWarmup(c, initialLr, step, warmup);
    if (step >= maxSteps) return etaMin;
    return decay(initialLr, etaMin, step - warmup, maxSteps - warmup);
  };
}

/**
 * Builds the scheduler a `scheduler:` section describes, exactly as OLMo's build_scheduler does
 * (t_warmup, t_max and grad_clip_warmup_steps truncated to integers).
 */
export function buildScheduler(cfg: SchedulerConfig): Scheduler {
  const c: Common = {
    gradClipWarmupSteps: trunc(cfg.grad_clip_warmup_steps),
    gradClipWarmupFactor: cfg.grad_clip_warmup_factor,
    warmupMinLr: cfg.warmup_min_lr,
  };
  const warmup = Math.trunc(cfg.t_warmup);
  const tMax = trunc(cfg.t_max);
  switch (cfg.name) {
    case 'cosine_with_warmup':
      return make(c, warmupThenDecay(c, warmup, tMax, cfg.alpha_f, (lr, etaMin, step, maxSteps) => etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * step) / maxSteps))) / 2));
    case 'linear_with_warmup':
      return make(c, warmupThenDecay(c, warmup, tMax, cfg.alpha_f, (lr, etaMin, step, maxSteps) => lr - (lr - etaMin) * (step / maxSteps)));
    case 'inverse_sqrt_with_warmup':
      return make(c, (initialLr, step) => {
        if (step < warmup) return linearWarmup(c, initialLr, step, warmup);
        return initialLr * Math.sqrt(warmup / Math.max(warmup, step));
      });
    case 'max_scheduler': {
      const cos = buildScheduler({ ...cfg, name: 'cosine_with_warmup' });
      const inv = buildScheduler({ ...cfg, name: 'inverse_sqrt_with_warmup' });
      return make(c, (initialLr, step, max) => Math.max(cos.lr(initialLr, step, max), inv.lr(initialLr, step, max)));
    }
    case 'constant':
      return make(c, (initialLr) => initialLr);
  }
}

/**
 * OLMo's BoltOnWarmupScheduler (used with reset_optimizer_state): LR 0 before `warmupStart`, then
 * a linear ramp up to where `inner` is at `warmupEnd`, then `inner`. Clipping follows `inner`.
 */
export function boltOnWarmup(inner: Scheduler, warmupStart: number, warmupEnd: number): Scheduler {
  return {
    lr(initialLr, step, max) {
      if (step < warmupStart) return 0.0;
      if (step < warmupEnd) {
        const atIntercept = inner.lr(initialLr, warmupEnd, max);
        return (atIntercept * (step - warmupStart)) / (warmupEnd - warmupStart);
      }
      return inner.lr(initialLr, step, max);
    },
    maxGradNorm: (initial, current, max) => inner.maxGradNorm(initial, current, max),
    maxGradNormRatio: (initial, current, max) => inner.maxGradNormRatio(initial, current, max),
  };
}

/** Where training stands in the scheduler's units (OLMo's scheduler_current / scheduler_max). */
export function schedulerPosition(cfg: TrainConfig, p: Progress): { current: number; max: number } {
  const d = parseDuration(cfg.max_duration);
  if (cfg.scheduler.units === 'steps') return { current: p.globalStep, max: maxSteps(d, p) };
  return { current: p.tokensSeen, max: maxTokens(d, p) };
}

/** The values the trainer sets on every parameter group before an optimizer step. */
export interface ScheduleValues {
  /** Learning rate for this step. */
  lr: number;
  /** Global clipping threshold for this step (null: no clipping). */
  maxGradNorm: number | null;
  /** Adaptive clipping ratio for this step (null: off). */
  maxGradNormRatio: number | null;
  /** Position in the scheduler's units (steps or tokens). */
  current: number;
  /** End of the schedule in the same units (max_duration converted). */
  max: number;
}

/**
 * The LR and clipping thresholds for the step about to be taken, as OLMo's Trainer.train_step
 * computes them: scheduler position from global step or tokens seen, peak LR from the optimizer
 * section, thresholds from max_grad_norm / max_grad_norm_ratio. Pass `scheduler` to use a wrapped
 * one (e.g. boltOnWarmup after reset_optimizer_state).
 */
export function scheduleAt(cfg: TrainConfig, p: Progress, scheduler: Scheduler = buildScheduler(cfg.scheduler)): ScheduleValues {
  const { current, max } = schedulerPosition(cfg, p);
  return {
    lr: scheduler.lr(cfg.optimizer.learning_rate, current, max),
    maxGradNorm: scheduler.maxGradNorm(cfg.max_grad_norm, current, max),
    maxGradNormRatio: scheduler.maxGradNormRatio(cfg.max_grad_norm_ratio, current, max),
    current,
    max,
  };
}
