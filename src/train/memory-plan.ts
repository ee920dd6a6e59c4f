// How much memory a training run needs, per device, before anything is built: parameters,
// gradients, optimizer state, activations (with and without each activation_checkpointing
// strategy) and transient buffers, from the config alone. Used by `olmo-ts plan`, the trainer's
// start-up check (memory-check.ts) and the banner.
import { ModelConfig, effectiveNKvHeads, embeddingSize, layerNormHasBias, mlpHiddenSize } from '../config/model';
import { ACTIVATION_CHECKPOINTING, ActivationCheckpointingStrategy, TrainConfig } from '../config/train';
import { FINE_GRAINED_PARTS, shouldCheckpointBlock } from '../model/activation-checkpointing';
import { headChunkRows } from '../tensor/functional';

/** A strategy, or 'none' for no activation checkpointing. */
export type CheckpointingChoice = ActivationCheckpointingStrategy | 'none';

/**
 * How attention keeps its activations: 'materialized' keeps the (T × T) scores and probabilities
 * (libtorch 1.x's attention, and the llama block's explicit attention everywhere); 'fused' keeps
 * only q, k, v, the output and a log-sum-exp per row (flash-style kernels of libtorch 2.x).
 */
export type AttentionKernel = 'materialized' | 'fused';

/** What the estimate depends on. Sizes are per device (rank). */
export interface MemoryPlanInput {
  model: ModelConfig;
  /** Rows per forward/backward pass (device_train_microbatch_size). */
  microBatchSize: number;
  /** Tokens per row; default model.max_sequence_length. */
  seqLen?: number;
  /** Training precision; null means fp32. */
  precision: 'fp32' | 'amp_bf16' | 'amp_fp16' | null;
  optimizer: 'adamw' | 'lionw';
  /** The strategy the totals use (the per-strategy table covers all of them). */
  activationCheckpointing: ActivationCheckpointingStrategy | null;
  /** Micro-batches per step: with more than one, gradients exist while a micro-batch runs. Default 1. */
  microBatches?: number;
  /** Default: 'materialized' on libtorch 1.x and for llama blocks, else 'fused'. */
  attentionKernel?: AttentionKernel;
  /** How the model is spread over the ranks (default: one process). */
  parallel?: ParallelPlan;
  /** The LM head fused with the loss (fused_loss, on by default in training): no float32 logits. Default false. */
  fusedHead?: boolean;
}

/**
 * Data parallelism: a replicated model (one process, or NO_SHARD: every rank holds all of it), or
 * FSDP's sharding, where parameters, gradients and optimizer state are split over the shard group
 * and units are gathered in `paramBytes`-sized elements while they compute.
 */
export interface ParallelPlan {
  worldSize: number;
  /** 'none' (one process, unsharded) or fsdp.sharding_strategy. */
  strategy?: 'none' | 'NO_SHARD' | 'FULL_SHARD' | 'SHARD_GRAD_OP' | 'HYBRID_SHARD' | '_HYBRID_SHARD_ZERO2';
  /** fsdp.wrapping_strategy (which modules are units). */
  wrapping?: FsdpWrapping;
  /** fsdp.precision: pure reduces gradients in the compute dtype, mixed in fp32. */
  fsdpPrecision?: 'pure' | 'mixed';
  /** Ranks per node (HYBRID's default number of replicas is worldSize / localWorldSize). */
  localWorldSize?: number;
  /** fsdp.hybrid_sharding_num_model_replicas. */
  numReplicas?: number | null;
}

/** fsdp.wrapping_strategy values (null: the whole model is one unit). */
export type FsdpWrapping = null | 'by_block' | 'by_block_and_size' | 'by_block_group' | 'by_block_group_and_size' | 'size_based' | 'one_in_two' | 'one_in_three' | 'one_in_four' | 'one_in_five';

/** Bytes on one device. */
export interface MemoryBreakdown {
  /** float32 parameters. */
  params: number;
  /** float32 gradients (as many as parameters). */
  grads: number;
  /** AdamW: exp_avg + exp_avg_sq; LionW: exp_avg. */
  optimizerState: number;
  /** Peak activation memory of one micro-batch with the chosen checkpointing. */
  activations: number;
  /**
   * Buffers that live for part of a step: autocast's low-precision weight copies (saved for
   * backward); under FSDP the gathered units and a unit's unsharded gradient instead; under NO_SHARD
   * the flat fp32 buckets of the gradient all-reduce.
   */
  transient: number;
  /** Sum of the above. */
  total: number;
}

