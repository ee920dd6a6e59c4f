// Python's glob.glob over the local file system, shared by the config resolvers (OLMo's
// ${path.glob:...}) and prepare-data's input lists: `*`, `?`, `[...]`/`[!...]` match within one
// path segment, names starting with "." only match a segment starting with ".", and with
// `recursive` a `**` segment matches zero or more folders (Python's recursive=True).
import * as fs from 'node:fs';
import * as path from 'node:path';

const MAGIC = /[*?[]/;

/** True when the pattern has glob characters. */
export function hasMagic(pattern: string): boolean {
  return MAGIC.test(pattern);
}

// fnmatch-style segment pattern -> RegExp, as Python's fnmatch.translate.
function segmentRegExp(pat: string): RegExp {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = pat.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = pat.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += '[' + body.replace(/\\/g, '\\\\') + ']';
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir === '' ? '.' : dir);
  } catch {
    return [];
  }
}

const join = (b: string, n: string): string => (b === '' ? n : path.posix.join(b, n));

/** Every non-hidden folder under `b`, `b` included (for a recursive `**`). */
function foldersUnder(b: string): string[] {
  const out = [b];
  for (let k = 0; k < out.length; k++) {
    for (const n of list(out[k]!)) {
      const p = join(out[k]!, n);
      if (!n.startsWith('.') && isDir(p)) out.push(p);
    }
  }
  return out;
}

/**
 * The paths matching `pattern`, unsorted (callers sort, as OLMo does). A pattern without glob
 * characters gives itself if it exists. Relative patterns give relative paths.
 */
export function glob(pattern: string, opts: { recursive?: boolean } = {}): string[] {
  if (!MAGIC.test(pattern)) return fs.existsSync(pattern) ? [pattern] : [];
  const abs = path.isAbsolute(pattern);
  const parts = pattern.split('/');
  let bases: string[] = [abs ? '/' : ''];
  for (let i = abs ? 1 : 0; i < parts.length; i++) {
    const seg = parts[i]!;
    const last = i === parts.length - 1;
    if (seg === '') continue;
    let next: string[] = [];
    if (seg === '**' && opts.recursive) {
      for (const b of bases) next.push(...foldersUnder(b));
      if (last) next = next.flatMap((d) => list(d).filter((n) => !n.startsWith('.')).map((n) => join(d, n)));
    } else {
      for (const b of bases) {
        if (!MAGIC.test(seg)) {
          const p = join(b, seg);
          if (last ? fs.existsSync(p) : isDir(p)) next.push(p);
          continue;
        }
        const re = segmentRegExp(seg);
        for (const n of list(b)) {
          if (n.startsWith('.') && !seg.startsWith('.')) continue;
          if (!re.test(n)) continue;
          const p = join(b, n);
          if (last || isDir(p)) next.push(p);
        }
      }
    }
    bases = [...new Set(next)];
  }
  return pattern.endsWith('/') ? bases.map((b) => b + '/') : bases;
}
