// The config API: load an OLMo training config from YAML with overrides and interpolation,
// validate a raw object, emit its JSON Schema, and the section types and helpers around them.
export { ConfigError } from './errors';
export { loadTrainConfig, parseTrainConfig, buildTrainConfig, resolveRawConfig, readYamlFile, parseYamlText } from './load';
export type { LoadOptions } from './load';
export { validateTrainConfig, trainSpec, deriveBatchSizes, updateLegacySettings, PRECISIONS, SHARDED_CHECKPOINTERS, ACTIVATION_CHECKPOINTING } from './train';
export type { TrainConfig, BatchSizes } from './train';
export { trainConfigJsonSchema, trainConfigJsonSchemaText, trainConfigToYaml, SCHEMA_ID } from './schema';
export { parseDuration, maxSteps, maxTokens, maxEpochs } from './duration';
export type { Duration, Progress } from './duration';
export { parseOverride, applyOverrides } from './overrides';
export type { Override } from './overrides';
export { resolveInterpolations } from './interpolate';
export type { Resolver, ResolverContext, InterpolateOptions } from './interpolate';
export { defaultResolvers, pyGlob, findLatestCheckpoint, isUrl } from './resolvers';
export type { ResolverOptions } from './resolvers';
export { optimizerSpec, schedulerSpec, OPTIMIZER_NAMES, SCHEDULER_NAMES, SCHEDULER_UNITS } from './optimizer';
export type { OptimizerConfig, SchedulerConfig } from './optimizer';
export { dataSpec, evaluatorSpec, tokenizerSpec } from './data';
export type { DataConfig, EvaluatorConfig, TokenizerConfig } from './data';
export { wandbSpec, speedMonitorSpec, compilerSpec, fsdpSpec } from './infra';
export type { WandbConfig, SpeedMonitorConfig, CompilerConfig, FSDPConfig } from './infra';
export { parseModelConfig } from './model';
export type { ModelConfig } from './model';
