// Dotted command-line overrides (`--optimizer.learning_rate=1e-3`, `--wandb=null`, `--dry_run`) as
// OLMo's scripts/train.py takes them (util.clean_opt + OmegaConf.from_dotlist): values are YAML,
// so they get YAML's types, and a mapping merges into the section it replaces.
import { parse as parseYaml } from 'yaml';
import { ConfigError, showValue } from './errors';
import { isPlainObject } from './spec';

/** One parsed override. */
export interface Override {
  /** Path segments, e.g. ["optimizer", "learning_rate"]; list items by index ("evaluators", "0"). */
  path: string[];
  /** The YAML-typed value (may still hold `${...}` interpolations). */
  value: unknown;
  /** The argument as given (for messages). */
  source: string;
}

/**
 * Parses `--a.b.c=value` (leading dashes optional; dashes in the key become underscores; a bare
 * `--flag` means `flag=true`; an empty value means null), as OLMo's clean_opt and from_dotlist do.
 */
export function parseOverride(arg: string): Override {
  const eq = arg.indexOf('=');
  const rawKey = eq < 0 ? arg : arg.slice(0, eq);
  const rawVal = eq < 0 ? 'true' : arg.slice(eq + 1);
  const key = rawKey.replace(/^-+|-+$/g, '').replace(/-/g, '_');
  const path = key.split('.');
  if (!key || path.some((p) => p === '')) {
    throw new ConfigError('', `bad override ${showValue(arg)}: expected --key.path=value (e.g. --optimizer.learning_rate=4e-4)`);
  }
  let value: unknown;
  try {
    value = parseYaml(rawVal, { version: '1.1' });
  } catch (e) {
    throw new ConfigError(key, `override value ${showValue(rawVal)} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return { path, value: value === undefined ? null : value, source: arg };
}

/** Merges `value` into `target` as OmegaConf.merge does: mappings merge key by key, the rest replaces. */
export function mergeValue(target: unknown, value: unknown): unknown {
  if (isPlainObject(target) && isPlainObject(value)) {
    const out: Record<string, unknown> = { ...target };
    for (const [k, v] of Object.entries(value)) out[k] = k in out ? mergeValue(out[k], v) : v;
    return out;
  }
  return value;
}

/**
 * Applies overrides to a raw config tree (returns a new tree). Missing or null sections on the way
 * are created (`--wandb.project=x` with `wandb: null`); list items are addressed by index. Unknown
 * keys are left for validation, which names them with a "did you mean".
 */
export function applyOverrides(root: Record<string, unknown>, overrides: readonly (string | Override)[]): Record<string, unknown> {
  let out: unknown = root;
  for (const o of overrides) {
    const ov = typeof o === 'string' ? parseOverride(o) : o;
    out = setAt(out, ov.path, ov.value, 0, ov);
  }
  return out as Record<string, unknown>;
}

function setAt(node: unknown, path: readonly string[], value: unknown, i: number, ov: Override): unknown {
  if (i === path.length) return mergeValue(node, value);
  const seg = path[i]!;
  const here = path.slice(0, i + 1).join('.');
  if (Array.isArray(node)) {
    if (!/^\d+$/.test(seg) || Number(seg) >= node.length) {
      throw new ConfigError(here, `override ${showValue(ov.source)}: expected a list index below ${node.length}`);
    }
    const copy = node.slice();
    copy[Number(seg)] = setAt(copy[Number(seg)], path, value, i + 1, ov);
    return copy;
  }
  if (node === null || node === undefined) node = {};
  if (!isPlainObject(node)) {
    throw new ConfigError(path.slice(0, i).join('.'), `override ${showValue(ov.source)}: this key holds ${showValue(node)}, not a section`);
  }
  return { ...node, [seg]: setAt(node[seg], path, value, i + 1, ov) };
}

/**
 * Turns command-line words into override strings: `--a.b=c` and `a.b=c` stay as they are, and
 * `--a.b c` (value as the next word, when it has no "=" and does not start with "-") becomes
 * `--a.b=c`; a lone `--flag` stays a flag (true).
 */
export function collectOverrideArgs(words: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1];
    if (w.startsWith('--') && !w.includes('=') && next !== undefined && !next.startsWith('-') && !next.includes('=')) {
      out.push(`${w}=${next}`);
      i++;
    } else out.push(w);
  }
  return out;
}
