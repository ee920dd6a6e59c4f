// Number and duration formatting shared by the console logger and the HTML report. `formatFloat`
// follows OLMo's `log_metrics_to_console` rules so plain logs read like OLMo's.

/** Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 or from 1e16, `1.0` for integers. */
export function pyFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const a = Math.abs(v);
  if (a < 1e-4 || a >= 1e16) {
    // JS gives "5e-5" / "1.5e+20"; Python gives "5e-05" / "1.5e+20" (at least two exponent digits).
    return v.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  }
  const s = String(v);
  return Number.isInteger(v) ? `${s}.0` : s;
}

/** `4.352e-06`: at most 4 significant digits, Python's two-digit exponent, no trailing zeros. */
export function shortExp(v: number): string {
  const [m, e] = v.toExponential(3).split('e') as [string, string];
  const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
  return `${mant}e${e.replace(/^([+-])(\d)$/, '$10$2')}`;
}

/** Thousands separators, like Python's `{:,d}`. */
export function withCommas(n: number): string {
  const t = Math.trunc(n);
  const digits = BigInt(Math.abs(t)).toString(); // exact digits, like Python's int(), even past 1e21
  return (t < 0 ? '-' : '') + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * OLMo's `format_float`: `1,234` above 1000, then 1/2/3/4 decimals above 100/10/1/else; below 1e-4
 * OLMo prints Python's full `str(v)` (`4.351500000041142e-06`), olmo-ts 4 significant digits in the
 * same notation (`4.352e-06`). Non-finite values print as Python prints them (`nan`, `inf`).
 */
export function formatFloat(v: number): string {
  if (!Number.isFinite(v)) return pyFloatRepr(v);
  if (v > 0 && v < 0.0001) return shortExp(v);
  if (v < 0.0001) return pyFloatRepr(v);
  if (v > 1000) return withCommas(v);
  if (v > 100) return v.toFixed(1);
  if (v > 10) return v.toFixed(2);
  if (v > 1) return v.toFixed(3);
  return v.toFixed(4);
}

/** A duration for people: `42s`, `3m05s`, `2h07m`, `3d04h`; `--` when unknown or not finite. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** A count with an SI suffix, three significant digits: `950`, `12.3k`, `4.56M`, `1.20B`. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return pyFloatRepr(n);
  const a = Math.abs(n);
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
  for (const [scale, suffix] of units) {
    if (a >= scale) {
      const x = n / scale;
      return `${Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2)}${suffix}`;
    }
  }
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
