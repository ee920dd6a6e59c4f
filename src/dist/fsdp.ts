// FSDP for olmo-ts: OLMo's `fsdp:` settings applied to a built model (torchtitan's build -> wrap ->
// shard). This file is the policy: which modules form a unit (wrapping_strategy), the strategy and
// precision of each unit, hybrid sharding groups, prefetch order, and the per-parameter views the
// optimizer, clipping and checkpoints use. The mechanism (flat parameters, freeing and refilling
// storage, autograd hooks, collectives) is native/fsdp.cc.
//
// Differences from torch FSDP, by design: parameter starts are aligned to 16 elements whatever the
// dtype (torch: 16 bytes), so the unpadded layout does not depend on dtype or world size; NO_SHARD is
// handled by DataParallel (fp32 bucketed all-reduce, as torch DDP) rather than by a flat unit; forward
// prefetch is on by default (torch: off) because it measured faster on Gloo (bench/RESULTS.md).
import type { FSDPConfig } from '../config/infra';
import { native } from '../native';
import { ArgumentError, DistributedError } from '../native/errors';
import type { Module, NamedParameter } from '../nn/module';
import type { OLMo } from '../model/olmo';
import { isGradEnabled } from '../tensor/autograd';
import { tensor } from '../tensor/creation';
import type { DType } from '../tensor/dtype';
import { keep } from '../tensor/scope';
import { Tensor, tid, wrap } from '../tensor/tensor';
import type { LaunchEnv } from './env';
import type { ProcessGroup } from './process-group';
import { Work } from './process-group';

/** OLMo's FSDP strategies that shard (NO_SHARD is DataParallel). */
export type ShardingStrategy = 'FULL_SHARD' | 'SHARD_GRAD_OP' | 'HYBRID_SHARD' | '_HYBRID_SHARD_ZERO2';

/** A unit: the parameters that are gathered, reduced and freed together. */
export interface UnitSpec {
  name: string;
  params: NamedParameter[];
  /** The root holds every parameter no wrapped module claims; it stays gathered from forward to backward. */
  root: boolean;
  /** The modules whose forward brackets the unit (first: gather; last: post-forward); none for the root. */
  modules: Module[];
}

/** torch's size_based_auto_wrap_policy threshold (min_num_params). */
export const SIZE_BASED_MIN_PARAMS = 1e8;

const numel = (p: NamedParameter): number => p.tensor.shape.reduce((a, b) => a * b, 1);

/**
 * OLMo's get_fsdp_wrap_policy (olmo/model.py) as units: null = one root unit; by_block = one unit
 * per block; by_block_group = per block group; *_and_size adds wte and ff_out (wte stays in the
 * root with weight tying, as the logits reuse it outside its own forward); one_in_N = blocks with
 * layer_id % N == 0; size_based = every block, wte and ff_out with >= 1e8 parameters.
 */
export function planUnits(model: OLMo, wrapping: FSDPConfig['wrapping_strategy'], opts: { onWarning?: (m: string) => void } = {}): UnitSpec[] {
  const c = model.config;
  const prefixOf = new Map<Module, string>(model.namedModules().map(([n, m]) => [m, n]));
  const paramsOf = (m: Module): NamedParameter[] => m.namedParameters(prefixOf.get(m)!);
  const units: UnitSpec[] = [];
  const wrapBlocks = (pick: (i: number) => boolean) =>
    model.blocks.forEach((b, i) => { if (pick(i)) units.push({ name: `block ${i}`, params: paramsOf(b), root: false, modules: [b] }); });
  const leaf = (name: string, m: Module | null) => {
    if (!m) return;
    if (m === model.wte && c.weight_tying) {
      opts.onWarning?.(`fsdp.wrapping_strategy=${wrapping}: transformer.wte stays in the root unit because weight_tying reuses it for the logits`);
      return;
    }
    units.push({ name, params: paramsOf(m), root: false, modules: [m] });
  };
  switch (wrapping) {
    case null:
      break;
    case 'by_block':
    case 'by_block_and_size':
      wrapBlocks(() => true);
      if (wrapping === 'by_block_and_size') { leaf('wte', model.wte); leaf('ff_out', model.ffOut); }
      break;
    case 'by_block_group':
    case 'by_block_group_and_size': {
      const g = c.block_group_size;
      if (g <= 1) throw new ArgumentError(`fsdp.wrapping_strategy=${wrapping} needs model.block_group_size > 1 (got ${g})`);
      for (let i = 0; i < model.blocks.length; i += g) {
        const group = model.blocks.slice(i, i + g);
        units.push({ name: `block group ${i / g}`, params: group.flatMap(paramsOf), root: false, modules: group });
      }
      if (wrapping === 'by_block_group_and_size') { leaf('wte', model.wte); leaf('ff_out', model.ffOut); }
      break;
    }
    case 'one_in_two': case 'one_in_three': case 'one_in_four': case 'one_in_five': {
      const n = { one_in_two: 2, one_in_three: 3, one_in_four: 4, one_in_five: 5 }[wrapping];
      wrapBlocks((i) => i % n === 0);
      break;
    }
    case 'size_based': {
      const big = (m: Module) => paramsOf(m).reduce((a, p) => a + numel(p), 0) >= SIZE_BASED_MIN_PARAMS;
      model.blocks.forEach((b, i) => { if (big(b)) units.push({ name: `block ${i}`, params: paramsOf(b), root: false, modules: [b] }); });
      if (big(model.wte) && !c.weight_tying) leaf('wte', model.wte);
      if (model.ffOut && big(model.ffOut)) leaf('ff_out', model.ffOut);
      break;
    }
    default:
      throw new ArgumentError(`unknown fsdp.wrapping_strategy ${JSON.stringify(wrapping)}`);
  }
  const claimed = new Set(units.flatMap((u) => u.params.map((p) => p.name)));
  const rest = model.namedParameters().filter((p) => !claimed.has(p.name));
  units.unshift({ name: 'root', params: rest, root: true, modules: [] });
  return units.filter((u) => u.params.length > 0);
}

