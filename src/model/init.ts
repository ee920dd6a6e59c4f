// Weight initialisation as OLMo's olmo/initialization.py does it: per init_fn (normal, mitchell,
// kaiming_normal, fan_in, full_megatron) a std per module type, optional truncation, zero biases,
// and the residual ff_out scaling of the normal init. Truncated normals follow torch's trunc_normal_.
import { Tensor } from '../tensor/tensor';
import { tensor } from '../tensor/creation';
import { noGrad } from '../tensor/autograd';
import { tidy } from '../tensor/scope';
import { ModelConfig } from '../config/model';
import { InitModuleType } from './block';

/** The standard normal CDF, with erf from libtorch (float64) so it matches Python's math.erf. */
function normCdf(x: number): number {
  const e = tidy(() => tensor([x / Math.SQRT2], { dtype: 'float64' }).erf().item());
  return (1 + e) / 2;
}

/** torch.nn.init.trunc_normal_: N(mean, std²) restricted to [a, b] by inverse-CDF sampling. */
export function truncNormal_(t: Tensor, mean: number, std: number, a: number, b: number): Tensor {
  const l = normCdf((a - mean) / std);
  const u = normCdf((b - mean) / std);
  noGrad(() => {
    t.uniform_(2 * l - 1, 2 * u - 1);
    t.erfinv_();
    t.mul_(std * Math.SQRT2);
    t.add_(mean);
    t.clamp_(a, b);
  });
  return t;
}

/** What init rule applies to a weight (OLMo's init_weights arguments). */
export interface InitSpec {
  /** Effective input size (defaults to d_model). */
  d?: number | null;
  /** Mitchell init divides std by sqrt(2 (layer_id + 1)) when set. */
  layerId?: number | null;
  /** Multiplies the std of normal/mitchell/fan_in (the embedding uses 0.5 sqrt(d_model) with scale_logits). */
  stdFactor?: number;
  /** Module type, required by full_megatron. */
  type?: InitModuleType;
  /** OLMo's `_is_residual`: the normal init divides by sqrt(2 n_layers) afterwards. */
  residual?: boolean;
}

/** The distribution init_weights would draw from: std and truncation bound (null = none). */
export function initDistribution(c: ModelConfig, weightShape: number[], spec: InitSpec): { std: number; cutoff: number | null } {
  const d = spec.d ?? c.d_model;
  const f = spec.stdFactor ?? 1;
  switch (c.init_fn) {
    case 'normal': {
      const std = c.init_std * f;
      return { std, cutoff: c.init_cutoff_factor === null ? null : c.init_cutoff_factor * std };
    }
    case 'mitchell': {
      let std = f / Math.sqrt(d);
      if (spec.layerId !== undefined && spec.layerId !== null) std = std / Math.sqrt(2 * (spec.layerId + 1));
      return { std, cutoff: 3 * std };
    }
    case 'kaiming_normal':
      // kaiming_normal_(nonlinearity="relu", mode="fan_in"): gain sqrt(2) over sqrt(weight.shape[1]).
      return { std: Math.SQRT2 / Math.sqrt(weightShape[1]!), cutoff: null };
    case 'fan_in':
      return { std: f / Math.sqrt(d), cutoff: null };
    case 'full_megatron': {
      const cutoffFactor = c.init_cutoff_factor ?? 3;
      let std: number;
      switch (spec.type) {
        case 'in':
        case 'emb':
          std = c.init_std;
          break;
        case 'out':
          std = c.init_std / Math.sqrt(2 * c.n_layers);
          break;
        case 'final_out':
          std = c.d_model ** -0.5;
          break;
        default:
          throw new Error(`init_fn full_megatron needs a module type for every weight (got ${String(spec.type)})`);
      }
      return { std, cutoff: cutoffFactor * std };
    }
  }
}

/** OLMo's init_weights on one weight (and its bias, zeroed). */
export function initWeight(c: ModelConfig, weight: Tensor, bias: Tensor | null, spec: InitSpec): void {
  const { std, cutoff } = initDistribution(c, weight.shape, spec);
  noGrad(() => {
    if (cutoff === null) weight.normal_(0, std);
    else truncNormal_(weight, 0, std, -cutoff, cutoff);
    bias?.zero_();
    if (c.init_fn === 'normal' && spec.residual) weight.div_(Math.sqrt(2 * c.n_layers));
  });
}
