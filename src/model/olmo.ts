// The OLMo model: embeddings, blocks (optionally grouped), final norm and tied or untied output,
// with OLMo's state-dict names, its forward pass (masks, ALiBi, KV cache), loss, parameter count,
// FLOPs per token and init. Generation and checkpoints live in generate.ts and checkpoint.ts.
import { Tensor } from '../tensor/tensor';
import { arange } from '../tensor/creation';
import { tidy } from '../tensor/scope';
import { isGradEnabled, noGrad } from '../tensor/autograd';
import { CheckpointTape } from '../tensor/checkpoint';
import { HeadLossResult, crossEntropy, headLoss, linear } from '../tensor/functional';
import { Device } from '../tensor/dtype';
import { ArgumentError } from '../native/errors';
import { ModelConfig, embeddingSize, parseModelConfig } from '../config/model';
import { Module, ModuleDict, ModuleList } from '../nn/module';
import { Embedding, Linear } from '../nn/linear';
import { Dropout } from '../nn/dropout';
import { LayerNormBase } from '../nn/layer-norm';
import { BufferCache, FLOAT32_MIN, alibiAttentionBias, causalAttentionBias } from './attention';
import { LayerPast, OLMoBlock, buildBlock, buildLayerNorm } from './block';
import { ActivationCheckpointingStrategy, shouldCheckpointBlock } from './activation-checkpointing';
import { initWeight } from './init';
import type { GenerateOptions } from './generate';

/** Options for building a model. */
export interface OLMoOptions {
  /** Where to create parameters; default the config's init_device (unless null/"meta"), else cpu. */
  device?: Device;
  /** Initialise weights with config.init_fn (default true); false leaves them uninitialised for a load. */
  initParams?: boolean;
}

/** Inputs of forward() besides the token ids. */
export interface ForwardOptions {
  /** (B, S) with 1 for tokens to attend to and 0 for padding; S covers past + current tokens. */
  attentionMask?: Tensor | null;
  /**
   * (B|1, 1, S, S) bool/int8 (true = may attend) or float (added to the scores), e.g. a causal
   * block-diagonal mask for documents packed into one sequence (see documentAttentionBias).
   * Replaces the default causal mask.
   */
  attentionBias?: Tensor | null;
  /** Keys/values from a previous call with useCache, one pair per layer. */
  pastKeyValues?: LayerPast[] | null;
  /** Return each layer's keys/values for incremental decoding. */
  useCache?: boolean;
  /** Only compute logits for the last position (B, 1, V). */
  lastLogitsOnly?: boolean;
  /** (B, T, d_model) used instead of the token embedding lookup. */
  inputEmbeddings?: Tensor | null;
  /** Also return the input of every block (group) and the final normed hidden state. */
  outputHiddenStates?: boolean;
}

/**
 * The LM head fused with the loss (forward()'s `headLoss` option): cross-entropy of every position
 * against its target, and the z-loss, without the float32 logits (F.headLoss).
 */
export interface HeadLossRequest {
  /** (B, T) int64: the target of each position (the next token), `ignoreIndex` where there is none. */
  targets: Tensor;
  /** Default -100. */
  ignoreIndex?: number;
  /** Weight of the mean cross-entropy in `loss` (default 1). */
  ceWeight?: number;
  /** Weight of the mean logsumexp² over every position, the z-loss (default 0). */
  zWeight?: number;
  /** Positions whose logits are computed at a time (default: headChunkRows). */
  chunkRows?: number;
}

/** forward()'s result with `headLoss`: 0-dim float32 tensors (F.headLoss), no logits. */
export interface OLMoLossOutput {
  /** ceWeight·ce + zWeight·z: the one to back-propagate. */
  loss: Tensor;
  /** ceWeight · mean cross-entropy (detached). */
  ce: Tensor;
  /** zWeight · mean logsumexp² (detached; 0 when zWeight is 0). */
  z: Tensor;
  attnKeyValues: LayerPast[] | null;
  hiddenStates: Tensor[] | null;
}

/** forward()'s result. */
export interface OLMoOutput {
  /** (B, T, embedding_size): unnormalised next-token scores. */
  logits: Tensor;
  /** Per layer [keys, values], (B, nkv, S, hs) each, when useCache. */
  attnKeyValues: LayerPast[] | null;
  hiddenStates: Tensor[] | null;
}