/** What an Fsdp needs besides the model. */
export interface FsdpOptions {
  strategy: ShardingStrategy;
  wrapping: FSDPConfig['wrapping_strategy'];
  /** The dtype parameters are gathered in (OLMo: the autocast dtype for pure and mixed). */
  paramDtype: DType;
  /** The dtype gradients are reduced in (pure: the autocast dtype; mixed: fp32). */
  reduceDtype: DType;
  /** HYBRID: number of model replicas (default: the number of nodes). */
  numReplicas?: number | null;
  /** Gather the next unit while the current one computes its forward (default true). */
  forwardPrefetch?: boolean;
  onWarning?: (m: string) => void;
}

interface LiveUnit {
  id: number;
  spec: UnitSpec;
  segments: Tensor[];
}

/**
 * A model sharded over a process group. `namedSegments()` are what the optimizer updates; after
 * each backward call `finishBackward()`; `zeroGrad()` clears the gradient shards. The model's
 * parameter tensors are views that exist only while their unit is gathered.
 */
export class Fsdp {
  private units: LiveUnit[] = [];
  private byName = new Map<string, { unit: LiveUnit; index: number }>();
  private order: LiveUnit[] = [];
  private orderFixed = false;
  private readonly restore: (() => void)[] = [];
  private closed = false;

  private constructor(
    readonly model: OLMo,
    private readonly world: ProcessGroup,
    /** The group parameters are sharded over (the world, or this node's ranks for HYBRID). */
    readonly shardGroup: ProcessGroup,
    /** HYBRID: this rank's peers holding the same shard on other nodes. */
    readonly replicateGroup: ProcessGroup | null,
    readonly options: FsdpOptions,
  ) {}

  /** Shards `model` (built identically on every rank) over `world` as `o` says. */
  static async create(model: OLMo, world: ProcessGroup, env: LaunchEnv, o: FsdpOptions): Promise<Fsdp> {
    let shard = world, replicate: ProcessGroup | null = null;
    if (o.strategy === 'HYBRID_SHARD' || o.strategy === '_HYBRID_SHARD_ZERO2') {
      const replicas = o.numReplicas ?? Math.max(1, Math.round(world.size / env.localWorldSize));
      if (world.size % replicas !== 0) throw new ArgumentError(`fsdp: ${replicas} model replicas do not divide the world size ${world.size} (hybrid_sharding_num_model_replicas)`);
      const per = world.size / replicas;
      // torch's _init_intra_and_inter_node_groups: shard within [k·per, (k+1)·per), replicate across {i + k·per}
      for (let k = 0; k < replicas; k++) {
        const g = await world.subgroup(Array.from({ length: per }, (_, i) => k * per + i), `shard${k}`);
        if (g) shard = g;
      }
      for (let i = 0; i < per; i++) {
        const g = await world.subgroup(Array.from({ length: replicas }, (_, k) => i + k * per), `replicate${i}`);
        if (g) replicate = g;
      }
      if (replicate && replicate.size === 1) replicate = null;
    }
    const f = new Fsdp(model, world, shard, replicate, o);
    await f.checkSameLayout(world);
    f.build(world.size);
    return f;
  }

