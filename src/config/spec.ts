// The field-spec vocabulary every config section is written in: one definition per key gives its
// TypeScript type, default, doc, validation (ConfigError naming key, value, expectation) and its
// JSON Schema fragment, so the parser, the defaults and the emitted schema cannot drift apart.
import { ConfigError, showValue } from './errors';

/** A JSON Schema fragment (draft-07). */
export type JsonSchema = { [k: string]: unknown };

/** One config key: how to parse it, its default, its doc and its JSON Schema. */
export interface Field<T> {
  /** What the key means; becomes the JSON Schema `description`. */
  readonly doc: string;
  /** Makes the default value (a fresh copy each call); undefined when the key is required. */
  readonly makeDefault: (() => T) | undefined;
  /** Validates a raw value (already interpolated) found at dotted `key`. */
  parse(v: unknown, key: string): T;
  /** The JSON Schema of the value, with description and default. */
  jsonSchema(): JsonSchema;
  /** For sections: the sub-fields (used to look up defaults for interpolation and did-you-mean). */
  readonly fields?: Readonly<Record<string, Field<unknown>>>;
  /** For nullable wrappers: the non-null field. */
  readonly inner?: Field<unknown>;
}

/** The value type a Field parses to. */
export type Infer<F> = F extends Field<infer T> ? T : never;
/** The object type a section's field table parses to. */
export type InferFields<S extends Record<string, Field<any>>> = { -readonly [K in keyof S]: Infer<S[K]> };

interface Common<T> {
  doc: string;
  default?: T;
}

function base<T>(o: Common<T>, schema: JsonSchema, parse: (v: unknown, key: string) => T): Field<T> {
  const d = o.default;
  return {
    doc: o.doc,
    makeDefault: d === undefined ? undefined : () => structuredClone(d),
    parse,
    jsonSchema: () => withMeta(schema, o.doc, d),
  };
}

function withMeta(schema: JsonSchema, doc: string, dflt: unknown): JsonSchema {
  const out: JsonSchema = { ...schema, description: doc };
  if (dflt !== undefined) out.default = dflt;
  return out;
}

const fail = (key: string, v: unknown, expected: string): never => {
  throw new ConfigError(key, `got ${showValue(v)}, expected ${expected}`);
};

// Strings reach numeric/boolean keys through interpolation (`${oc.env:N,'8'}`); OmegaConf converts
// them for typed fields, and so do we.
const NUM_RE = /^\s*[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?\s*$/;
function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && NUM_RE.test(v)) return Number(v.replace(/_/g, ''));
  return undefined;
}

function rangeText(o: NumOpts): string {
  const parts: string[] = [];
  if (o.min !== undefined) parts.push(`${o.exclusiveMin ? '>' : '>='} ${o.min}`);
  if (o.max !== undefined) parts.push(`${o.exclusiveMax ? '<' : '<='} ${o.max}`);
  return parts.length ? ' ' + parts.join(' and ') : '';
}