/** An OLMo language model. Build it from a ModelConfig (or a raw config object). */
export class OLMo extends Module {
  readonly config: ModelConfig;
  readonly device: Device;
  readonly transformer: ModuleDict;
  readonly wte: Embedding;
  readonly embDrop: Dropout;
  readonly lnF: LayerNormBase;
  /** All blocks in layer order (whether or not they are grouped for naming). */
  readonly blocks: OLMoBlock[];
  readonly wpe: Embedding | null;
  readonly ffOut: Linear | null;
  private readonly cache = new BufferCache();
  private checkpointing: ActivationCheckpointingStrategy | null = null;
  /** The checkpoint tape of the last training forward, until backward() consumes it. */
  private pendingTape: CheckpointTape | null = null;

  constructor(config: ModelConfig | Record<string, unknown>, opts: OLMoOptions = {}) {
    super();
    const c = parseModelConfig(config);
    this.config = c;
    const initDev = c.init_device && c.init_device !== 'meta' ? (c.init_device as Device) : 'cpu';
    this.device = opts.device ?? initDev;
    const p = { device: this.device, skipInit: true }; // resetParameters (or a load) fills every weight
    const t = this.registerModule('transformer', new ModuleDict());
    this.transformer = t;
    this.wte = t.set('wte', new Embedding(embeddingSize(c), c.d_model, p));
    this.embDrop = t.set('emb_drop', new Dropout(c.embedding_dropout));
    this.lnF = t.set('ln_f', buildLayerNorm(c, c.d_model, null, p));
    this.blocks = [];
    for (let i = 0; i < c.n_layers; i++) this.blocks.push(buildBlock(i, c, this.cache, p));
    if (c.block_group_size > 1) {
      const groups = t.set('block_groups', new ModuleList());
      for (let i = 0; i < c.n_layers; i += c.block_group_size) groups.push(new ModuleList(this.blocks.slice(i, i + c.block_group_size)));
    } else {
      t.set('blocks', new ModuleList(this.blocks));
    }
    this.wpe = !(c.alibi || c.rope) ? t.set('wpe', new Embedding(c.max_sequence_length, c.d_model, p)) : null;
    this.ffOut = c.weight_tying ? null : t.set('ff_out', new Linear(c.d_model, embeddingSize(c), { ...p, bias: c.include_bias }));
    if (opts.initParams ?? true) this.resetParameters();
  }

  /** Initialises every parameter as OLMo's reset_parameters does, in the same order. */
  resetParameters(): void {
    const c = this.config;
    noGrad(() => {
      initWeight(c, this.wte.weight, null, { stdFactor: c.scale_logits ? 0.5 * Math.sqrt(c.d_model) : 1, type: 'emb' });
      if (this.wpe) initWeight(c, this.wpe.weight, null, { type: 'emb' });
      this.lnF.resetParameters();
      if (this.ffOut) initWeight(c, this.ffOut.weight, this.ffOut.bias, { type: 'final_out' });
      for (const b of this.blocks) {
        for (const n of b.norms()) n.resetParameters();
        for (const tg of b.initTargets()) {
          initWeight(c, tg.module.weight, tg.module.bias, { d: tg.d, layerId: tg.layerId, type: tg.type, residual: tg.residual });
        }
      }
    });
  }

  /**
   * OLMo's set_activation_checkpointing: from the next training forward (training mode, grad on,
   * no KV cache) the strategy's blocks or block parts keep no activations and are recomputed in
   * backward. Such a forward must be back-propagated with model.backward(loss).
   */
  setActivationCheckpointing(strategy: ActivationCheckpointingStrategy | null): void {
    this.checkpointing = strategy;
  }
  get activationCheckpointing(): ActivationCheckpointingStrategy | null {
    return this.checkpointing;
  }

  /**
   * Back-propagates a loss computed from this model's last forward: loss.backward(), plus the
   * recomputation of checkpointed activations when that forward checkpointed. Gradients are the
   * same as without checkpointing, bitwise (dropout included: recomputes replay the random stream).
   */
  backward(loss: Tensor, opts: { sumTiedGradients?: boolean } = {}): void {
    const tape = this.pendingTape;
    if (!tape) {
      loss.backward();
      return;
    }
    this.pendingTape = null;
    // A tied wte gets gradient from the head (first) and the embedding (last segment). Without the
    // tape the engine sums the two before adding them to .grad; doing the same keeps micro-batch
    // accumulation bitwise equal (a + (b + c), not (a + b) + c). Not for parameters that are views
    // of a sharded unit (FSDP accumulates its own gradient shards): sumTiedGradients: false.
    const tied = this.config.weight_tying && (opts.sumTiedGradients ?? true) ? this.wte.weight : null;
    tidy(() => {
      const before = tied?.grad ?? null;
      if (before) tied!.grad = null;
      try {
        tape.backward(loss);
      } finally {
        if (before) {
          const now = tied!.grad;
          if (now) noGrad(() => before.add_(now));
          tied!.grad = before;
        }
      }
    });
  }

