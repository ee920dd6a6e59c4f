// OLMo's activation checkpointing policy: which blocks (or which parts of a block) are recomputed
// in backward instead of keeping their activations, for each `activation_checkpointing` strategy.
// The mechanism is CheckpointTape (src/tensor/checkpoint.ts); the blocks call it (block.ts).
import type { ActivationCheckpointingStrategy } from '../config/train';

export type { ActivationCheckpointingStrategy };

/**
 * OLMo's should_checkpoint_block: whether block `blockIdx` (0-based, over all layers, groups or
 * not) is recomputed as a whole. whole_layer: every block; one_in_N: blocks with idx % N == 0;
 * two_in_three / three_in_four: blocks with idx % 3 != 0 / idx % 4 != 0 (these two are from
 * OLMo v0.3.0; v0.2.5 has the other five). fine_grained checkpoints inside blocks instead.
 */
export function shouldCheckpointBlock(strategy: ActivationCheckpointingStrategy | null, blockIdx: number): boolean {
  switch (strategy) {
    case 'whole_layer':
      return true;
    case 'one_in_two':
      return blockIdx % 2 === 0;
    case 'one_in_three':
      return blockIdx % 3 === 0;
    case 'one_in_four':
      return blockIdx % 4 === 0;
    case 'two_in_three':
      return blockIdx % 3 !== 0;
    case 'three_in_four':
      return blockIdx % 4 !== 0;
    default:
      return false;
  }
}

/**
 * OLMo's fine_grained strategy, per block type: the parts recomputed (each separately; the linear
 * projections between them keep their activations).
 *   sequential: attn_norm, attention (q/k norm, RoPE, softmax attention, attn_out), ff_norm, act
 *   parallel:   norm, attention, act
 *   llama:      ff_norm, act
 */
export const FINE_GRAINED_PARTS = {
  sequential: ['attn_norm', 'attention', 'ff_norm', 'act'],
  parallel: ['norm', 'attention', 'act'],
  llama: ['ff_norm', 'act'],
} as const;

/** Number of blocks a strategy recomputes whole, of nLayers. */
export function checkpointedBlockCount(strategy: ActivationCheckpointingStrategy | null, nLayers: number): number {
  let n = 0;
  for (let i = 0; i < nLayers; i++) if (shouldCheckpointBlock(strategy, i)) n++;
  return n;
}

/**
 * Why a strategy cannot run on a sharded (FSDP) model whose units are the blocks `isUnit` says,
 * or null when it can. A recomputed block must be a unit of its own: its backward then runs once
 * per recompute, as FSDP's post-backward (free, reduce-scatter) expects. fine_grained splits a
 * block's backward over several passes and is not supported with sharding yet.
 */
export function shardedCheckpointingProblem(strategy: ActivationCheckpointingStrategy | null, nLayers: number, isUnit: (blockIdx: number) => boolean): string | null {
  if (strategy === null) return null;
  if (strategy === 'fine_grained') return 'fine_grained recomputes parts of a block in separate backward passes, which sharded (FSDP) units do not support yet';
  for (let i = 0; i < nLayers; i++) {
    if (shouldCheckpointBlock(strategy, i) && !isUnit(i)) return `block ${i} is recomputed but is not an FSDP unit of its own (use fsdp.wrapping_strategy: by_block)`;
  }
  return null;
}