interface NumOpts extends Common<number> {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

function numberField(o: NumOpts, integer: boolean): Field<number> {
  const what = (integer ? 'an integer' : 'a number') + rangeText(o);
  const schema: JsonSchema = { type: integer ? 'integer' : 'number' };
  if (o.min !== undefined) schema[o.exclusiveMin ? 'exclusiveMinimum' : 'minimum'] = o.min;
  if (o.max !== undefined) schema[o.exclusiveMax ? 'exclusiveMaximum' : 'maximum'] = o.max;
  return base(o, schema, (v, key) => {
    const n = toNumber(v);
    if (n === undefined || !Number.isFinite(n) || (integer && !Number.isInteger(n))) return fail(key, v, what);
    // Integers past 2^53 lose digits in JavaScript (and in YAML/JSON readers): refuse, never round.
    if (integer && !Number.isSafeInteger(n)) return fail(key, v, `${what}${o.max === undefined ? ` and at most ${Number.MAX_SAFE_INTEGER}` : ''} (larger integers cannot be represented exactly)`);
    if (o.min !== undefined && (o.exclusiveMin ? n <= o.min : n < o.min)) return fail(key, v, what);
    if (o.max !== undefined && (o.exclusiveMax ? n >= o.max : n > o.max)) return fail(key, v, what);
    return n;
  });
}

/** An integer key. */
export const int = (o: NumOpts): Field<number> => numberField(o, true);
/** A (finite) floating-point key; integers are accepted too. */
export const float = (o: NumOpts): Field<number> => numberField(o, false);

const TRUE_WORDS = new Set(['true', 'yes', 'on', 'y', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', 'n', '0']);

/** A boolean key (strings like "true"/"false" from interpolation are converted, as OmegaConf does). */
export function bool(o: Common<boolean>): Field<boolean> {
  return base(o, { type: 'boolean' }, (v, key) => {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') {
      const w = v.trim().toLowerCase();
      if (TRUE_WORDS.has(w)) return true;
      if (FALSE_WORDS.has(w)) return false;
    }
    return fail(key, v, 'true or false');
  });
}

/** A string key (numbers and booleans are turned into their text, as OmegaConf does). */
export function str(o: Common<string>): Field<string> {
  return base(o, { type: 'string' }, (v, key) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return fail(key, v, 'a string');
  });
}

/** A key restricted to a fixed set of names (OLMo's StrEnum types). */
export function oneOf<const V extends string>(values: readonly V[], o: Common<V>): Field<V> {
  return base(o, { type: 'string', enum: [...values] }, (v, key) => {
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as V;
    const hint = typeof v === 'string' ? suggest(v, values) : '';
    return fail(key, v, `one of ${values.map((x) => JSON.stringify(x)).join(', ')}${hint}`);
  });
}

/**
 * Makes a field accept null (Python's Optional). The default is the inner field's default, or null
 * when it has none or is a section (OLMo's optional sections, e.g. wandb, default to None).
 */
export function nullable<T>(f: Field<T>): Field<T | null> {
  return {
    doc: f.doc,
    makeDefault: (!f.fields && f.makeDefault) || (() => null),
    inner: f as Field<unknown>,
    fields: f.fields,
    parse: (v, key) => (v === null ? null : f.parse(v, key)),
    jsonSchema: () => {
      const s = f.jsonSchema();
      const { description, default: d, ...rest } = s;
      return { anyOf: [rest, { type: 'null' }], description, default: d === undefined ? null : d };
    },
  };
}

/** A list of values (YAML sequence). `length` fixes the size (e.g. Adam's betas pair). */
export function list<T>(item: Field<T>, o: Common<T[]> & { length?: number }): Field<T[]> {
  const schema: JsonSchema = { type: 'array', items: stripMeta(item.jsonSchema()) };
  if (o.length !== undefined) Object.assign(schema, { minItems: o.length, maxItems: o.length });
  return base(o, schema, (v, key) => {
    if (!Array.isArray(v)) return fail(key, v, o.length !== undefined ? `a list of ${o.length} values` : 'a list');
    if (o.length !== undefined && v.length !== o.length) return fail(key, v, `a list of exactly ${o.length} values`);
    return v.map((x, i) => item.parse(x, `${key}.${i}`));
  });
}

/** A mapping from free-form names to values (e.g. DataConfig.datasets). */
export function dict<T>(value: Field<T>, o: Common<Record<string, T>>): Field<Record<string, T>> {
  return base(o, { type: 'object', additionalProperties: stripMeta(value.jsonSchema()) }, (v, key) => {
    if (!isPlainObject(v)) return fail(key, v, 'a mapping of names to values');
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) out[k] = value.parse(x, `${key}.${k}`);
    return out;
  });
}

/** A key with hand-written parsing (e.g. max_duration's "2e12T" grammar). */
export function custom<T>(o: Common<T> & { schema: JsonSchema; parse: (v: unknown, key: string) => T }): Field<T> {
  return base(o, o.schema, o.parse);
}