  /** Drops the checkpoint tape of a training forward that will not be back-propagated. */
  discardActivationCheckpoints(): void {
    this.pendingTape?.dispose();
    this.pendingTape = null;
  }

  /**
   * Logits for token ids (B, T) int64. Call inside tidy() (intermediates are freed by the
   * caller's scope); the result is tidy-safe to return. Mirrors OLMo's Olmo.forward.
   * With `headLoss`, the LM head is fused with the loss instead (training without float32 logits):
   * the result has the loss, not the logits.
   */
  forward(inputIds: Tensor | null, opts: ForwardOptions & { headLoss: HeadLossRequest }): OLMoLossOutput;
  forward(inputIds: Tensor | null, opts?: ForwardOptions): OLMoOutput;
  forward(inputIds: Tensor | null, opts: ForwardOptions & { headLoss?: HeadLossRequest | null } = {}): OLMoOutput | OLMoLossOutput {
    if (this.pendingTape) {
      throw new ArgumentError('the previous training forward used activation checkpointing and was not back-propagated: call model.backward(loss) instead of loss.backward() (or model.discardActivationCheckpoints())');
    }
    if (opts.headLoss && opts.lastLogitsOnly) throw new ArgumentError('forward: headLoss and lastLogitsOnly cannot be combined (the loss needs every position)');
    const c = this.checkpointing;
    const tape = c && this.training && isGradEnabled() && !opts.useCache && !opts.pastKeyValues ? new CheckpointTape() : null;
    try {
      const out = tidy(() => {
        const t = this.trunk(inputIds, opts, tape);
        if (opts.headLoss) {
          const r = this.fusedHeadLoss(t.x, opts.headLoss);
          return { loss: r.loss, ce: r.ce, z: r.z, attnKeyValues: t.presents, hiddenStates: t.hidden };
        }
        return { logits: this.headLogits(t.x), attnKeyValues: t.presents, hiddenStates: t.hidden };
      });
      if (tape && tape.size > 0) this.pendingTape = tape;
      else tape?.dispose();
      return out;
    } catch (e) {
      tape?.dispose();
      throw e;
    }
  }

  /** The LM head: logits = (x @ weight^T + bias) · scale (ff_out, or the tied wte; scale_logits). */
  get lmHead(): { weight: Tensor; bias: Tensor | null; scale: number } {
    const c = this.config;
    return {
      weight: this.ffOut ? this.ffOut.weight : this.wte.weight,
      bias: this.ffOut?.bias ?? null,
      scale: c.scale_logits ? 1 / Math.sqrt(c.d_model) : 1,
    };
  }

  /**
   * The LM head fused with the loss (F.headLoss) on the final normed hidden states x (B, T, C):
   * every embedding_size row of the head, unsliced, as the logits would be. forward() calls it
   * with `headLoss`; FSDP brackets it with ff_out's unit when ff_out is sharded on its own.
   */
  fusedHeadLoss(x: Tensor, r: HeadLossRequest): HeadLossResult {
    const [B, T, C] = x.shape as [number, number, number];
    if (r.targets.ndim !== 2 || r.targets.shape[0] !== B || r.targets.shape[1] !== T) {
      throw new ArgumentError(`headLoss.targets must be (batch, seq) = (${B}, ${T}), got shape [${r.targets.shape}]`);
    }
    const h = this.lmHead;
    return headLoss(x.reshape(-1, C), h.weight, h.bias, r.targets.reshape(-1), {
      ignoreIndex: r.ignoreIndex, ceWeight: r.ceWeight, zWeight: r.zWeight, scale: h.scale, chunkRows: r.chunkRows,
    });
  }

  /** x (B, T, C) -> logits (B, T, embedding_size), as OLMo: every embedding row, unsliced. */
  private headLogits(x: Tensor): Tensor {
    let logits = this.ffOut ? this.ffOut.forward(x) : linear(x, this.wte.weight); // (B, T, V)
    if (this.config.scale_logits) logits = logits.mul(1 / Math.sqrt(this.config.d_model));
    return logits;
  }