  /** Every rank must build the same units, or collectives would mix unrelated tensors. // SYNC */
  private async checkSameLayout(world: ProcessGroup): Promise<void> {
    if (world.size === 1) return;
    const units = planUnits(this.model, this.options.wrapping);
    const desc = units.map((u) => `${u.name}:${u.params.map((p) => `${p.name}[${p.tensor.shape}]`).join(',')}`).join(';');
    let h = 2166136261;
    for (let i = 0; i < desc.length; i++) h = Math.imul(h ^ desc.charCodeAt(i), 16777619) >>> 0;
    const t = tensor(Float64Array.of(h, -h), { dtype: 'float64', device: world.device });
    try {
      await world.allReduce(t, 'max').wait();
      const [hi, lo] = t.toArray() as Float64Array;
      if (hi !== h || -lo! !== h) throw new DistributedError(`FSDP: the ranks built different models or wrapping (layout hash ${h} on rank ${world.rank}); every rank must run the same config`);
    } finally {
      t.dispose();
    }
  }

  private build(worldSize: number): void {
    const o = this.options;
    const strategy = o.strategy === 'SHARD_GRAD_OP' || o.strategy === '_HYBRID_SHARD_ZERO2' ? 1 : 2;
    const specs = planUnits(this.model, o.wrapping, { onWarning: o.onWarning });
    for (const spec of specs) {
      const r = native.fsdpUnitNew(this.shardGroup.nativeId ?? -1, this.replicateGroup?.nativeId ?? -1, spec.params.map((p) => tid(p.tensor)), {
        name: spec.name, strategy, root: spec.root, paramDtype: o.paramDtype, reduceDtype: o.reduceDtype, world: worldSize,
      });
      const unit: LiveUnit = { id: r.unit, spec, segments: r.segments.map((id) => keep(wrap(id))) };
      this.units.push(unit);
      spec.params.forEach((p, index) => this.byName.set(p.name, { unit, index }));
    }
    this.wrapForwards();
  }

  /** Brackets the wrapped modules' forwards (and the model's, for the root) with gather/free. */
  private wrapForwards(): void {
    const root = this.units.find((u) => u.spec.root);
    for (const u of this.units) {
      if (u.spec.root) continue;
      const first = u.spec.modules[0]!, last = u.spec.modules[u.spec.modules.length - 1]!;
      this.patch(first, (orig) => (...args: unknown[]) => {
        this.preForward(u);
        return first === last ? this.postForward(u, orig(...args)) : orig(...args);
      });
      if (first !== last) this.patch(last, (orig) => (...args: unknown[]) => this.postForward(u, orig(...args)));
      // The fused LM head + loss (OLMo.fusedHeadLoss, inside the model's forward) uses ff_out's
      // weight and bias without calling ff_out's forward: it brackets ff_out's unit the same way.
      if (first === this.model.ffOut && first === last) {
        this.patch(this.model, (orig) => (...args: unknown[]) => {
          this.preForward(u);
          return this.postForward(u, orig(...args));
        }, 'fusedHeadLoss');
      }
    }
    if (root) {
      this.patch(this.model, (orig) => (...args: unknown[]) => {
        this.preForward(root);
        return this.postForward(root, orig(...args));
      });
    }
  }

