// OLMo's parameter groups (olmo/optim.py get_param_groups): a "decay" group with the linear
// weights and a "no decay" group with biases, norm weights and embeddings (unless the optimizer
// config asks to decay those too); names sorted inside each group.
import type { NamedParameter } from '../nn/module';
import type { Tensor } from '../tensor/tensor';

/** One optimizer parameter group; lr / clipping fields are updated by the trainer every step. */
export interface ParamGroup {
  /** Sorted state-dict names, parallel to params. */
  names: string[];
  params: Tensor[];
  weightDecay: number;
  /** Current learning rate (the scheduler writes it each step). */
  lr: number;
  /** The configured peak learning rate. */
  initialLr: number;
  /** Global-norm clipping threshold for this group, or null. */
  maxGradNorm: number | null;
  /** Adaptive clipping ratio for this group (takes precedence over maxGradNorm), or null. */
  maxGradNormRatio: number | null;
}

/** The optimizer-config keys that decide grouping (OLMo names). */
export interface GroupingOptions {
  learning_rate: number;
  weight_decay: number;
  decay_norm_and_bias?: boolean;
  decay_embeddings?: boolean;
  /** Deprecated OLMo key: when set, overrides both decay_* keys with its negation. */
  no_decay_norm_and_bias?: boolean | null;
}

/** Splits named parameters into OLMo's decay / no-decay groups (empty groups are omitted). */
export function buildParamGroups(named: NamedParameter[], o: GroupingOptions): ParamGroup[] {
  let decayNormAndBias = o.decay_norm_and_bias ?? false;
  let decayEmbeddings = o.decay_embeddings ?? false;
  if (o.no_decay_norm_and_bias !== undefined && o.no_decay_norm_and_bias !== null) {
    decayNormAndBias = decayEmbeddings = !o.no_decay_norm_and_bias;
  }
  const decay = new Map<string, Tensor>();
  const noDecay = new Map<string, Tensor>();
  for (const p of named) {
    if (!p.tensor.requiresGrad) continue;
    const decays =
      p.kind === 'linear_weight' ||
      ((p.kind === 'linear_bias' || p.kind === 'norm_weight' || p.kind === 'norm_bias') && decayNormAndBias) ||
      (p.kind === 'embedding' && decayEmbeddings);
    (decays ? decay : noDecay).set(p.name, p.tensor);
  }
  const group = (m: Map<string, Tensor>, wd: number): ParamGroup => {
    const names = [...m.keys()].sort();
    return { names, params: names.map((n) => m.get(n)!), weightDecay: wd, lr: o.learning_rate, initialLr: o.learning_rate, maxGradNorm: null, maxGradNormRatio: null };
  };
  const groups: ParamGroup[] = [];
  if (decay.size) groups.push(group(decay, o.weight_decay));
  if (noDecay.size) groups.push(group(noDecay, 0));
  return groups;
}