/**
 * A nested section (a Python dataclass): a YAML mapping with a fixed set of keys. Unknown keys are
 * errors with a "did you mean" suggestion; missing keys take their defaults; a missing or null
 * section takes all defaults (use `nullable(section(...))` where OLMo's field is Optional).
 */
export function section<S extends Record<string, Field<any>>>(
  fields: S,
  o: { doc: string; title: string },
): Field<InferFields<S>> {
  const keys = Object.keys(fields);
  const required = keys.filter((k) => fields[k]!.makeDefault === undefined);
  const makeDefault = required.length
    ? undefined
    : () => Object.fromEntries(keys.map((k) => [k, fields[k]!.makeDefault!()])) as InferFields<S>;
  return {
    doc: o.doc,
    makeDefault,
    fields,
    parse(v, key) {
      if (v === undefined || (v === null && makeDefault)) v = {};
      if (!isPlainObject(v)) return fail(key, v, `a mapping of ${o.title} options`);
      const at = (k: string) => (key ? `${key}.${k}` : k);
      for (const k of Object.keys(v)) {
        if (!(k in fields)) throw new ConfigError(at(k), `unknown key in ${o.title}${suggest(k, keys) || ` (known keys: ${keys.join(', ')})`}`);
      }
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const f = fields[k]!;
        const raw = (v as Record<string, unknown>)[k];
        if (raw === '???') throw new ConfigError(at(k), 'a value is required but is "???" (OmegaConf\'s missing marker)');
        if (raw === undefined) {
          if (!f.makeDefault) throw new ConfigError(at(k), `missing required key (${f.doc})`);
          out[k] = f.makeDefault();
        } else {
          out[k] = f.parse(raw, at(k));
        }
      }
      return out as InferFields<S>;
    },
    jsonSchema() {
      const properties = Object.fromEntries(keys.map((k) => [k, allowInterpolation(fields[k]!.jsonSchema())]));
      const s: JsonSchema = { type: 'object', title: o.title, description: o.doc, properties, additionalProperties: false };
      if (required.length) s.required = required;
      return s;
    },
  };
}

/** Lets a key hold an OmegaConf interpolation string (`${...}`) in place of its typed value. */
export function allowInterpolation(s: JsonSchema): JsonSchema {
  if (s.type === 'string' && !s.enum) return s;
  const { description, default: d, title, ...rest } = s;
  const out: JsonSchema = { anyOf: [rest, { type: 'string', pattern: '\\$\\{' }], description };
  if (title !== undefined) out.title = title;
  if (d !== undefined) out.default = d;
  return out;
}

function stripMeta(s: JsonSchema): JsonSchema {
  const { description: _d, default: _f, ...rest } = s;
  return rest;
}

/**
 * Looks up the default value at a dotted path below `field` (used when an interpolation refers to
 * a key the YAML leaves out, as OmegaConf sees the structured schema's defaults). Returns
 * `{found: false}` when the spec has no such key.
 */
export function defaultAt(field: Field<unknown>, path: readonly string[]): { found: boolean; value?: unknown } {
  let f: Field<unknown> | undefined = field;
  for (let i = 0; i < path.length; i++) {
    if (!f) return { found: false };
    if (f.fields && path[i]! in f.fields) {
      f = f.fields[path[i]!];
      continue;
    }
    // Not a section key: walk into the default value itself (custom sections such as `model`).
    let v: unknown = f.makeDefault?.();
    for (const seg of path.slice(i)) {
      if (v === null || typeof v !== 'object' || !(seg in (v as object))) return { found: false };
      v = (v as Record<string, unknown>)[seg];
    }
    return { found: true, value: v };
  }
  if (!f?.makeDefault) return { found: false };
  return { found: true, value: f.makeDefault() };
}

/** True for a plain `{...}` object (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** ` (did you mean "x"?)` for the closest candidate within a small edit distance, else "". */
export function suggest(word: string, candidates: readonly string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return best && bestD <= limit ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
