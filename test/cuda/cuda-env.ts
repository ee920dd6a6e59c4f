// What the CUDA tests share: the device they run on, a clear failure when there is no GPU, and the
// Python (with torch, on the same machine) that computes their references at test time.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Device, buildInfo, cuda } from '../../src';

/**
 * The device under test: cuda:0 (the name tensors report). OLMO_TS_CUDA_TEST_DEVICE=cpu runs the
 * same tests against CPU references, to rehearse them on a machine without a GPU.
 */
export const DEVICE: Device = process.env.OLMO_TS_CUDA_TEST_DEVICE === 'cpu' ? 'cpu' : 'cuda:0';
/** The device type the Python reference scripts take ('cuda' or 'cpu'). */
export const PY_DEVICE = DEVICE === 'cpu' ? 'cpu' : 'cuda';

/** Why the CUDA tests cannot run here, or null when they can. */
export function cudaMissing(): string | null {
  if (DEVICE === 'cpu') return null;
  const info = buildInfo();
  if (!info.cudaBuild) return `no CUDA device: the addon was built against a CPU-only libtorch ${info.torchVersion}`;
  if (!cuda.isAvailable()) return `no CUDA device: libtorch ${info.torchVersion} has CUDA, but no GPU is visible`;
  return null;
}

/** The Python whose torch computes references: OLMO_TS_PYTHON, else python3 on PATH. */
export function python(): string {
  return process.env.OLMO_TS_PYTHON || 'python3';
}

/** A fresh temporary folder (removed by the caller's `finally`). */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `olmo-ts-${prefix}-`));
}

/**
 * Runs a reference script of test/cuda with `python()` and returns its stdout; throws with its
 * stderr when it fails. The scripts set TF32 off (float32 matmuls in full precision), as libtorch's
 * default is for the addon.
 */
export function runReference(script: string, args: string[]): string {
  const file = path.join(__dirname, script);
  const r = spawnSync(python(), [file, ...args], { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`${script} failed under ${python()} (exit ${r.status ?? r.signal}):\n${(r.stderr || String(r.error)).trim().split('\n').slice(-15).join('\n')}`);
  }
  return r.stdout;
}

/** bfloat16 unit roundoff (8 significant bits) and float32's (24). */
export const U_BF16 = 2 ** -8;
export const U_F32 = 2 ** -24;
