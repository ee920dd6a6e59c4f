// OmegaConf-style interpolation over a plain config tree, as OLMo's YAML files use it: `${a.b}`
// (absolute), `${.sibling}` / `${..uncle}` (relative), `${name:arg,...}` resolver calls that nest
// (`${path.choose:${oc.env:DIR,none}/ckpt,/results}`), `\${` for a literal, and cycle detection.
import { ConfigError, showValue } from './errors';
import { isPlainObject, suggest } from './spec';

/** Where a resolver is being called from (for error messages). */
export interface ResolverContext {
  /** Dotted key whose value contains the call. */
  key: string;
}
/** A resolver: receives its already-resolved arguments. */
export type Resolver = (args: unknown[], ctx: ResolverContext) => unknown;

/** How to resolve interpolations. */
export interface InterpolateOptions {
  /** Resolvers by name (e.g. "oc.env", "path.glob"). */
  resolvers: Readonly<Record<string, Resolver>>;
  /** Value for a referenced key the tree lacks (OmegaConf sees the schema's defaults). */
  fallback?: (path: readonly string[]) => { found: boolean; value?: unknown };
}

type Piece = { text: string } | { ref: string } | { call: string; args: Arg[] };
type Arg = { pieces: Piece[]; quoted: boolean };

/** True if a string contains an (unescaped) interpolation. */
export function hasInterpolation(s: string): boolean {
  return /(^|[^\\])\$\{/.test(s);
}

/** Parses a string into literal text and interpolations (throws on unbalanced braces). */
export function parseInterpolation(s: string, key = ''): Piece[] {
  const pieces: Piece[] = [];
  let text = '';
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('\\${', i)) {
      text += '${';
      i += 3;
    } else if (s.startsWith('${', i)) {
      const end = matchBrace(s, i + 2, key);
      if (text) pieces.push({ text });
      text = '';
      pieces.push(parseBody(s.slice(i + 2, end), key));
      i = end + 1;
    } else {
      text += s[i++];
    }
  }
  if (text) pieces.push({ text });
  return pieces;
}

// Index of the `}` closing an interpolation whose body starts at `from`.
function matchBrace(s: string, from: number, key: string): number {
  let depth = 0;
  let quote = '';
  for (let i = from; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  throw new ConfigError(key, `got ${showValue(s)}, expected a closing "}" for the interpolation`);
}

function parseBody(body: string, key: string): Piece {
  const colon = body.indexOf(':');
  const firstInterp = body.indexOf('${');
  if (colon < 0 || (firstInterp >= 0 && firstInterp < colon)) {
    const ref = body.trim();
    if (!/^\.*[\w-]+(?:(?:\.[\w-]+)|(?:\[\d+\]))*$|^\.+$/.test(ref)) {
      throw new ConfigError(key, `got \${${body}}, expected a key path like \${a.b} or a resolver call like \${oc.env:VAR,default}`);
    }
    return { ref };
  }
  const call = body.slice(0, colon).trim();
  if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(call)) throw new ConfigError(key, `got \${${body}}: ${showValue(call)} is not a resolver name`);
  return { call, args: splitArgs(body.slice(colon + 1), key) };
}

