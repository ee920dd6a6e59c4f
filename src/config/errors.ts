// The error every config problem raises: it names the key (dotted path), the bad value and what
// was expected, so a user can fix a YAML file or a --a.b=c override without reading code.

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  /** Dotted path of the offending key, e.g. "model.d_model" ("" for the whole config). */
  readonly key: string;
  constructor(key: string, message: string) {
    super(key ? `${key}: ${message}` : message);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/** Formats a value for an error message (short, JSON-like). */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  // JSON has no NaN or infinities (it would print null): show them as YAML writes them.
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf';
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 77) + '...' : s;
  } catch {
    return String(v);
  }
}
