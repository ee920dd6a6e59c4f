// The optimizer base: parameter groups, OLMo's gradient clipping with its metrics
// (clip_grads_and_collect_metrics: global fixed and adaptive per-parameter clipping), zeroGrad,
// and state save/load. Subclasses (AdamW, LionW) implement the update in one native call.
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { zeroGrad } from '../tensor/autograd';
import type { Tensor } from '../tensor/tensor';
import type { ParamGroup } from './param-groups';

const f32 = Math.fround;

/** Metrics of one clipping pass, with OLMo's names (prefixed "optim/" by the trainer). */
export interface ClipMetrics {
  total_grad_norm: number;
  clipping_rate: number;
  /** Per-parameter gradient norms: grad/<name>.norm */
  perParam: Record<string, number>;
}

/** What an optimizer checkpoint holds: per-param tensors by state name, and plain values. */
export interface OptimizerState {
  /** e.g. {"exp_avg": {name: Tensor}, "exp_avg_sq": {...}} */
  tensors: Record<string, Record<string, Tensor>>;
  /** steps per param name, grad_norm_exp_avg per param name, and group hyper-parameters. */
  values: { step: Record<string, number>; grad_norm_exp_avg: Record<string, number>; groups: { lr: number; initial_lr: number; weight_decay: number }[] };
}

export abstract class Optimizer {
  readonly groups: ParamGroup[];
  /** Adaptive clipping state: OLMo's per-param grad_norm_exp_avg. */
  protected gradNormExpAvg = new Map<string, number>();
  protected readonly allParams: Tensor[];
  protected readonly allNames: string[];

  constructor(groups: ParamGroup[]) {
    this.groups = groups;
    this.allParams = groups.flatMap((g) => g.params);
    this.allNames = groups.flatMap((g) => g.names);
    if (new Set(this.allNames).size !== this.allNames.length) throw new ArgumentError('a parameter appears in two groups');
  }

  /** The (beta1, beta2) pair, used by adaptive clipping as OLMo does. */
  abstract get betas(): [number, number];
  /** Applies one update to every parameter that has a gradient; returns optimizer metrics. */
  abstract step(): Record<string, number>;
  /** The state to checkpoint (tensors are the live state, not copies). */
  abstract stateDict(): OptimizerState;
  /** Restores state from stateDict() output (tensors are copied in). */
  abstract loadStateDict(state: OptimizerState): void;
  /** Frees the optimizer's state tensors. Idempotent. */
  abstract close(): void;

  /** Clears every parameter's .grad (set to None, as OLMo's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    zeroGrad(this.allParams, true);
  }

  /** Each parameter's gradient norm (0 without a gradient), in group order (fp32 arithmetic). // SYNC */
  localGradNorms(): Float64Array {
    return native.gradNorms(this.allParams.map((p) => p.id));
  }

  /** Parameter names in the order of localGradNorms(). */
  get paramNames(): readonly string[] {
    return this.allNames;
  }

  /** Per-parameter lr and weight decay, one entry per param across groups. */
  protected perParam(): { lrs: Float64Array; wds: Float64Array } {
    const n = this.allParams.length;
    const lrs = new Float64Array(n), wds = new Float64Array(n);
    let i = 0;
    for (const g of this.groups) for (let k = 0; k < g.params.length; k++, i++) { lrs[i] = g.lr; wds[i] = g.weightDecay; }
    return { lrs, wds };
  }

  /**
   * OLMo's clip_grads_and_collect_metrics: per-param grad norms (fp32), the total norm, then for
   * each group adaptive clipping (maxGradNormRatio) or global fixed clipping (maxGradNorm).
   * `globalStep` is the 1-based step (adaptive state is stored from step 2, as OLMo does). // SYNC
   */
  clipGradsAndCollectMetrics(globalStep: number, globalNorms?: Float64Array): ClipMetrics {
    // Sharded parameters (FSDP) pass the per-parameter norms over every shard; else they are local.
    const norms = globalNorms ?? this.localGradNorms();
    const perParam: Record<string, number> = {};
    let sumSq = 0;
    for (let i = 0; i < norms.length; i++) {
      perParam[`grad/${this.allNames[i]}.norm`] = norms[i]!;
      sumSq = f32(sumSq + f32(norms[i]! * norms[i]!));
    }
    const total = f32(Math.sqrt(sumSq));
    const coefs = new Float64Array(norms.length).fill(1);
    let clipped = 0, eligible = 0, i = 0;
    for (const g of this.groups) {
      const start = i;
      i += g.params.length;
      if (g.maxGradNormRatio !== null) {
        eligible += g.params.length;
        const beta = Math.max(...this.betas);
        for (let k = start; k < i; k++) {
          const name = this.allNames[k]!;
          const n = norms[k]!;
          let avg = this.gradNormExpAvg.get(name);
          if (avg === undefined) avg = n;
          const coef = Math.min(f32(f32(f32(g.maxGradNormRatio) * avg) / f32(n + 1e-6)), 1);
          coefs[k] = coef;
          if (coef < 1) clipped++;
          // lerp toward the clipped norm: avg + (1 - beta) * (n * coef - avg)
          const next = f32(avg + f32(1 - beta) * f32(f32(n * coef) - avg));
          // A non-finite norm means the step will be refused (trainer): keep the average intact.
          if (Number.isFinite(next) && (globalStep > 1 || this.gradNormExpAvg.has(name))) this.gradNormExpAvg.set(name, next);
        }
      } else if (g.maxGradNorm !== null) {
        eligible += g.params.length;
        const coef = Math.min(f32(f32(g.maxGradNorm) / f32(total + 1e-6)), 1);
        if (coef < 1) clipped += g.params.length;
        for (let k = start; k < i; k++) coefs[k] = coef;
      }
    }
    if (coefs.some((c) => c !== 1)) native.scaleGrads(this.allParams.map((p) => p.id), coefs);
    return { total_grad_norm: total, clipping_rate: eligible ? clipped / eligible : 0, perParam };
  }
}
