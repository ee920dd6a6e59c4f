// Neural-network building blocks: the Module base and the layers OLMo's model is made of.
export { Module, ModuleList, ModuleDict } from './module';
export type { ParamKind, NamedParameter } from './module';
export { Linear, Embedding } from './linear';
export type { ParamOptions } from './linear';
export { Dropout } from './dropout';
export { LayerNormBase, LayerNorm, RMSLayerNorm, AMDLayerNorm, autocastDtypeFor } from './layer-norm';
export type { NormOptions } from './layer-norm';
