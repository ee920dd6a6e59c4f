// How much memory a training run needs, per device, before anything is built: parameters,
// gradients, optimizer state, activations (with and without each activation_checkpointing
// strategy) and transient buffers, from the config alone. Used by `olmo-ts plan`, the trainer's
// start-up check against the memory actually available (cgroup limit or RAM), and the banner.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ModelConfig, effectiveNKvHeads, embeddingSize, layerNormHasBias, mlpHiddenSize } from '../config/model';
import { ACTIVATION_CHECKPOINTING, ActivationCheckpointingStrategy, TrainConfig } from '../config/train';
import { ConfigError } from '../config/errors';
import { FINE_GRAINED_PARTS, shouldCheckpointBlock } from '../model/activation-checkpointing';

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
  /**
   * Data parallelism. Today every rank holds a full replica (DDP-style), so per-rank memory does
   * not depend on worldSize. The FSDP extension adds `strategy` here (see shardedFraction).
   */
  parallel?: { worldSize: number };
}

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
  /** Buffers that live for part of a step: autocast's low-precision weight copies (saved for backward). */
  transient: number;
  /** Sum of the above. */
  total: number;
}

/** The estimate, with the details a reader (or the FSDP extension) needs. */
export interface MemoryPlan {
  input: Required<Omit<MemoryPlanInput, 'parallel'>> & { parallel: { worldSize: number } };
  numParams: number;
  perDevice: MemoryBreakdown;
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
  // ln_f input, the head's input, float32 log-probabilities kept by cross-entropy.
  const headSaved = N * d * 4 + lnF + N * d * sA + N * V * 4;
  // Logits in their own dtype plus a float32 copy while the loss is formed; in backward the
  // gradient of the log-probabilities and of the logits.
  const headTransient = N * V * (sA + 4);
  // A block's backward: gradients of a few hidden-sized activations at a time, plus (attention
  // that keeps its scores) a (T x T) gradient beyond the saved probabilities while a recomputed
  // block's attention runs backward.
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
      const during = shouldCheckpointBlock(strategy, i) ? blk.input + blockFull + scoresGrad
        : fine ? blockFineGrained + Math.max(0, ...Object.values(blk.parts)) + scoresGrad : blockFull;
      peak = Math.max(peak, below + during + blockGradTransient);
    }
    return peak;
  };

  const activationsByStrategy = { none: activationPeak(null) } as Record<CheckpointingChoice, number>;
  for (const s of ACTIVATION_CHECKPOINTING) activationsByStrategy[s] = activationPeak(s);

  const params = numParams * 4;
  const grads = numParams * 4;
  const optimizerState = numParams * 4 * (inp.optimizer === 'adamw' ? 2 : 1);
  // Autocast casts each weight used by a matmul once per forward and autograd keeps the copy.
  const transient = amp ? (numParams - embParams + (c.weight_tying ? V * d : 0)) * 2 : 0;
  const activations = activationsByStrategy[inp.activationCheckpointing ?? 'none'];
  const perDevice: MemoryBreakdown = { params, grads, optimizerState, activations, transient, total: params + grads + optimizerState + activations + transient };
  return {
    input: {
      model: c, microBatchSize: rows, seqLen: T, precision: inp.precision ?? 'fp32', optimizer: inp.optimizer,
      activationCheckpointing: inp.activationCheckpointing, microBatches: inp.microBatches ?? 1, attentionKernel: kernel,
      parallel: { worldSize: inp.parallel?.worldSize ?? 1 },
    },
    numParams,
    perDevice,
    activationsByStrategy,
    detail: { blockFull, blockInput: blk.input, blockFineGrained, embedding, headSaved, headTransient },
  };
}

/** planMemory for a training config (micro-batch, precision, optimizer and strategy from it). */
export function planTrainMemory(cfg: TrainConfig, over: Partial<MemoryPlanInput> = {}): MemoryPlan {
  const rows = Math.min(cfg.device_train_microbatch_size, cfg.global_train_batch_size);
  return planMemory({
    model: cfg.model,
    microBatchSize: rows,
    seqLen: cfg.model.max_sequence_length,
    precision: cfg.precision,
    optimizer: cfg.optimizer.name === 'lionw' ? 'lionw' : 'adamw',
    activationCheckpointing: cfg.activation_checkpointing,
    microBatches: Math.ceil(cfg.global_train_batch_size / rows),
    ...over,
  });
}

