// Shared helpers for the model tests: tiny configs and tensor comparisons.
import { Tensor, tidy } from '../../../src/index';
import { ModelConfig, modelConfig } from '../../../src/config/model';

/** A tiny OLMo config (d_model 32 unless overridden) with dropout off unless overridden. */
export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({
    d_model: 32, n_heads: 4, n_layers: 2, mlp_ratio: 2, vocab_size: 40, embedding_size: 48,
    max_sequence_length: 32, eos_token_id: 39, pad_token_id: 0,
    attention_dropout: 0, residual_dropout: 0, embedding_dropout: 0, ...over,
  });
}

/** max |a - b| over all elements (float64). */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return tidy(() => a.to('float64').sub(b.to('float64')).abs().max().item());
}
