// AdamW as OLMo builds it (torch.optim.AdamW with eps=1e-5 by default): decoupled weight decay,
// bias-corrected moments, one native call per step for the whole parameter list.
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { zerosLike } from '../tensor/creation';
import { keep } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { Optimizer, OptimizerState } from './optimizer';
import type { ParamGroup } from './param-groups';

export interface AdamWOptions {
  betas?: [number, number];
  /** OLMo v0.2.5 hard-codes 1e-5. */
  eps?: number;
}

export class AdamW extends Optimizer {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private expAvg: Tensor[] | null = null;
  private expAvgSq: Tensor[] | null = null;
  /** torch keeps a step count per parameter. */
  private readonly steps: Float64Array;

  constructor(groups: ParamGroup[], opts: AdamWOptions = {}) {
    super(groups);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-5;
    for (const b of [this.beta1, this.beta2]) if (!(b >= 0 && b < 1)) throw new ArgumentError(`AdamW betas must be in [0, 1), got ${b}`);
    this.steps = new Float64Array(this.allParams.length);
  }

  get betas(): [number, number] {
    return [this.beta1, this.beta2];
  }

  private ensureState(): void {
    if (this.expAvg) return;
    this.expAvg = this.allParams.map((p) => keep(zerosLike(p)));
    this.expAvgSq = this.allParams.map((p) => keep(zerosLike(p)));
  }

  step(): Record<string, number> {
    this.ensureState();
    const { lrs, wds } = this.perParam();
    native.adamwStep(
      this.allParams.map((p) => p.id), this.expAvg!.map((t) => t.id), this.expAvgSq!.map((t) => t.id),
      this.steps, lrs, wds, this.beta1, this.beta2, this.eps,
    );
    return {};
  }

  stateDict(): OptimizerState {
    this.ensureState();
    const byName = (ts: Tensor[]) => Object.fromEntries(this.allNames.map((n, i) => [n, ts[i]!]));
    return {
      tensors: { exp_avg: byName(this.expAvg!), exp_avg_sq: byName(this.expAvgSq!) },
      values: {
        step: Object.fromEntries(this.allNames.map((n, i) => [n, this.steps[i]!])),
        grad_norm_exp_avg: Object.fromEntries(this.gradNormExpAvg),
        groups: this.groups.map((g) => ({ lr: g.lr, initial_lr: g.initialLr, weight_decay: g.weightDecay })),
      },
    };
  }

  loadStateDict(state: OptimizerState): void {
    this.ensureState();
    for (const key of ['exp_avg', 'exp_avg_sq'] as const) {
      const src = state.tensors[key];
      if (!src) throw new ArgumentError(`optimizer state has no '${key}' tensors`);
      const dst = key === 'exp_avg' ? this.expAvg! : this.expAvgSq!;
      this.allNames.forEach((n, i) => {
        const t = src[n];
        if (!t) throw new ArgumentError(`optimizer state is missing ${key} for parameter '${n}'`);
        dst[i]!.copy_(t);
      });
    }
    this.allNames.forEach((n, i) => { this.steps[i] = state.values.step[n] ?? 0; });
    this.gradNormExpAvg = new Map(Object.entries(state.values.grad_norm_exp_avg ?? {}));
  }

  close(): void {
    for (const t of [...(this.expAvg ?? []), ...(this.expAvgSq ?? [])]) t.dispose();
    this.expAvg = this.expAvgSq = null;
  }
}