  /**
   * Embeddings, blocks and the final norm: x (B, T, C) and what forward() returns besides logits;
   * blocks the strategy checkpoints go on `tape`.
   */
  private trunk(inputIds: Tensor | null, opts: ForwardOptions, tape: CheckpointTape | null): { x: Tensor; presents: LayerPast[] | null; hidden: Tensor[] | null } {
    const c = this.config;
    const past = opts.pastKeyValues ?? null;
    if (past && past.length !== c.n_layers) throw new ArgumentError(`pastKeyValues has ${past.length} layers, the model ${c.n_layers}`);
    const emb = opts.inputEmbeddings ?? null;
    if (!inputIds && !emb) throw new ArgumentError('forward needs inputIds or inputEmbeddings');
    const [B, T] = (emb ? emb.shape.slice(0, 2) : inputIds!.shape) as [number, number];
    if (inputIds && inputIds.ndim !== 2) throw new ArgumentError(`inputIds must be (batch, seq), got shape [${inputIds.shape}]`);
    const pastLen = past ? past[0]![0].shape[2]! : 0;
    if (this.wpe && pastLen + T > c.max_sequence_length) {
      throw new ArgumentError(`sequence length ${pastLen + T} exceeds max_sequence_length ${c.max_sequence_length}`);
    }

    let x = emb ?? this.wte.forward(inputIds!); // (B, T, C)
    if (this.wpe) {
      const pos = arange(pastLen, pastLen + T, 1, { device: x.device }).unsqueeze(0); // (1, T)
      x = this.wpe.forward(pos).add(x); // (B, T, C)
    }
    x = this.embDrop.forward(x);

    const bias = this.attentionBias(B, T, pastLen, opts.attentionMask ?? null, opts.attentionBias ?? null, past !== null, x.device);

    const presents: LayerPast[] | null = opts.useCache ? [] : null;
    const hidden: Tensor[] | null = opts.outputHiddenStates ? [] : null;
    const strategy = tape ? this.checkpointing : null;
    this.blocks.forEach((block, i) => {
      if (hidden && i % c.block_group_size === 0) hidden.push(x);
      if (tape && shouldCheckpointBlock(strategy, i)) {
        // The block keeps only its input; it runs again in backward (OLMo's whole-block checkpoint).
        [x] = tape.recompute(([h], [b]) => [block.forward(h!, b ?? null, null, false).x], [x], [bias]);
        return;
      }
      // One scope per block: intermediates autograd does not keep are freed as the forward goes.
      const out = tidy(() => block.forward(x, bias, past ? past[i]! : null, opts.useCache ?? false, strategy === 'fine_grained' ? tape : null));
      x = out.x;
      if (presents) presents.push(out.present!);
    });
    if (opts.lastLogitsOnly) x = x.select(1, -1).unsqueeze(1); // (B, 1, C)
    x = this.lnF.forward(x);
    if (hidden) hidden.push(x);
    return { x, presents, hidden };
  }

  /** OLMo's merge of the padding mask, custom bias, causal mask and ALiBi into one float bias (or null). */
  private attentionBias(
    B: number,
    T: number,
    pastLen: number,
    mask: Tensor | null,
    custom: Tensor | null,
    hasPast: boolean,
    device: Device,
  ): Tensor | null {
    const c = this.config;
    let maskBias: Tensor | null = null;
    if (mask) {
      const m = mask.to('float32').view(B, -1).unsqueeze(1).unsqueeze(1); // (B, 1, 1, S)
      maskBias = m.rsub(1).mul(FLOAT32_MIN);
    }
    if (!(custom || mask || c.alibi || hasPast)) return null;
    const S = pastLen + T;
    let bias: Tensor;
    if (!custom) {
      const causal = this.cache.get('causal_attention_bias', S, device, () => causalAttentionBias(Math.max(S, c.max_sequence_length), device));
      bias = c.alibi
        ? causal.add(this.cache.get('alibi_attention_bias', S, device, () => alibiAttentionBias(Math.max(S, c.max_sequence_length), c, device)))
        : causal;
    } else {
      bias = custom.ndim === 2 ? custom.view(1, 1, custom.shape[0]!, custom.shape[1]!) : custom;
      if (bias.dtype === 'bool' || bias.dtype === 'uint8' || bias.dtype === 'int32' || bias.dtype === 'int64') {
        const f = bias.to('float32');
        bias = f.maskedFill(f.eq(0), FLOAT32_MIN);
      }
    }
    const maskLen = maskBias ? maskBias.shape[3]! : hasPast ? S : T;
    bias = bias.slice(2, 0, maskLen).slice(3, 0, maskLen).to('float32');
    // -inf from min + min would make SDPA produce NaNs; OLMo's ensure_finite_ maps it back to min.
    if (maskBias) bias = bias.add(maskBias).clamp(FLOAT32_MIN, null);
    return bias;
  }

