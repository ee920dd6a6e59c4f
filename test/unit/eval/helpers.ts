// Shared pieces of the evaluator tests: the Python reference runner (OLMo's eval arithmetic
// re-stated in PyTorch), in-process collectives that simulate several ranks, a seeded RNG, a
// character-level tokenizer and raw float32 writers.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvalCollective } from '../../../src/eval';

export const PY = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'fixtures', 'olmo_eval_reference.py');

let probed: string | undefined | null = null;
/** Why the Python reference cannot run here (undefined when it can). */
export function pythonSkipReason(): string | undefined {
  if (probed === null) {
    const r = spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    probed = r.status === 0 ? undefined : `${PY} with torch and numpy is not available (apt-get install python3-torch python3-numpy)`;
  }
  return probed;
}

/** Runs the reference on one job (or a list) and returns its JSON answer. */
export function runReference<T>(jobs: unknown, dir: string): T {
  const file = path.join(dir, `job-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(jobs));
  const r = spawnSync(PY, [SCRIPT, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`reference failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.replace(/\bNaN\b/g, 'null')) as T;
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `olmo-eval-${prefix}-`));
  return { dir, cleanup: () => { if (!process.env.OLMO_TS_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true }); } };
}

/**
 * `worldSize` collectives for ranks that run in this process (concurrently, as promises): each
 * allReduceSum resolves once every rank has contributed its array for that round.
 */
export function localCollectives(worldSize: number): EvalCollective[] {
  let round: { parts: Float64Array[]; waiters: Array<(v: Float64Array) => void> } = { parts: [], waiters: [] };
  return Array.from({ length: worldSize }, (_, rank) => ({
    rank,
    worldSize,
    allReduceSum(values: Float64Array): Promise<Float64Array> {
      const r = round;
      return new Promise<Float64Array>((resolve) => {
        r.parts.push(Float64Array.from(values));
        r.waiters.push(resolve);
        if (r.parts.length === worldSize) {
          if (r.parts.some((p) => p.length !== values.length)) throw new Error('ranks reduced arrays of different lengths');
          const sum = new Float64Array(values.length);
          for (const p of r.parts) for (let i = 0; i < p.length; i++) sum[i] += p[i]!;
          round = { parts: [], waiters: [] };
          for (const w of r.waiters) w(Float64Array.from(sum));
        }
      });
    },
  }));
}

/** A small deterministic PRNG (mulberry32) and a normal draw from it. */
export function rng(seed: number): { next: () => number; normal: () => number } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) };
}

/** A character-level "tokenizer": one id per UTF-16 unit, in 1..vocab-1 (0 is the pad). */
export function charEncode(vocab: number): (texts: string[]) => Promise<number[][]> {
  return async (texts) => texts.map((t) => Array.from(t, (c) => (c.charCodeAt(0) % (vocab - 1)) + 1));
}

/** Appends float32 values to a raw little-endian file. */
export function appendF32(file: string, values: Float32Array): void {
  fs.appendFileSync(file, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
}
