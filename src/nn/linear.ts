// Linear and Embedding layers with PyTorch's parameter names (weight, bias) and shapes, tagged
// with their kinds for optimizer grouping. They start with PyTorch's default init; the OLMo model
// then re-initialises them as OLMo does (src/model/init.ts).
import { Tensor } from '../tensor/tensor';
import { empty, zeros } from '../tensor/creation';
import { embedding, linear } from '../tensor/functional';
import { Device, DType } from '../tensor/dtype';
import { noGrad } from '../tensor/autograd';
import { Module } from './module';

/** Where and in what dtype to create parameters. */
export interface ParamOptions {
  device?: Device;
  dtype?: DType;
  /** Leave weights uninitialised (when they are about to be loaded or re-initialised). */
  skipInit?: boolean;
}

/** y = x W^T + b. weight: (out, in), bias: (out). */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(inFeatures: number, outFeatures: number, opts: ParamOptions & { bias?: boolean } = {}) {
    super();
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const o = { device: opts.device, dtype: opts.dtype };
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures], o), 'linear_weight');
    this.bias = (opts.bias ?? true) ? this.registerParameter('bias', zeros([outFeatures], o), 'linear_bias') : null;
    if (!opts.skipInit) {
      // torch.nn.Linear.reset_parameters: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
      const bound = 1 / Math.sqrt(inFeatures);
      noGrad(() => {
        this.weight.uniform_(-bound, bound);
        this.bias?.uniform_(-bound, bound);
      });
    }
  }
  /** (..., in) -> (..., out) */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** A lookup table: ids (...) -> rows of weight (num, dim). */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly weight: Tensor;
  constructor(numEmbeddings: number, embeddingDim: number, opts: ParamOptions = {}) {
    super();
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    this.weight = this.registerParameter('weight', empty([numEmbeddings, embeddingDim], { device: opts.device, dtype: opts.dtype }), 'embedding');
    if (!opts.skipInit) noGrad(() => this.weight.normal_(0, 1)); // torch.nn.Embedding's N(0, 1)
  }
  /** (...) int64 -> (..., dim) */
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}