/** The estimate, with the details a reader (or the FSDP extension) needs. */
export interface MemoryPlan {
  input: Required<Omit<MemoryPlanInput, 'parallel'>> & { parallel: Required<Pick<ParallelPlan, 'worldSize' | 'strategy'>> & ParallelPlan };
  numParams: number;
  perDevice: MemoryBreakdown;
  /**
   * The peak while the model is built, before training: every rank builds the whole model in fp32
   * (identically seeded) before FSDP keeps its shard of it. Equal to the parameters unsharded.
   */
  setupPeak: number;
  /** FSDP: the units' parameter counts (root first) and the fraction of the state this rank keeps. */
  sharding: { units: number[]; shardFraction: number } | null;
  /** Peak activation bytes for each checkpointing choice ('none' first), same micro-batch. */
  activationsByStrategy: Record<CheckpointingChoice, number>;
  /** Pieces of the activation model, in bytes: one block kept whole, what a recomputed block keeps, the head. */
  detail: { blockFull: number; blockInput: number; blockFineGrained: number; embedding: number; headSaved: number; headTransient: number };
}

const MB = 1 << 20;

/** The parameter count of a config, without building the model (equals OLMo.numParams()). */
export function countParams(c: ModelConfig): { total: number; embedding: number; perBlock: number } {
  const d = c.d_model;
  const h = mlpHiddenSize(c);
  const kv = (d / c.n_heads) * effectiveNKvHeads(c);
  const V = embeddingSize(c);
  const bias = c.include_bias ? 1 : 0;
  const normParams = (size: number, affine: boolean) => (affine ? size * (layerNormHasBias(c) ? 2 : 1) : 0);
  const lin = (i: number, o: number) => i * o + bias * o;
  const ffIn = c.activation_type === 'swiglu' ? h / 2 : h;
  let block = lin(d, d) + lin(ffIn, d); // attn_out, ff_out
  if (c.attention_layer_norm) block += normParams(kv, c.attention_layer_norm_with_affine) + normParams(d, c.attention_layer_norm_with_affine);
  switch (c.block_type) {
    case 'sequential':
      block += 2 * normParams(d, c.layer_norm_with_affine) + lin(d, d + 2 * kv) + lin(d, h);
      break;
    case 'parallel':
      block += normParams(d, c.layer_norm_with_affine) + lin(d, d + 2 * kv + h);
      break;
    case 'llama':
      block += 2 * normParams(d, c.layer_norm_with_affine) + lin(d, d) + 2 * lin(d, kv) + lin(d, h);
      break;
  }
  const wpe = !(c.alibi || c.rope) ? c.max_sequence_length * d : 0;
  const embedding = V * d + wpe;
  const head = c.weight_tying ? 0 : lin(d, V);
  return { total: embedding + normParams(d, c.layer_norm_with_affine) + c.n_layers * block + head, embedding, perBlock: block };
}

/**
 * The FSDP units' parameter counts for a wrapping strategy, root (everything no wrapped module
 * claims) first, as src/dist/fsdp.ts planUnits forms them.
 */
export function unitParamCounts(c: ModelConfig, wrapping: FsdpWrapping): number[] {
  const { total, perBlock } = countParams(c);
  const d = c.d_model;
  const bias = c.include_bias ? 1 : 0;
  const V = embeddingSize(c);
  const wte = V * d;
  const ffOut = c.weight_tying ? 0 : V * d + bias * V;
  const units: number[] = [];
  const blocksWhere = (pick: (i: number) => boolean) => { for (let i = 0; i < c.n_layers; i++) if (pick(i)) units.push(perBlock); };
  const leaves = () => { if (!c.weight_tying) { units.push(wte); if (ffOut) units.push(ffOut); } };
  switch (wrapping) {
    case null: break;
    case 'by_block': blocksWhere(() => true); break;
    case 'by_block_and_size': blocksWhere(() => true); leaves(); break;
    case 'by_block_group': case 'by_block_group_and_size': {
      const g = Math.max(1, c.block_group_size);
      for (let i = 0; i < c.n_layers; i += g) units.push(perBlock * Math.min(g, c.n_layers - i));
      if (wrapping === 'by_block_group_and_size') leaves();
      break;
    }
    case 'size_based':
      if (perBlock >= 1e8) blocksWhere(() => true);
      if (!c.weight_tying && wte >= 1e8) units.push(wte);
      if (ffOut >= 1e8) units.push(ffOut);
      break;
    default: {
      const n = { one_in_two: 2, one_in_three: 3, one_in_four: 4, one_in_five: 5 }[wrapping];
      blocksWhere((i) => i % n === 0);
    }
  }
  const root = total - units.reduce((a, b) => a + b, 0);
  return [root, ...units];
}

