// The interpolation resolvers OLMo's configs call: OmegaConf's `oc.env` and OLMo's own `path.glob`,
// `path.choose` and `path.last_checkpoint` (olmo/config.py BaseConfig._register_resolvers, with
// find_latest_checkpoint and is_url from olmo/util.py), plus the Python-style glob they need.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { glob, hasMagic } from '../util/glob';
import { ConfigError, showValue } from './errors';
import type { Resolver } from './interpolate';

/** Options shared by the path resolvers. */
export interface ResolverOptions {
  /**
   * As OLMo's `validate_paths` (default true): a glob that matches nothing or a folder without
   * checkpoints is an error. When false they resolve to nothing ([] / "") instead.
   */
  validatePaths?: boolean;
  /** Environment for `oc.env` (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Receives notes such as "path.choose fell back to its last candidate". */
  onWarning?: (message: string) => void;
}

/** OLMo's is_url: a scheme such as s3://, gs://, r2://, https://, file://. */
export function isUrl(p: string): boolean {
  return /^[a-z0-9]+:\/\/.*/.test(p);
}

/**
 * Python's glob.glob(pattern) without recursive=True: `*`, `?` and `[...]` match within one path
 * segment (`**` acts like `*`), names starting with "." match only a pattern starting with ".".
 * Results are unsorted (callers sort, as OLMo does).
 */
export function pyGlob(pattern: string): string[] {
  return glob(pattern);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * OLMo's find_latest_checkpoint for a local folder: the `stepN` / `stepN-unsharded` directory with
 * the highest N, preferring the sharded one on a tie. Null when there is none.
 */
export function findLatestCheckpoint(dir: string): string | null {
  let best: string | null = null;
  let bestStep = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return null;
  }
  for (const name of names.filter((n) => n.startsWith('step')).sort()) {
    const p = path.join(dir, name);
    if (!isDirectory(p)) continue;
    const num = name.replace('step', '').replace('-unsharded', '');
    if (!/^\s*[+-]?\d+\s*$/.test(num)) continue;
    const step = Number(num);
    if (step > bestStep || (step === bestStep && !name.endsWith('-unsharded'))) {
      bestStep = step;
      best = p;
    }
  }
  return best;
}

function strings(name: string, args: unknown[], key: string): string[] {
  return args.map((a, i) => {
    if (typeof a !== 'string') throw new ConfigError(key, `\${${name}:...} argument ${i + 1} is ${showValue(a)}, expected a path`);
    return a;
  });
}

/** The resolvers OLMo's configs use, keyed by name, ready for resolveInterpolations. */
export function defaultResolvers(o: ResolverOptions = {}): Record<string, Resolver> {
  const validate = o.validatePaths ?? true;
  const env = o.env ?? process.env;
  const warn = o.onWarning ?? (() => {});
  return {
    // OmegaConf's oc.env: the variable's text; else the default (a string or null); else an error.
    'oc.env': (args, { key }) => {
      if (args.length < 1 || args.length > 2 || typeof args[0] !== 'string') {
        throw new ConfigError(key, `\${oc.env:...} got ${showValue(args)}, expected a variable name and an optional default: \${oc.env:VAR,default}`);
      }
      const v = env[args[0]];
      if (v !== undefined) return v;
      if (args.length === 2) {
        const d = args[1];
        if (d !== null && typeof d !== 'string') {
          throw new ConfigError(key, `\${oc.env:${args[0]},...} default is ${showValue(d)}, expected a string or null (quote it: '${String(d)}')`);
        }
        return d;
      }
      throw new ConfigError(key, `environment variable ${args[0]} is not set and \${oc.env:${args[0]}} has no default`);
    },
    // Expands each glob (sorted) and concatenates the matches. URLs cannot be listed: one without
    // wildcards passes through as it is.
    'path.glob': (args, { key }) => {
      const out: string[] = [];
      for (const p of strings('path.glob', args, key)) {
        if (isUrl(p)) {
          if (hasMagic(p)) throw new ConfigError(key, `\${path.glob:${p}}: remote paths cannot be listed, expected a local glob or a URL without wildcards`);
          out.push(p);
          continue;
        }
        const matches = pyGlob(p).sort();
        if (!matches.length && validate) throw new ConfigError(key, `\${path.glob:${p}} does not match any files or dirs`);
        out.push(...matches);
      }
      return out;
    },
    // The first candidate that is a URL or an existing path. Where none exists OLMo raises (or
    // returns "" without validation); we return the last candidate, the config's final fallback,
    // so a config written for a cluster (e.g. save_folder under /results) still loads anywhere.
    'path.choose': (args, { key }) => {
      const cands = strings('path.choose', args, key);
      if (!cands.length) throw new ConfigError(key, '${path.choose:...} got no candidates, expected at least one path');
      const hit = cands.find((p) => isUrl(p) || fs.existsSync(p));
      if (hit !== undefined) return hit;
      const last = cands[cands.length - 1]!;
      warn(`${key}: none of ${cands.map((c) => JSON.stringify(c)).join(', ')} exists; \${path.choose} uses the last one`);
      return last;
    },
    // The latest stepN checkpoint folder in a local folder (OLMo also lists s3/r2 buckets, which
    // needs credentials and a network; here those are errors).
    'path.last_checkpoint': (args, { key }) => {
      const [dir, ...extra] = strings('path.last_checkpoint', args, key);
      if (dir === undefined || extra.length) throw new ConfigError(key, `\${path.last_checkpoint:...} got ${args.length} arguments, expected one folder`);
      let local = dir;
      if (isUrl(dir)) {
        if (!dir.startsWith('file://')) {
          throw new ConfigError(key, `\${path.last_checkpoint:${dir}}: searching remote folders is not supported, expected a local folder (or pass the checkpoint path itself)`);
        }
        local = dir.slice('file://'.length);
      }
      const found = findLatestCheckpoint(local);
      if (found !== null) return found;
      if (validate) throw new ConfigError(key, `could not find a latest checkpoint at ${showValue(dir)} (no stepN folders)`);
      return '';
    },
  };
}
