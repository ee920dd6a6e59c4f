// The Module base class: a tree of named sub-modules and parameters whose dotted names follow
// PyTorch's state-dict naming (so OLMo checkpoints map one to one), train/eval mode, and a kind tag
// per parameter so the optimizer can build OLMo's weight-decay / no-decay groups.
import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { noGrad } from '../tensor/autograd';
import { ArgumentError } from '../native/errors';

/**
 * What a parameter is, for optimizer grouping: OLMo decays only linear weights by default
 * (biases, norm weights/biases and embeddings go to the no-decay group unless the optimizer
 * config says decay_norm_and_bias / decay_embeddings).
 */
export type ParamKind = 'linear_weight' | 'linear_bias' | 'norm_weight' | 'norm_bias' | 'embedding';

/** A parameter as namedParameters() reports it. */
export interface NamedParameter {
  /** Dotted state-dict name, e.g. "transformer.blocks.0.att_proj.weight". */
  name: string;
  tensor: Tensor;
  kind: ParamKind;
}

interface Slot {
  tensor: Tensor;
  kind: ParamKind;
}

/**
 * Base class of all modules. Subclasses register parameters (kept leaf tensors that require grad)
 * and children in their constructor; registration order is the state-dict order.
 */
export class Module {
  /** True in training mode (dropout active). */
  training = true;
  private readonly params_ = new Map<string, Slot>();
  private readonly children_ = new Map<string, Module>();

  /** Registers a parameter: keeps it (it outlives tidy scopes) and turns on requires_grad. */
  protected registerParameter(name: string, t: Tensor, kind: ParamKind): Tensor {
    if (name.includes('.')) throw new ArgumentError(`parameter name '${name}' must not contain '.'`);
    if (this.params_.has(name) || this.children_.has(name)) throw new ArgumentError(`'${name}' is already registered`);
    keep(t);
    if (!t.requiresGrad) t.requiresGrad_(true);
    this.params_.set(name, { tensor: t, kind });
    return t;
  }
  /** Registers a child module under `name` (its parameters are named `name.*`). */
  protected registerModule<M extends Module>(name: string, m: M): M {
    if (this.params_.has(name) || this.children_.has(name)) throw new ArgumentError(`'${name}' is already registered`);
    this.children_.set(name, m);
    return m;
  }

  /** Direct children with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children_.entries()];
  }
  /** Every module in the tree (this first), with dotted names ("" for this). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.children_) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  /** Every parameter with its dotted state-dict name and kind, in registration order. */
  namedParameters(prefix = ''): NamedParameter[] {
    const out: NamedParameter[] = [];
    for (const [n, s] of this.params_) out.push({ name: prefix ? `${prefix}.${n}` : n, tensor: s.tensor, kind: s.kind });
    for (const [n, c] of this.children_) out.push(...c.namedParameters(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  /** Every parameter tensor, in state-dict order. */
  parameters(): Tensor[] {
    return this.namedParameters().map((p) => p.tensor);
  }
  /** Total number of parameter elements. */
  numParams(): number {
    return this.parameters().reduce((a, t) => a + t.numel, 0);
  }
  /** The parameters by name (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters().map((p) => [p.name, p.tensor]));
  }
  /**
   * Copies tensors into the parameters with the same names (shapes must match; dtype/device are
   * converted). With strict (default) missing and unexpected names are errors.
   */
  loadStateDict(dict: Map<string, Tensor> | Record<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.namedParameters();
    const missing = own.filter((p) => !src.has(p.name)).map((p) => p.name);
    const names = new Set(own.map((p) => p.name));
    const unexpected = [...src.keys()].filter((k) => !names.has(k));
    if (strict && (missing.length || unexpected.length)) {
      const parts = [];
      if (missing.length) parts.push(`missing: ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected: ${unexpected.join(', ')}`);
      throw new ArgumentError(`loadStateDict: ${parts.join('; ')}`);
    }
    noGrad(() => {
      for (const p of own) {
        const s = src.get(p.name);
        if (!s) continue;
        const a = p.tensor.shape;
        const b = s.shape;
        if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
          throw new ArgumentError(`loadStateDict: ${p.name} has shape [${a}], the source has [${b}]`);
        }
        p.tensor.copy_(s);
      }
    });
    return { missing, unexpected };
  }

  /** Sets training mode on the whole tree and returns this. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }
  /** Evaluation mode (dropout off). */
  eval(): this {
    return this.train(false);
  }
  /** Frees every parameter. The module is unusable afterwards. Idempotent. */
  dispose(): void {
    for (const p of this.namedParameters()) p.tensor.dispose();
  }
}

/** An ordered list of modules named "0", "1", ... (torch.nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];
  constructor(modules: M[] = []) {
    super();
    for (const m of modules) this.push(m);
  }
  push(m: M): M {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new ArgumentError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Named modules in insertion order (torch.nn.ModuleDict), for plain containers like OLMo's `transformer`. */
export class ModuleDict extends Module {
  set<M extends Module>(name: string, m: M): M {
    return this.registerModule(name, m);
  }
}
