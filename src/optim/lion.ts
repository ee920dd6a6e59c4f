// LionW as OLMo implements it (olmo/optim.py LionW): decoupled weight decay, sign of the
// interpolated momentum as the update, then the momentum update; reports update_cos_sim.
import { native } from '../native';
import { ArgumentError } from '../native/errors';
import { zerosLike } from '../tensor/creation';
import { keep } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { Optimizer, OptimizerState } from './optimizer';
import type { ParamGroup } from './param-groups';

export class LionW extends Optimizer {
  private readonly beta1: number;
  private readonly beta2: number;
  private expAvg: Tensor[] | null = null;

  constructor(groups: ParamGroup[], opts: { betas?: [number, number] } = {}) {
    super(groups);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.99];
    for (const b of [this.beta1, this.beta2]) if (!(b >= 0 && b <= 1)) throw new ArgumentError(`LionW betas must be in [0, 1], got ${b}`);
    for (const g of groups) if (!(g.lr > 0)) throw new ArgumentError(`LionW learning rate must be positive, got ${g.lr}`);
  }

  get betas(): [number, number] {
    return [this.beta1, this.beta2];
  }

  private ensureState(): void {
    if (!this.expAvg) this.expAvg = this.allParams.map((p) => keep(zerosLike(p)));
  }

  /** Returns {update_cos_sim}: cosine similarity of the update and its sign (OLMo's metric). */
  step(): Record<string, number> {
    this.ensureState();
    const { lrs, wds } = this.perParam();
    const [dot, normSq, signedSq] = native.lionStep(this.allParams.map((p) => p.id), this.expAvg!.map((t) => t.id), lrs, wds, this.beta1, this.beta2);
    return { update_cos_sim: dot / Math.max(Math.sqrt(normSq) * Math.sqrt(signedSq), 1e-8) };
  }

  stateDict(): OptimizerState {
    this.ensureState();
    return {
      tensors: { exp_avg: Object.fromEntries(this.allNames.map((n, i) => [n, this.expAvg![i]!])) },
      values: {
        step: {},
        grad_norm_exp_avg: Object.fromEntries(this.gradNormExpAvg),
        groups: this.groups.map((g) => ({ lr: g.lr, initial_lr: g.initialLr, weight_decay: g.weightDecay })),
      },
    };
  }

  loadStateDict(state: OptimizerState): void {
    this.ensureState();
    const src = state.tensors.exp_avg;
    if (!src) throw new ArgumentError("optimizer state has no 'exp_avg' tensors");
    this.allNames.forEach((n, i) => {
      const t = src[n];
      if (!t) throw new ArgumentError(`optimizer state is missing exp_avg for parameter '${n}'`);
      this.expAvg![i]!.copy_(t);
    });
    this.gradNormExpAvg = new Map(Object.entries(state.values.grad_norm_exp_avg ?? {}));
  }

  close(): void {
    for (const t of this.expAvg ?? []) t.dispose();
    this.expAvg = null;
  }
}
