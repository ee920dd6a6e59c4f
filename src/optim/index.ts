// Optimizers, parameter groups, clipping and schedules (OLMo's olmo/optim.py).
export { AdamW } from './adamw';
export type { AdamWOptions } from './adamw';
export { LionW } from './lion';
export { Optimizer } from './optimizer';
export type { ClipMetrics, OptimizerState } from './optimizer';
export { buildParamGroups } from './param-groups';
export type { GroupingOptions, ParamGroup } from './param-groups';
