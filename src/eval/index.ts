// Evaluation (OLMo's olmo/eval): perplexity and downstream evaluators, their construction from a
// config, the in-loop interface the trainer calls, and the collective they shard over.
export * from './collective';
export * from './evaluator';
export * from './icl-metric';
export * from './tasks';
export * from './task-files';
export * from './lm';
export * from './downstream';
export * from './build';
export * from './in-loop';