  /** Replaces m[key] (a method; default forward) by make(the original), until close(). */
  private patch(m: Module, make: (orig: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown, key = 'forward'): void {
    const target = m as unknown as Record<string, (...a: unknown[]) => unknown>;
    const own = Object.prototype.hasOwnProperty.call(target, key);
    const prev = target[key]!;
    const orig = prev.bind(m);
    target[key] = make(orig);
    this.restore.push(() => { if (own) target[key] = prev; else delete target[key]; });
  }

  private preForward(u: LiveUnit): void {
    this.check();
    native.fsdpPreForward(u.id);
    if (!u.spec.root && !this.orderFixed) this.order.push(u);
    if (this.orderFixed && (this.options.forwardPrefetch ?? true)) {
      const next = this.order[this.order.indexOf(u) + 1];
      if (next) native.fsdpPrefetch(next.id);
    }
  }

  private postForward<T>(u: LiveUnit, out: T): T {
    native.fsdpPostForward(u.id, tensorsOf(out).map((t) => t.id), isGradEnabled());
    if (u.spec.root && !this.orderFixed && this.order.length) {
      // The first forward fixed the order: backward gathers the previous unit ahead (BACKWARD_PRE).
      this.orderFixed = true;
      this.order.forEach((x, i) => native.fsdpSetBackwardNext(x.id, i > 0 ? this.order[i - 1]!.id : -1));
    }
    return out;
  }

  private check(): void {
    if (this.closed) throw new ArgumentError('this FSDP model was closed');
  }

  /** The tensors the optimizer updates: this rank's piece of every parameter, under its name and kind. */
  namedSegments(): NamedParameter[] {
    return this.model.namedParameters().map((p) => {
      const at = this.byName.get(p.name)!;
      return { name: p.name, kind: p.kind, tensor: at.unit.segments[at.index]! };
    });
  }

  /** Completes the gradient reductions of the backward just run. */
  async finishBackward(): Promise<void> {
    await new Work(native.fsdpFinishBackward(this.units.map((u) => u.id))).wait();
  }

  /** Clears the gradient shards (set to None). */
  zeroGrad(): void {
    native.fsdpZeroGrad(this.units.map((u) => u.id));
  }

  /** Per-parameter squared gradient norms summed over the shard group (HYBRID: within a node). // SYNC */
  async reduceNormSquares(sq: Float64Array): Promise<Float64Array> {
    if (this.shardGroup.size === 1) return sq;
    const t = tensor(sq, { dtype: 'float64', device: this.shardGroup.device });
    try {
      await this.shardGroup.allReduce(t, 'sum').wait();
      return Float64Array.from(t.toArray() as Float64Array);
    } finally {
      t.dispose();
    }
  }

  /**
   * Full fp32 tensors (by parameter name) of a per-parameter state given as pieces shaped like the
   * segments (the segments themselves, exp_avg, ...): gathered unit by unit, on every rank.
   */
  async gatherFull(pieces: (name: string) => Tensor): Promise<Map<string, Tensor>> {
    const out = new Map<string, Tensor>();
    for (const u of this.units) {
      const r = native.fsdpGatherFlat(u.id, u.spec.params.map((p) => tid(pieces(p.name), p.name)));
      const ts = r.tensors.map((id) => keep(wrap(id)));
      await new Work(r.work).wait();
      u.spec.params.forEach((p, i) => out.set(p.name, ts[i]!));
    }
    return out;
  }

  /** This rank's pieces (copies, segment-shaped) of full per-parameter tensors given by name. */
  shardOf(full: Map<string, Tensor>): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const u of this.units) {
      const ids = native.fsdpShardOf(u.id, u.spec.params.map((p) => {
        const t = full.get(p.name);
        if (!t) throw new ArgumentError(`no tensor for parameter '${p.name}'`);
        return tid(t, p.name);
      }));
      u.spec.params.forEach((p, i) => out.set(p.name, keep(wrap(ids[i]!))));
    }
    return out;
  }

  /** The units, for tests and the memory report. */
  unitInfo(): { name: string; strategy: string; padded: number; shard: number; gathered: boolean; gradShard: boolean; params: number }[] {
    return this.units.map((u) => ({ ...native.fsdpUnitInfo(u.id), params: u.spec.params.length }));
  }

  /** Releases the units (the model's parameters become unusable) and restores the forwards. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.restore.reverse()) r();
    for (const u of this.units) {
      for (const s of u.segments) s.dispose();
      native.fsdpUnitClose(u.id);
    }
    this.units = [];
    // HYBRID's sub-groups are this model's own
    if (this.shardGroup !== this.world) this.shardGroup.close();
    this.replicateGroup?.close();
  }
}

/** Bytes of gathered parameters now and at peak, and collective counts (process-wide). */
export function fsdpStats(): { fullBytesLive: number; fullBytesPeak: number; gathers: number; reductions: number } {
  return native.fsdpStats();
}
export function resetFsdpPeak(): void {
  native.fsdpResetPeak();
}

/** The tensors of a forward's result that gradients flow back through (a Tensor, or an object's Tensor fields). */
function tensorsOf(out: unknown): Tensor[] {
  if (out instanceof Tensor) return [out];
  if (out && typeof out === 'object') {
    const r: Tensor[] = [];
    for (const v of Object.values(out as Record<string, unknown>)) if (v instanceof Tensor && !v.isDisposed) r.push(v);
    return r;
  }
  return [];
}
