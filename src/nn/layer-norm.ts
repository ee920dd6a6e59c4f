// OLMo's layer norms: LayerNorm (default and low_precision), RMSLayerNorm and AMDLayerNorm, each
// optionally non-parametric (no weight/bias) and with eps 1e-5. Parameters: weight (ones), bias (zeros).
import { Tensor } from '../tensor/tensor';
import { ones, zeros } from '../tensor/creation';
import { layerNorm, rmsNorm } from '../tensor/functional';
import { autocast } from '../tensor/autograd';
import { DType, dtypeFromCode } from '../tensor/dtype';
import { native } from '../native';
import { Module } from './module';
import { ParamOptions } from './linear';

/** Options shared by the norms. */
export interface NormOptions extends ParamOptions {
  /** Learnable weight (and bias, if `bias`). false = non-parametric. Default true. */
  affine?: boolean;
  /** Learnable bias when affine. Default true. */
  bias?: boolean;
  /** Default 1e-5, as in OLMo. */
  eps?: number;
}

/** The autocast dtype if autocast is on for x's device type, else null. */
export function autocastDtypeFor(x: Tensor): DType | null {
  const [on, code] = native.autocastState(x.device !== 'cpu');
  return on ? dtypeFromCode(code) : null;
}

/** Base of the norms: the normalised size, eps and the optional affine parameters. */
export abstract class LayerNormBase extends Module {
  readonly size: number;
  readonly eps: number;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(size: number, opts: NormOptions = {}) {
    super();
    this.size = size;
    this.eps = opts.eps ?? 1e-5;
    const o = { device: opts.device, dtype: opts.dtype };
    const affine = opts.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', ones([size], o), 'norm_weight') : null;
    this.bias = affine && (opts.bias ?? true) ? this.registerParameter('bias', zeros([size], o), 'norm_bias') : null;
  }
  /** (..., size) -> (..., size) */
  abstract forward(x: Tensor): Tensor;
  /** Weight back to ones, bias to zeros (OLMo's reset_parameters). */
  resetParameters(): void {
    this.weight?.fill_(1);
    this.bias?.zero_();
  }
}

/**
 * torch.nn.functional.layer_norm. With lowPrecision, under autocast the input and parameters are
 * cast to the autocast dtype and the norm runs there with autocast off (OLMo's low_precision type).
 */
export class LayerNorm extends LayerNormBase {
  readonly lowPrecision: boolean;
  constructor(size: number, opts: NormOptions & { lowPrecision?: boolean } = {}) {
    super(size, opts);
    this.lowPrecision = opts.lowPrecision ?? false;
  }
  forward(x: Tensor): Tensor {
    const low = this.lowPrecision ? autocastDtypeFor(x) : null;
    if (low === null) return layerNorm(x, [this.size], this.weight, this.bias, this.eps);
    const xd = x.to(low);
    const w = this.weight?.to(low) ?? null;
    const b = this.bias?.to(low) ?? null;
    return autocast(() => layerNorm(xd, [this.size], w, b, this.eps), { device: x.device, enabled: false });
  }
}

/** x * rsqrt(mean(x²) + eps) computed in float32, cast back, then weight * y (+ bias). */
export class RMSLayerNorm extends LayerNormBase {
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.bias, this.eps);
  }
}

/**
 * LayerNorm from primitives (var_mean, rsqrt), OLMo's workaround for ROCm; in float32 under
 * autocast, and returned in the input dtype.
 */
export class AMDLayerNorm extends LayerNormBase {
  forward(x: Tensor): Tensor {
    const ogDtype = x.dtype;
    const xf = autocastDtypeFor(x) !== null ? x.to('float32') : x;
    return autocast(
      () => {
        const v = xf.var(-1, true, false); // (..., 1)
        const m = xf.mean(-1, true); // (..., 1)
        let y = v.add(this.eps).rsqrt().mul(xf.sub(m));
        if (this.weight) y = y.mul(this.weight);
        if (this.bias) y = y.add(this.bias);
        return y.to(ogDtype);
      },
      { device: x.device, enabled: false },
    );
  }
}