/** Activation bytes of one block for N = rows × seqLen tokens: what stays for backward, by owner. */
interface BlockActivations {
  /** The block's input (what a recomputed block keeps). */
  input: number;
  /** Saved tensors outside fine_grained's recomputed parts. */
  kept: number;
  /** Saved inside each part fine_grained recomputes (its inputs are counted in `kept`/`input`). */
  parts: Record<string, number>;
}

function blockActivations(c: ModelConfig, rows: number, T: number, amp: boolean, kernel: AttentionKernel, training = true): BlockActivations {
  const N = rows * T;
  const d = c.d_model;
  const h = mlpHiddenSize(c);
  const kv = (d / c.n_heads) * effectiveNKvHeads(c);
  const sR = 4; // the residual stream and norms stay float32 (parameters are float32)
  const sA = amp ? 2 : 4; // matmul inputs and outputs
  const gqa = effectiveNKvHeads(c) !== c.n_heads;
  const scores = rows * c.n_heads * T * T;
  const attnDrop = training && c.attention_dropout > 0;
  const resDrop = training && c.residual_dropout > 0 ? N * d : 0; // bool masks, one byte each
  const norm = (): number => {
    switch (c.layer_norm_type) {
      case 'rms':
        return N * d * sR + N * 8; // normalised x before the weight, rsqrt per row
      case 'amd_compatible':
        return 2 * N * d * sR + N * 8;
      default:
        return N * 8; // mean and rstd per row; layer_norm keeps its input (counted by the caller)
    }
  };
  const explicit = c.block_type === 'llama';
  const att = (): number => {
    let b = 0;
    if (c.attention_layer_norm) b += N * (d + kv) * sA + norm() * 2; // normed q, k
    if (c.rope) b += N * (d + kv) * sA; // rotated q, k
    if (gqa) b += 2 * N * d * sA; // k, v repeated to every head
    if (explicit || kernel === 'materialized') {
      b += N * d * sA; // scaled q
      b += scores * (explicit && amp ? 4 + 2 : sA); // probabilities (explicit attention softmaxes in float32 under autocast)
      if (attnDrop) b += scores * (1 + sA); // mask and dropped probabilities
    } else {
      b += N * d * sA + rows * c.n_heads * T * 4; // output and log-sum-exp
    }
    b += N * d * sA; // heads re-assembled: attn_out's input
    return b;
  };
  const ffIn = c.activation_type === 'swiglu' ? h / 2 : h;
  const act = c.activation_type === 'swiglu' ? N * (h / 2) * sA : c.activation_type === 'relu' ? N * h * sA : 0;
  const clip = c.clip_qkv !== null ? N * (d + 2 * kv) * sA : 0;
  const input = N * d * sR;
  const parts: Record<string, number> = {};
  let kept = 0;
  switch (c.block_type) {
    case 'sequential':
      parts.attn_norm = norm();
      parts.attention = att();
      parts.ff_norm = norm();
      parts.act = act;
      // att_proj input, qkv, clip, residual mask, ff_norm input, ff_proj input and output, ff_out input, mask
      kept = N * d * sA + N * (d + 2 * kv) * sA + clip + resDrop + N * d * sR + N * d * sA + N * h * sA + N * ffIn * sA + resDrop;
      break;
    case 'parallel':
      parts.norm = norm();
      parts.attention = att();
      parts.act = act;
      kept = N * d * sA + N * (d + 2 * kv + h) * sA + clip + N * ffIn * sA + 2 * resDrop;
      break;
    case 'llama':
      parts.ff_norm = norm();
      parts.act = act;
      // attn_norm and attention are not fine_grained parts for llama blocks: their activations stay
      kept = norm() + att() + N * d * sA + N * (d + 2 * kv) * sA + clip + resDrop + N * d * sR + N * d * sA + N * h * sA + N * ffIn * sA + resDrop;
      break;
  }
  return { input, kept, parts };
}