  /**
   * Mean next-token cross-entropy: logits[:, :-1] against inputIds[:, 1:], ignoring targets where
   * `labelMask` (B, T) is 0/false (and -100 targets), as OLMo's trainer computes it.
   */
  loss(logits: Tensor, inputIds: Tensor, opts: { labelMask?: Tensor | null; reduction?: 'mean' | 'sum' | 'none' } = {}): Tensor {
    return tidy(() => {
      const T = inputIds.shape[1]!;
      const V = logits.shape[2]!;
      let labels = inputIds.slice(1, 1, T).long(); // (B, T-1)
      if (opts.labelMask) labels = labels.maskedFill(opts.labelMask.slice(1, 1, T).eq(0), -100);
      const lg = logits.slice(1, 0, T - 1).reshape(-1, V); // (B·(T-1), V)
      return crossEntropy(lg, labels.reshape(-1), { ignoreIndex: -100, reduction: opts.reduction ?? 'mean' });
    });
  }

  /** Number of parameters; without the embedding lookups (wte, wpe) when includeEmbedding is false. */
  override numParams(includeEmbedding = true): number {
    return this.namedParameters()
      .filter((p) => includeEmbedding || !(p.name.includes('.wte.') || p.name.includes('.wpe.')))
      .reduce((a, p) => a + p.tensor.numel, 0);
  }

  /**
   * Training FLOPs per token, 6·N + 12·L·d·s (torchtitan / OLMo-core convention), with N the
   * non-embedding parameters and s the sequence length (default max_sequence_length).
   */
  flopsPerToken(seqLen = this.config.max_sequence_length): number {
    const c = this.config;
    return 6 * this.numParams(false) + 12 * c.n_layers * c.d_model * seqLen;
  }

  /** OLMo's num_fwd_flops: forward FLOPs per sequence, 2·N·S + 4·L·d·S² (N including embeddings). */
  numFwdFlops(): number {
    const c = this.config;
    const S = c.max_sequence_length;
    return 2 * this.numParams(true) * S + c.n_layers * 2 * 2 * c.d_model * S * S;
  }

  /**
   * Generates continuations of one prompt (or a batch) with a key/value cache: greedy at
   * temperature 0, else sampled with topK/topP and an optional seed. Returns the new token ids.
   */
  generate(prompt: number[] | number[][], opts: GenerateOptions = {}): number[][] {
    return (require('./generate') as typeof import('./generate')).generate(this, prompt, opts);
  }

  /** Writes `dir/model.safetensors` (OLMo names) and `dir/config.yaml`. */
  save(dir: string): void {
    (require('./checkpoint') as typeof import('./checkpoint')).saveCheckpoint(this, dir);
  }
  /** Writes the model in Hugging Face's OlmoForCausalLM layout (config.json + model.safetensors). */
  saveHf(dir: string): void {
    (require('./hf') as typeof import('./hf')).saveHfOlmo(this, dir);
  }
  /**
   * Loads a model from an olmo-ts/OLMo checkpoint directory (config.yaml + model.safetensors), a
   * .safetensors file with its config in the metadata, or a Hugging Face OlmoForCausalLM folder.
   */
  static fromCheckpoint(dirOrFile: string, opts: { device?: Device } = {}): OLMo {
    return (require('./checkpoint') as typeof import('./checkpoint')).loadCheckpoint(dirOrFile, opts);
  }

  /** Frees parameters and cached buffers. */
  override dispose(): void {
    this.discardActivationCheckpoints();
    super.dispose();
    this.cache.dispose();
  }
}

/**
 * A causal, block-diagonal bool attention bias (B, 1, T, T) for documents packed into one
 * sequence: a token attends to earlier tokens of its own document, where documents end at
 * `eosTokenId` (the EOS belongs to the document it ends).
 */
export function documentAttentionBias(inputIds: Tensor, eosTokenId: number): Tensor {
  return tidy(() => {
    const [B, T] = inputIds.shape as [number, number];
    const isEos = inputIds.eq(eosTokenId).long(); // (B, T)
    // document index of each token: EOS tokens before it (exclusive)
    const doc = isEos.cumsum(1).sub(isEos); // (B, T)
    const same = doc.unsqueeze(2).eq(doc.unsqueeze(1)); // (B, T, T)
    const pos = arange(T, undefined, 1, { device: inputIds.device });
    const causal = pos.unsqueeze(1).ge(pos.unsqueeze(0)); // (T, T): query i may see key j <= i
    return same.logicalAnd(causal.unsqueeze(0)).view(B, 1, T, T);
  });
}
