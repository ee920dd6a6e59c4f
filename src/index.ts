// olmo-ts public API: the tensor layer (this issue) and, as they land, the model, data and trainer.
export { Tensor } from './tensor/tensor';
export type { Dims } from './tensor/tensor';
export { tidy, keep, dispose, liveTensors } from './tensor/scope';
export * from './tensor/creation';
export * as F from './tensor/functional';
export { noGrad, enableGrad, isGradEnabled, autocast, zeroGrad } from './tensor/autograd';
export { manualSeed, getRngState, setRngState, Generator } from './tensor/random';
export { setNumThreads, getNumThreads, buildInfo, cuda, cpuCache } from './tensor/runtime';
export type { DType, Device } from './tensor/dtype';
export { DTYPES } from './tensor/dtype';
export * from './native/errors';
export * from './model';
export type { ModelConfig } from './config/model';
export { parseModelConfig, modelConfig, MODEL_CONFIG_DEFAULTS } from './config/model';
export * as nn from './nn';
