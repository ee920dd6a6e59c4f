// The infrastructure sections of a TrainConfig: `wandb:`, `speed_monitor:`, `compile:` and `fsdp:`
// (OLMo's WandbConfig, SpeedMonitorConfig, CompilerConfig, FSDPConfig; v0.2.5 keys and defaults).
import { bool, float, Infer, int, list, nullable, oneOf, section, str } from './spec';

/** The `wandb:` section (Weights & Biases logging; the whole section is optional). */
export const wandbSpec = section(
  {
    project: nullable(str({ doc: 'W&B project.' })),
    entity: nullable(str({ default: 'ai2-llm', doc: 'W&B entity (user or team).' })),
    group: nullable(str({ doc: 'W&B run group.' })),
    name: nullable(str({ doc: 'W&B run name (OLMo configs use ${run_name}).' })),
    tags: nullable(list(str({ doc: 'A tag.' }), { default: ['watching'], doc: 'W&B run tags.' })),
    log_artifacts: bool({ default: false, doc: 'Upload checkpoints as W&B artifacts.' }),
    rank_zero_only: bool({ default: true, doc: 'Only rank 0 logs to W&B.' }),
    log_interval: int({ default: 1, min: 1, doc: 'Log metrics to W&B every this many steps.' }),
  },
  { title: 'WandbConfig', doc: 'Weights & Biases logging (OLMo WandbConfig).' },
);
/** The parsed `wandb:` section. */
export interface WandbConfig extends Infer<typeof wandbSpec> {}

/** The `speed_monitor:` section. */
export const speedMonitorSpec = section(
  {
    window_size: int({ default: 100, min: 1, doc: 'Throughput is averaged over this many recent steps.' }),
    gpu_flops_available: nullable(float({
      min: 0,
      exclusiveMin: true,
      doc: 'Peak FLOP/s of one device, used for MFU; null looks it up from the device (or leaves MFU out).',
    })),
  },
  { title: 'SpeedMonitorConfig', doc: 'Throughput monitoring (OLMo SpeedMonitorConfig).' },
);
/** The parsed `speed_monitor:` section. */
export interface SpeedMonitorConfig extends Infer<typeof speedMonitorSpec> {}

/** The `compile:` section (torch.compile settings; olmo-ts runs eager and records them). */
export const compilerSpec = section(
  {
    mode: nullable(str({ doc: 'torch.compile mode: "default", "reduce-overhead" or "max-autotune".' })),
    fullgraph: bool({ default: false, doc: 'Whether it is OK to break the model into several subgraphs when compiling (not compatible with FSDP).' }),
    backend: str({ default: 'inductor', doc: 'The torch.compile backend.' }),
  },
  { title: 'CompilerConfig', doc: 'Model compilation (OLMo CompilerConfig; null = no compilation).' },
);
/** The parsed `compile:` section. */
export interface CompilerConfig extends Infer<typeof compilerSpec> {}

/** FSDP wrapping strategies (FSDPWrapStrategy). */
export const FSDP_WRAP_STRATEGIES = [
  'by_block', 'by_block_and_size', 'by_block_group', 'by_block_group_and_size', 'size_based',
  'one_in_two', 'one_in_three', 'one_in_four', 'one_in_five',
] as const;
/** FSDP precision modes (FSDPPrecision). */
export const FSDP_PRECISIONS = ['pure', 'mixed'] as const;
/** torch.distributed.fsdp.ShardingStrategy names. */
export const SHARDING_STRATEGIES = ['FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD', 'HYBRID_SHARD', '_HYBRID_SHARD_ZERO2'] as const;

/** The `fsdp:` section. */
export const fsdpSpec = section(
  {
    use_orig_params: bool({ default: true, doc: 'Must be true when compiling or tracking the parameter norm during training.' }),
    sharding_strategy: oneOf(SHARDING_STRATEGIES, { default: 'FULL_SHARD', doc: 'How parameters, gradients and optimizer state are sharded across ranks.' }),
    wrapping_strategy: nullable(oneOf(FSDP_WRAP_STRATEGIES, {
      doc: 'Which modules get their own FSDP unit; null wraps the whole model in one unit. by_block: each block; *_and_size: also wte and ff_out; by_block_group: each block group; one_in_N: every Nth block.',
    })),
    hybrid_sharding_num_model_replicas: nullable(int({
      min: 1,
      doc: 'HYBRID_SHARD / _HYBRID_SHARD_ZERO2: how many model replicas (shard groups) the ranks form; null = one per node (world size / LOCAL_WORLD_SIZE). A later OLMo key.',
    })),
    precision: oneOf(FSDP_PRECISIONS, {
      default: 'pure',
      doc: '"pure": parameters, gradient reduction and buffers in the autocast dtype; "mixed": the same but reduce gradients in fp32.',
    }),
  },
  { title: 'FSDPConfig', doc: 'Fully sharded data parallel settings (OLMo FSDPConfig).' },
);
/** The parsed `fsdp:` section. */
export interface FSDPConfig extends Infer<typeof fsdpSpec> {}