function defaultKernel(c: ModelConfig): AttentionKernel {
  if (c.block_type === 'llama') return 'materialized';
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const v = (require('../tensor/runtime') as typeof import('../tensor/runtime')).buildInfo().torchVersion;
    return Number(v.split('.')[0]) >= 2 ? 'fused' : 'materialized';
  } catch {
    return 'materialized';
  }
}

/** The memory estimate for one device. */
export function planMemory(inp: MemoryPlanInput): MemoryPlan {
  const c = inp.model;
  const T = inp.seqLen ?? c.max_sequence_length;
  const rows = inp.microBatchSize;
  const amp = inp.precision === 'amp_bf16' || inp.precision === 'amp_fp16';
  const kernel = inp.attentionKernel ?? defaultKernel(c);
  const N = rows * T;
  const d = c.d_model;
  const V = embeddingSize(c);
  const sA = amp ? 2 : 4;
  const { total: numParams, embedding: embParams } = countParams(c);
  const blk = blockActivations(c, rows, T, amp, kernel);
  const partsTotal = Object.values(blk.parts).reduce((a, b) => a + b, 0);
  const blockFull = blk.input + blk.kept + partsTotal;
  const blockFineGrained = blk.input + blk.kept;
  const embedding = c.embedding_dropout > 0 ? N * d : 0;
  const lnF = c.layer_norm_type === 'rms' ? N * d * 4 : c.layer_norm_type === 'amd_compatible' ? 2 * N * d * 4 : 0;
  let headSaved: number, headTransient: number;
  if (inp.fusedHead) {
    // The fused head (native/fused_head.cc) keeps the ln_f input and its gradients of the hidden
    // states (float32), the head weight and bias (their dtype, float32), computed in the forward.
    headSaved = N * d * 4 + lnF + N * d * 4 + V * d * 4 + V * 4;
    // While it runs: one chunk of logits in the matmul dtype, the head's input (and weight, under
    // autocast) in that dtype, and under autocast a chunk's d weight before it is added up.
    headTransient = headChunkRows(V, N) * V * sA + N * d * sA + (amp ? 2 * V * d * 2 : 0);
  } else {
    // ln_f input, the head's input, float32 log-probabilities kept by cross-entropy.
    headSaved = N * d * 4 + lnF + N * d * sA + N * V * 4;
    // Logits in their own dtype plus a float32 copy while the loss is formed; in backward the
    // gradient of the log-probabilities and of the logits.
    headTransient = N * V * (sA + 4);
  }
  // A block's backward: gradients of a few hidden-sized activations at a time, plus (attention
  // that keeps its scores) a (T x T) gradient beyond the saved probabilities while its attention
  // runs backward.
  const blockGradTransient = 3 * N * d * 4 + N * mlpHiddenSize(c) * sA;
  const scoresGrad = kernel === 'materialized' || c.block_type === 'llama' ? rows * c.n_heads * T * T * 4 : 0;

  const activationPeak = (strategy: ActivationCheckpointingStrategy | null): number => {
    const fine = strategy === 'fine_grained';
    const savedOf = (i: number) => (shouldCheckpointBlock(strategy, i) ? blk.input : fine ? blockFineGrained : blockFull);
    let saved = embedding;
    for (let i = 0; i < c.n_layers; i++) saved += savedOf(i);
    let peak = saved + headSaved + headTransient; // the head's forward and backward
    // Block i runs backward with the blocks below it still holding their activations; a recomputed
    // block (or fine_grained part) holds its full activations again while it does.
    let below = saved;
    for (let i = c.n_layers - 1; i >= 0; i--) {
      below -= savedOf(i);
      const during = shouldCheckpointBlock(strategy, i) ? blk.input + blockFull
        : fine ? blockFineGrained + Math.max(0, ...Object.values(blk.parts)) : blockFull;
      peak = Math.max(peak, below + during + blockGradTransient + scoresGrad);
    }
    return peak;
  };

  const activationsByStrategy = { none: activationPeak(null) } as Record<CheckpointingChoice, number>;
  for (const s of ACTIVATION_CHECKPOINTING) activationsByStrategy[s] = activationPeak(s);

  const par = { strategy: 'none' as const, ...inp.parallel, worldSize: inp.parallel?.worldSize ?? 1 };
  const fsdp = par.strategy !== 'none' && par.strategy !== 'NO_SHARD';
  let shardFraction = 1;
  let units: number[] = [];
  let transient: number;
  if (fsdp) {
    // The shard group: the world, or (HYBRID) one replica's ranks.
    const hybrid = par.strategy === 'HYBRID_SHARD' || par.strategy === '_HYBRID_SHARD_ZERO2';
    const replicas = hybrid ? par.numReplicas ?? Math.max(1, Math.round(par.worldSize / (par.localWorldSize ?? par.worldSize))) : 1;
    shardFraction = 1 / Math.max(1, par.worldSize / replicas);
    units = unitParamCounts(c, par.wrapping ?? null);
    // Gathered in the compute dtype (the master stays fp32); a unit's gradient comes out in that
    // dtype, plus its fp32 copy to reduce under `mixed`.
    const pd = amp ? 2 : 4;
    const gradBytes = pd + (amp && par.fsdpPrecision === 'mixed' ? 4 : 0);
    const [root, ...rest] = units;
    const biggest = Math.max(0, ...rest);
    const keepsAll = par.strategy === 'SHARD_GRAD_OP' || par.strategy === '_HYBRID_SHARD_ZERO2';
    // FULL_SHARD: the root (kept from forward to backward), the unit computing and the next one
    // gathered ahead; SHARD_GRAD_OP: every unit from its forward to its backward.
    const gathered = keepsAll ? numParams * pd : (root! + 2 * biggest) * pd;
    transient = gathered + Math.max(root!, biggest) * gradBytes;
  } else {
    // Autocast casts each weight used by a matmul once per forward and autograd keeps the copy;
    // NO_SHARD's all-reduce copies the gradients into flat fp32 buckets.
    transient = (amp ? (numParams - embParams + (c.weight_tying ? V * d : 0)) * 2 : 0) + (par.worldSize > 1 ? numParams * 4 : 0);
  }
  const params = numParams * 4 * shardFraction;
  const grads = numParams * 4 * shardFraction;
  const optimizerState = numParams * 4 * (inp.optimizer === 'adamw' ? 2 : 1) * shardFraction;
  const activations = activationsByStrategy[inp.activationCheckpointing ?? 'none'];
  const perDevice: MemoryBreakdown = { params, grads, optimizerState, activations, transient, total: params + grads + optimizerState + activations + transient };
  return {
    input: {
      model: c, microBatchSize: rows, seqLen: T, precision: inp.precision ?? 'fp32', optimizer: inp.optimizer,
      activationCheckpointing: inp.activationCheckpointing, microBatches: inp.microBatches ?? 1, attentionKernel: kernel,
      parallel: par, fusedHead: inp.fusedHead ?? false,
    },
    numParams,
    perDevice,
    setupPeak: numParams * 4,
    sharding: fsdp ? { units, shardFraction } : null,
    activationsByStrategy,
    detail: { blockFull, blockInput: blk.input, blockFineGrained, embedding, headSaved, headTransient },
  };
}