/** Memory this process can use, and where the number comes from. */
export interface AvailableMemory {
  bytes: number;
  /** e.g. "cgroup memory.max 24.0 GiB, 3.1 GiB in use" or "MemAvailable". */
  source: string;
}

function readNumber(file: string): number | null {
  try {
    const s = fs.readFileSync(file, 'utf8').trim();
    if (s === 'max' || s === '') return null;
    const n = Number(s);
    return Number.isFinite(n) && n > 0 && n < 2 ** 62 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Memory available to this process now: the smaller of what its cgroup still allows (limit minus
 * usage, cgroup v2 or v1) and the kernel's MemAvailable (free RAM plus reclaimable cache).
 */
export function availableMemory(): AvailableMemory {
  let bytes = os.freemem();
  let source = 'free RAM';
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) {
      bytes = Number(m[1]) * 1024;
      source = `MemAvailable ${gib(bytes)}`;
    }
  } catch { /* not Linux */ }
  const candidates: Array<[string, string]> = [
    ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'],
    ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'],
  ];
  for (const [limitFile, usageFile] of candidates) {
    const limit = readNumber(limitFile);
    if (limit === null || limit >= os.totalmem()) continue;
    const used = readNumber(usageFile) ?? 0;
    const left = Math.max(0, limit - used);
    if (left < bytes) {
      bytes = left;
      source = `cgroup limit ${gib(limit)}, ${gib(used)} in use`;
    }
    break;
  }
  return { bytes, source };
}

function gib(b: number): string {
  return `${(b / 2 ** 30).toFixed(1)} GiB`;
}

/** Human units: MiB below a GiB, else GiB with one decimal. */
export function formatBytes(b: number): string {
  return b >= 2 ** 30 ? gib(b) : `${(b / MB).toFixed(b >= 100 * MB ? 0 : 1)} MiB`;
}

/** The verdict of checking a plan against the memory available. */
export interface MemoryCheck {
  verdict: 'ok' | 'warn' | 'refuse';
  /** One line naming the estimate, the memory available and what to change. */
  message: string;
}

/** Warn above this share of the available memory (the estimate is approximate). */
export const MEMORY_WARN_FRACTION = 0.85;

/**
 * Compares the estimate with what is available: refuse when it does not fit (the kernel would
 * kill the run with no message), warn when it is close.
 */
export function checkMemory(plan: MemoryPlan, available: AvailableMemory): MemoryCheck {
  const p = plan.perDevice;
  const est = `parameters ${formatBytes(p.params)} + gradients ${formatBytes(p.grads)} + optimizer state ${formatBytes(p.optimizerState)} + activations ${formatBytes(p.activations)}` +
    (p.transient ? ` + autocast weight copies ${formatBytes(p.transient)}` : '') + ` = ${formatBytes(p.total)}`;
  const avail = `${formatBytes(available.bytes)} available (${available.source})`;
  if (p.total <= MEMORY_WARN_FRACTION * available.bytes) return { verdict: 'ok', message: `estimated memory ${est}; ${avail}` };
  const hints = hintsFor(plan);
  if (p.total > available.bytes) {
    return { verdict: 'refuse', message: `this run needs about ${formatBytes(p.total)} but only ${avail}: ${est}. ${hints} (OLMO_TS_MEMORY_CHECK=warn starts it anyway)` };
  }
  return { verdict: 'warn', message: `this run needs about ${formatBytes(p.total)} of ${avail} (${Math.round((100 * p.total) / available.bytes)}%): ${est}. If it is killed, ${hints.charAt(0).toLowerCase()}${hints.slice(1)}` };
}

function hintsFor(plan: MemoryPlan): string {
  const i = plan.input;
  const out: string[] = [];
  const act = plan.perDevice.activations;
  const whole = plan.activationsByStrategy.whole_layer;
  if (i.activationCheckpointing !== 'whole_layer' && whole < act * 0.8) out.push(`activation_checkpointing: whole_layer (activations ${formatBytes(whole)})`);
  if (i.microBatchSize > 1) out.push(`a smaller device_train_microbatch_size (now ${i.microBatchSize})`);
  if (i.optimizer === 'adamw') out.push('optimizer.name: lionw (one state tensor instead of two)');
  return out.length ? `Try ${out.join(', or ')}.` : 'Use a smaller model or a machine with more memory.';
}

