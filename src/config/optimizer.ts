// The `optimizer:` and `scheduler:` sections of a TrainConfig (OLMo's OptimizerConfig and
// SchedulerConfig, v0.2.5 keys, plus warmup_min_lr from OLMo v0.3.0 whose null default keeps
// v0.2.5's behaviour). The schedule formulas themselves live in src/optim/scheduler.ts.
import { bool, float, int, Infer, list, nullable, oneOf, section } from './spec';

/** Optimizer names OLMo builds (OptimizerType). */
export const OPTIMIZER_NAMES = ['lionw', 'adamw'] as const;
/** Learning-rate schedule names OLMo builds (SchedulerType). */
export const SCHEDULER_NAMES = ['cosine_with_warmup', 'linear_with_warmup', 'inverse_sqrt_with_warmup', 'max_scheduler', 'constant'] as const;
/** What a schedule's t_warmup / t_max / current position count (SchedulerUnits). */
export const SCHEDULER_UNITS = ['steps', 'tokens'] as const;

/** The `optimizer:` section. */
export const optimizerSpec = section(
  {
    name: oneOf(OPTIMIZER_NAMES, {
      default: 'lionw',
      doc: 'The optimizer: "adamw" (torch AdamW with eps=1e-5) or "lionw" (Lion with decoupled weight decay).',
    }),
    learning_rate: float({ default: 1.0e-4, min: 0, doc: 'The peak learning rate; the scheduler scales it step by step.' }),
    weight_decay: float({ default: 0.01, min: 0, doc: 'Decoupled weight decay, applied only to the parameter group OLMo decays.' }),
    betas: list(float({ min: 0, max: 1, exclusiveMax: true, doc: 'A beta coefficient.' }), {
      default: [0.9, 0.95],
      length: 2,
      doc: 'The (beta1, beta2) pair: moving-average coefficients of the gradient and its square (AdamW) or the interpolation/update coefficients (Lion).',
    }),
    no_decay_norm_and_bias: nullable(bool({
      doc: 'Deprecated. Use decay_norm_and_bias and decay_embeddings instead. When set, it overrides both: decay_norm_and_bias = decay_embeddings = !no_decay_norm_and_bias.',
    })),
    decay_norm_and_bias: bool({ default: false, doc: 'Apply weight decay to layer-norm weights and all biases too.' }),
    decay_embeddings: bool({ default: false, doc: 'Apply weight decay to the token (and positional) embeddings too.' }),
    metrics_log_interval: nullable(int({
      min: 1,
      doc: 'The interval (in steps) with which to collect and log detailed parameter-specific metrics. Defaults to the wandb log_interval when null.',
    })),
  },
  { title: 'OptimizerConfig', doc: 'Optimizer settings (OLMo OptimizerConfig).' },
);
/** The parsed `optimizer:` section. */
export interface OptimizerConfig extends Infer<typeof optimizerSpec> {}

/** The `scheduler:` section. */
export const schedulerSpec = section(
  {
    name: oneOf(SCHEDULER_NAMES, {
      default: 'cosine_with_warmup',
      doc: 'The learning-rate schedule: cosine_with_warmup, linear_with_warmup, inverse_sqrt_with_warmup, max_scheduler (the larger of cosine and inverse-sqrt at each step) or constant.',
    }),
    units: oneOf(SCHEDULER_UNITS, {
      default: 'steps',
      doc: 'Whether t_warmup, t_max and grad_clip_warmup_steps count optimizer steps or training tokens seen.',
    }),
    t_warmup: float({
      default: 100,
      min: 0,
      doc: 'Length of the linear warmup, in `units` (truncated to an integer as OLMo does). The LR rises from warmup_min_lr (default 10% of the peak) to the peak.',
    }),
    t_max: nullable(float({
      min: 0,
      doc: 'Where the decay ends, in `units` (truncated to an integer). Null means the end of training (max_duration converted to the schedule units).',
    })),
    alpha_f: float({ default: 0.1, min: 0, doc: 'The final LR as a fraction of the peak (eta_min = alpha_f * learning_rate) for the cosine and linear schedules.' }),
    grad_clip_warmup_steps: nullable(float({
      min: 0,
      doc: 'The warmup period (in `units`) during which max_grad_norm and max_grad_norm_ratio are multiplied by grad_clip_warmup_factor.',
    })),
    grad_clip_warmup_factor: nullable(float({
      min: 0,
      doc: 'The ratio of the max allowed gradient norm (or norm ratio) during the grad-clip warmup period vs after it.',
    })),
    warmup_min_lr: nullable(float({
      min: 0,
      doc: 'The LR at the start of warmup (added in OLMo v0.3.0). Null means 10% of the peak learning rate, which is what v0.2.5 always uses. Must be below learning_rate.',
    })),
  },
  { title: 'SchedulerConfig', doc: 'Learning-rate (and grad-clip warmup) schedule (OLMo SchedulerConfig).' },
);
/** The parsed `scheduler:` section. */
export interface SchedulerConfig extends Infer<typeof schedulerSpec> {}