/**
 * planMemory for a training config (micro-batch, precision, optimizer and strategy from it). With
 * `ranks`, the run's world (size, ranks per node) and whether it is sharded (the trainer shards
 * several processes as `fsdp:` says; one process only when asked).
 */
export function planTrainMemory(cfg: TrainConfig, over: Partial<MemoryPlanInput> = {}, ranks?: { worldSize: number; localWorldSize?: number; fsdp?: boolean }): MemoryPlan {
  const ws = ranks?.worldSize ?? 1;
  const sharded = ranks !== undefined && (ws > 1 || ranks.fsdp === true) && cfg.fsdp.sharding_strategy !== 'NO_SHARD';
  const rowsTotal = cfg.global_train_batch_size / ws;
  const rows = Math.min(cfg.device_train_microbatch_size, rowsTotal);
  const parallel: ParallelPlan = {
    worldSize: ws,
    strategy: sharded ? cfg.fsdp.sharding_strategy : ws > 1 ? 'NO_SHARD' : 'none',
    wrapping: cfg.fsdp.wrapping_strategy,
    fsdpPrecision: cfg.fsdp.precision,
    localWorldSize: ranks?.localWorldSize ?? ws,
    numReplicas: cfg.fsdp.hybrid_sharding_num_model_replicas,
  };
  return planMemory({
    model: cfg.model,
    microBatchSize: rows,
    seqLen: cfg.model.max_sequence_length,
    precision: cfg.precision,
    optimizer: cfg.optimizer.name === 'lionw' ? 'lionw' : 'adamw',
    activationCheckpointing: cfg.activation_checkpointing,
    microBatches: Math.ceil(rowsTotal / rows),
    parallel,
    fusedHead: cfg.fused_loss ?? true, // src/train/loss.ts usesFusedLoss
    ...over,
  });
}