/** Lines for the start-up banner and `olmo-ts plan`: the estimate per device. */
export function memoryPlanLines(plan: MemoryPlan): string[] {
  const p = plan.perDevice;
  const i = plan.input;
  const lines = [
    `parameters       ${formatBytes(p.params).padStart(10)}  (${(plan.numParams / 1e6).toFixed(plan.numParams < 1e7 ? 2 : 1)}M float32)`,
    `gradients        ${formatBytes(p.grads).padStart(10)}`,
    `optimizer state  ${formatBytes(p.optimizerState).padStart(10)}  (${i.optimizer === 'adamw' ? 'AdamW exp_avg + exp_avg_sq' : 'LionW exp_avg'})`,
    `activations      ${formatBytes(p.activations).padStart(10)}  (peak; ${i.microBatchSize} × ${i.seqLen} tokens, activation_checkpointing: ${i.activationCheckpointing ?? 'null'})`,
  ];
  if (p.transient) lines.push(`autocast copies  ${formatBytes(p.transient).padStart(10)}  (low-precision weights kept for backward)`);
  lines.push(`total            ${formatBytes(p.total).padStart(10)}`);
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

/** Raised before a model is built when the run would not fit in memory. */
export class InsufficientMemoryError extends Error {
  readonly code = 'ERR_INSUFFICIENT_MEMORY';
  constructor(message: string, readonly plan: MemoryPlan, readonly available: AvailableMemory) {
    super(message);
    this.name = 'InsufficientMemoryError';
  }
}

/** What to do when the estimate does not fit: refuse (default), warn, or skip the check. */
export type MemoryCheckMode = 'refuse' | 'warn' | 'off';

/** OLMO_TS_MEMORY_CHECK=refuse|warn|off, else `fallback`. */
export function memoryCheckModeFromEnv(fallback: MemoryCheckMode = 'refuse'): MemoryCheckMode {
  const v = process.env.OLMO_TS_MEMORY_CHECK;
  if (v === undefined || v === '') return fallback;
  if (v === 'refuse' || v === 'warn' || v === 'off') return v;
  throw new ConfigError('OLMO_TS_MEMORY_CHECK', `got ${JSON.stringify(v)}, expected refuse, warn or off`);
}

/**
 * The start-up check (before anything is built): estimates the run and compares it with the memory
 * available. Throws InsufficientMemoryError when it does not fit (mode 'refuse'), calls `warn` when
 * it is close or does not fit (mode 'warn'). Returns the plan and the verdict for the banner.
 */
export function preflightMemoryCheck(cfg: TrainConfig, o: { mode?: MemoryCheckMode; warn: (message: string) => void; available?: AvailableMemory }): MemoryPreflight {
  const mode = o.mode ?? memoryCheckModeFromEnv();
  const plan = planTrainMemory(cfg);
  if (mode === 'off') return { plan, check: null, available: null };
  const available = o.available ?? availableMemory();
  const check = checkMemory(plan, available);
  if (check.verdict === 'refuse' && mode === 'refuse') throw new InsufficientMemoryError(check.message, plan, available);
  if (check.verdict !== 'ok') o.warn(check.message);
  return { plan, check, available };
}

/** What the start-up check found (kept by the trainer for the banner). */
export interface MemoryPreflight {
  plan: MemoryPlan;
  /** null when the check is off. */
  check: MemoryCheck | null;
  available: AvailableMemory | null;
}

/**
 * Lines for the start-up banner (for src/train/logging/banner.ts): the estimate per device by
 * kind, and the memory available with the verdict.
 */
export function memoryBannerLines(m: MemoryPreflight): string[] {
  const p = m.plan.perDevice;
  const i = m.plan.input;
  const lines = [
    `memory: about ${formatBytes(p.total)} per device = parameters ${formatBytes(p.params)} + gradients ${formatBytes(p.grads)} + optimizer state ${formatBytes(p.optimizerState)}` +
      ` + activations ${formatBytes(p.activations)}${p.transient ? ` + autocast copies ${formatBytes(p.transient)}` : ''}` +
      ` (micro-batch ${i.microBatchSize} x ${i.seqLen}, activation_checkpointing: ${i.activationCheckpointing ?? 'null'})`,
  ];
  if (m.available && m.check) {
    const pct = Math.round((100 * p.total) / Math.max(1, m.available.bytes));
    lines.push(`        ${formatBytes(m.available.bytes)} available (${m.available.source}): ${pct}% of it${m.check.verdict === 'ok' ? '' : ' - close to the limit'}`);
  }
  return lines;
}