function splitArgs(s: string, key: string): Arg[] {
  const raw: string[] = [];
  let cur = '';
  let depth = 0;
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\' && i + 1 < s.length) cur += c + s[++i];
      else {
        if (c === quote) quote = '';
        cur += c;
      }
    } else if (c === "'" || c === '"') {
      quote = c;
      cur += c;
    } else if (c === '\\' && s[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === '$' && s[i + 1] === '{') {
      depth++;
      cur += '${';
      i++;
    } else if ((c === '[' || c === '{') && depth >= 0) {
      depth++;
      cur += c;
    } else if (c === '}' || c === ']') {
      depth--;
      cur += c;
    } else if (c === ',' && depth === 0) {
      raw.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quote) throw new ConfigError(key, `got ${showValue(s)}, expected a closing ${quote} in the resolver arguments`);
  raw.push(cur);
  if (raw.length === 1 && raw[0]!.trim() === '') return [];
  return raw.map((a) => {
    const t = a.trim();
    const q = t.length >= 2 && (t[0] === "'" || t[0] === '"') && t[t.length - 1] === t[0];
    const inner = q ? t.slice(1, -1).replace(/\\(['"\\])/g, '$1') : t;
    return { pieces: parseInterpolation(inner, key), quoted: q };
  });
}

// An unquoted resolver argument is typed as OmegaConf's grammar types it.
function primitive(s: string): unknown {
  if (/^[+-]?\d+$/.test(s)) return Number(s);
  if (/^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$/.test(s)) return Number(s);
  if (/^(true|false)$/i.test(s)) return s.toLowerCase() === 'true';
  if (/^null$/i.test(s)) return null;
  return s;
}

/** Splits a reference (`a.b[0]`, `.x`, `..y.z`) into absolute path segments, relative to `at`. */
export function refPath(ref: string, at: readonly string[]): string[] {
  const m = /^(\.*)(.*)$/.exec(ref)!;
  const dots = m[1]!.length;
  const rest = m[2]!.replace(/\[(\d+)\]/g, '.$1').split('.').filter((x) => x !== '');
  if (dots === 0) return rest;
  // One dot is the node holding the current key; each further dot climbs one level.
  const parent = at.slice(0, Math.max(0, at.length - dots));
  return [...parent, ...rest];
}

/**
 * Returns a copy of `root` with every interpolation resolved. Whole-value interpolations keep the
 * referenced value's type (`${save_interval}` stays an integer); interpolations inside text are
 * turned into text. Errors are ConfigErrors naming the key whose value failed to resolve.
 */
export function resolveInterpolations(root: unknown, opts: InterpolateOptions): unknown {
  const done = new Map<string, unknown>();
  const active: string[] = [];

  const lookup = (path: readonly string[]): { found: boolean; value?: unknown } => {
    let v: unknown = root;
    for (const seg of path) {
      if (Array.isArray(v) && /^\d+$/.test(seg) && Number(seg) < v.length) v = v[Number(seg)];
      else if (isPlainObject(v) && Object.prototype.hasOwnProperty.call(v, seg)) v = v[seg];
      else return opts.fallback ? opts.fallback(path) : { found: false };
    }
    return { found: true, value: resolveAt(path, v) };
  };

  const resolveAt = (path: readonly string[], v: unknown): unknown => {
    const id = path.join('.');
    if (done.has(id)) return done.get(id);
    if (active.includes(id)) {
      throw new ConfigError(id, `interpolation cycle: ${[...active.slice(active.indexOf(id)), id].join(' -> ')}`);
    }
    active.push(id);
    let out: unknown;
    if (typeof v === 'string') out = hasInterpolation(v) || v.includes('\\${') ? evalPieces(parseInterpolation(v, id), path) : v;
    else if (Array.isArray(v)) out = v.map((x, i) => resolveAt([...path, String(i)], x));
    else if (isPlainObject(v)) out = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveAt([...path, k], x)]));
    else out = v;
    active.pop();
    done.set(id, out);
    return out;
  };

  const evalPieces = (pieces: Piece[], at: readonly string[]): unknown => {
    if (pieces.length === 1 && !('text' in pieces[0]!)) return evalPiece(pieces[0]!, at);
    return pieces.map((p) => asText(evalPiece(p, at))).join('');
  };

  const evalPiece = (p: Piece, at: readonly string[]): unknown => {
    const key = at.join('.');
    if ('text' in p) return p.text;
    if ('ref' in p) {
      const path = refPath(p.ref, at);
      const r = lookup(path);
      if (!r.found) throw new ConfigError(key, `interpolation \${${p.ref}} refers to ${showValue(path.join('.'))}, which is not in the config${nearestKey(root, path)}`);
      return r.value;
    }
    const fn = opts.resolvers[p.call];
    if (!fn) {
      throw new ConfigError(key, `unknown resolver ${showValue(p.call)} in \${${p.call}:...}${suggest(p.call, Object.keys(opts.resolvers)) || ` (known: ${Object.keys(opts.resolvers).join(', ')})`}`);
    }
    const args = p.args.map((a) => {
      if (!a.quoted && a.pieces.length === 1 && 'text' in a.pieces[0]!) return primitive(a.pieces[0].text);
      if (a.pieces.length === 0) return '';
      const v = evalPieces(a.pieces, at);
      return a.quoted ? asText(v) : v;
    });
    return fn(args, { key });
  };

  return resolveAt([], root);
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

// A "did you mean" for the last segment of a missing path, from the keys next to it.
function nearestKey(root: unknown, path: readonly string[]): string {
  let v: unknown = root;
  for (const seg of path.slice(0, -1)) {
    if (!isPlainObject(v) || !(seg in v)) return '';
    v = v[seg];
  }
  return isPlainObject(v) ? suggest(path[path.length - 1] ?? '', Object.keys(v)) : '';
}