function gib(b: number): string {
  return `${(b / 2 ** 30).toFixed(1)} GiB`;
}

/** Human units: MiB below a GiB, else GiB with one decimal. */
export function formatBytes(b: number): string {
  return b >= 2 ** 30 ? gib(b) : `${(b / MB).toFixed(b >= 100 * MB ? 0 : 1)} MiB`;
}

/** Lines for `olmo-ts plan`: the estimate per device. */
export function memoryPlanLines(plan: MemoryPlan): string[] {
  const p = plan.perDevice;
  const i = plan.input;
  const lines = [
    `parameters       ${formatBytes(p.params).padStart(10)}  (${(plan.numParams / 1e6).toFixed(plan.numParams < 1e7 ? 2 : 1)}M float32)`,
    `gradients        ${formatBytes(p.grads).padStart(10)}`,
    `optimizer state  ${formatBytes(p.optimizerState).padStart(10)}  (${i.optimizer === 'adamw' ? 'AdamW exp_avg + exp_avg_sq' : 'LionW exp_avg'})`,
    `activations      ${formatBytes(p.activations).padStart(10)}  (peak; ${i.microBatchSize} × ${i.seqLen} tokens, activation_checkpointing: ${i.activationCheckpointing ?? 'null'}${i.fusedHead ? '' : ', fused_loss: false'})`,
  ];
  const par = i.parallel;
  if (plan.sharding) {
    const shardOf = Math.round(1 / plan.sharding.shardFraction);
    lines[0] += `, this rank's 1/${shardOf} (${par.strategy}, world ${par.worldSize})`;
    const [root, ...units] = plan.sharding.units;
    lines.push(`gathered units   ${formatBytes(p.transient).padStart(10)}  (${units.length} unit${units.length === 1 ? '' : 's'} + root of ${(root! / 1e6).toFixed(1)}M params by ${par.wrapping ?? 'null'} wrapping; a unit's gradient)`);
  } else if (p.transient) {
    lines.push(`${par.worldSize > 1 ? 'copies/buckets ' : 'autocast copies'}  ${formatBytes(p.transient).padStart(10)}  (${par.worldSize > 1 ? 'autocast weight copies and the fp32 all-reduce buckets' : 'low-precision weights kept for backward'})`);
  }
  lines.push(`total            ${formatBytes(p.total).padStart(10)}`);
  if (plan.setupPeak > p.total) lines.push(`at setup         ${formatBytes(plan.setupPeak).padStart(10)}  (every rank builds the whole fp32 model before it is sharded)`);
  return lines;
}

/** The per-strategy table: activations and total for each activation_checkpointing value. */
export function strategyTableLines(plan: MemoryPlan): string[] {
  const base = plan.perDevice.total - plan.perDevice.activations;
  const none = plan.activationsByStrategy.none;
  const rows = (Object.entries(plan.activationsByStrategy) as Array<[CheckpointingChoice, number]>).map(([s, a]) => {
    const mark = (plan.input.activationCheckpointing ?? 'none') === s ? ' <' : '';
    return `${s.padEnd(14)} ${formatBytes(a).padStart(10)}  ${(a / none).toFixed(2).padStart(5)}x   total ${formatBytes(base + a).padStart(10)}${mark}`;
  });
  return [`${'strategy'.padEnd(14)} ${'activations'.padStart(10)}  ${'ratio'.padStart(5)}    total`, ...rows];
}

/** Parts fine_grained recomputes for this config's block type (for display). */
export function fineGrainedParts(c: ModelConfig): readonly string[] {
  return FINE_GRAINED_PARTS[c.block_type];
}
