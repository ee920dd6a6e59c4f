// Memory scopes for tensors. The garbage collector cannot see native (or GPU) memory, so olmo-ts
// frees tensors explicitly: `dispose()`, or `tidy(fn)` which frees everything created inside fn
// except what fn returns and what was `keep()`-ed. Same contract as tfjs-core's engine.
import { native } from '../native';

/** What the scope machinery needs from a tensor (avoids an import cycle with tensor.ts). */
export interface Disposable {
  /** Native handle; -1 once disposed. */
  id: number;
  /** Set by keep(): survives the scopes it was created in. */
  kept: boolean;
  dispose(): void;
}

const scopes: Disposable[][] = [];

/** Called by the Tensor constructor: the tensor belongs to the innermost open scope. */
export function track(t: Disposable): void {
  const n = scopes.length;
  if (n !== 0) scopes[n - 1]!.push(t);
}

function collect(value: unknown, out: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('id' in value && 'kept' in value && typeof (value as Disposable).dispose === 'function') {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, depth + 1);
}

/**
 * Runs fn and disposes every tensor created during it, except tensors reachable from its return
 * value (a tensor, or arrays/maps/plain objects of them) and tensors passed to keep(). Returned
 * tensors move to the enclosing scope. fn must be synchronous: a Promise result is rejected.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Disposable[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) if (!t.kept) t.dispose();
    throw new TypeError('tidy(fn): fn must be synchronous (it returned a Promise); use explicit dispose() across awaits');
  }
  const escaping = new Set<Disposable>();
  collect(result, escaping);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (escaping.has(t)) {
      if (parent && !t.kept) parent.push(t);
    } else if (!t.kept) {
      t.dispose();
    }
  }
  return result;
}

/** Exempts a tensor from disposal by the tidy scopes it lives in; it must be disposed by hand. */
export function keep<T extends Disposable>(t: T): T {
  t.kept = true;
  return t;
}

/** Disposes a tensor or any nesting of arrays/objects of tensors. */
export function dispose(value: unknown): void {
  const all = new Set<Disposable>();
  collect(value, all);
  for (const t of all) t.dispose();
}

/** Number of tensors alive in the native handle table (every Tensor not yet disposed). */
export function liveTensors(): number {
  return native.liveCount();
}
