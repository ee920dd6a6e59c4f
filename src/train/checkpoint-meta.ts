// Structure checks of a checkpoint's JSON files (manifest.json, train.json, optim.json) and of its
// identity (folder name, manifest step and train.json step agree). A file can pass its SHA-256
// and still be wrong (written by another tool, edited, copied under another name); each problem
// is a CheckpointError naming the file and the field. No tensors here: the writer thread uses it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from './checkpoint-files';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
};

/** A reader of one JSON file's fields, each failure naming `file` and the field. */
class Fields {
  constructor(readonly file: string) {}
  fail(field: string, got: unknown, expected: string): never {
    throw new CheckpointError(`${this.file}: ${field ? `field "${field}" ` : ''}is ${show(got)}, expected ${expected}`);
  }
  object(v: unknown, field: string): Record<string, unknown> {
    return isObj(v) ? v : this.fail(field, v, 'an object');
  }
  count(v: unknown, field: string): number {
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : this.fail(field, v, 'an integer >= 0');
  }
  finite(v: unknown, field: string): number {
    return typeof v === 'number' && Number.isFinite(v) ? v : this.fail(field, v, 'a finite number');
  }
  nullableFinite(v: unknown, field: string): number | null {
    return v === null ? null : this.finite(v, field);
  }
  string(v: unknown, field: string): string {
    return typeof v === 'string' ? v : this.fail(field, v, 'a string');
  }
}

/** manifest.json as the checkpoint writer writes it. */
export interface ManifestShape {
  format: number;
  step: number;
  created: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Checks manifest.json's structure (the format number is checked by the caller). */
export function validateManifest(raw: unknown, file: string): ManifestShape {
  const f = new Fields(file);
  const m = f.object(raw, '');
  if (typeof m.format !== 'number') f.fail('format', m.format, 'a format number');
  f.count(m.step, 'step');
  const files = f.object(m.files, 'files');
  for (const [name, entry] of Object.entries(files)) {
    // plain names, or one rank's file of a sharded checkpoint (rank{r}/name)
    if (!/^(rank\d+\/)?[^/\\]+$/.test(name) || /(^|\/)\.\.?$/.test(name)) f.fail(`files`, name, 'plain file names (or rank{r}/name in a sharded checkpoint)');
    const e = f.object(entry, `files.${name}`);
    f.count(e.bytes, `files.${name}.bytes`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) f.fail(`files.${name}.sha256`, e.sha256, 'a SHA-256 hex digest');
  }
  return m as unknown as ManifestShape;
}

/** The trainer state in train.json (see TrainerState in checkpoint.ts). */
export interface TrainerStateShape {
  global_step: number;
  global_train_examples_seen_this_epoch: number;
  global_train_tokens_seen: number;
  epoch: number;
  rng: Record<string, string>;
  data_fingerprint?: string;
  run_id?: string;
  skipped_steps?: number;
  clip?: { max_grad_norm: number | null; max_grad_norm_ratio: number | null }[];
  [key: string]: unknown;
}

/**
 * Checks train.json's structure: counters are integers >= 0, rng holds base64 strings (of
 * `rngBytes` bytes for "cpu" when given), optional fields have their types.
 */
export function validateTrainerState(raw: unknown, file: string, rngBytes?: number): TrainerStateShape {
  const f = new Fields(file);
  const t = f.object(raw, '');
  for (const k of ['global_step', 'global_train_examples_seen_this_epoch', 'global_train_tokens_seen', 'epoch']) f.count(t[k], k);
  const rng = f.object(t.rng, 'rng');
  for (const [k, v] of Object.entries(rng)) {
    const s = f.string(v, `rng.${k}`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) f.fail(`rng.${k}`, s, 'a base64 random-generator state');
    if (k === 'cpu' && rngBytes !== undefined && Buffer.from(s, 'base64').byteLength !== rngBytes) {
      f.fail('rng.cpu', `${Buffer.from(s, 'base64').byteLength} bytes`, `a CPU generator state of ${rngBytes} bytes`);
    }
  }
  if (t.data_fingerprint !== undefined) f.string(t.data_fingerprint, 'data_fingerprint');
  if (t.run_id !== undefined) f.string(t.run_id, 'run_id');
  if (t.skipped_steps !== undefined) f.count(t.skipped_steps, 'skipped_steps');
  if (t.bolt_on_warmup !== undefined) {
    const b = t.bolt_on_warmup;
    if (!Array.isArray(b) || b.length !== 2) f.fail('bolt_on_warmup', b, 'a [start, end] pair');
    (b as unknown[]).forEach((v, i) => f.count(v, `bolt_on_warmup.${i}`));
  }
  if (t.clip !== undefined) {
    if (!Array.isArray(t.clip)) f.fail('clip', t.clip, 'a list');
    (t.clip as unknown[]).forEach((c, i) => {
      const o = f.object(c, `clip.${i}`);
      f.nullableFinite(o.max_grad_norm, `clip.${i}.max_grad_norm`);
      f.nullableFinite(o.max_grad_norm_ratio, `clip.${i}.max_grad_norm_ratio`);
    });
  }
  return t as TrainerStateShape;
}

/** The plain values of optim.json (see OptimizerState in src/optim/optimizer.ts). */
export interface OptimValuesShape {
  step: Record<string, number>;
  grad_norm_exp_avg: Record<string, number>;
  groups: { lr: number; initial_lr: number; weight_decay: number }[];
}

/** Checks optim.json's structure: per-parameter step counts and norm averages, group values. */
export function validateOptimValues(raw: unknown, file: string): OptimValuesShape {
  const f = new Fields(file);
  const v = f.object(raw, '');
  const step = f.object(v.step, 'step');
  for (const [k, n] of Object.entries(step)) f.count(n, `step.${k}`);
  if (v.grad_norm_exp_avg !== undefined) {
    for (const [k, n] of Object.entries(f.object(v.grad_norm_exp_avg, 'grad_norm_exp_avg'))) f.finite(n, `grad_norm_exp_avg.${k}`);
  }
  if (v.groups !== undefined) {
    if (!Array.isArray(v.groups)) f.fail('groups', v.groups, 'a list');
    (v.groups as unknown[]).forEach((g, i) => {
      const o = f.object(g, `groups.${i}`);
      for (const k of ['lr', 'initial_lr', 'weight_decay']) if (o[k] !== undefined) f.finite(o[k], `groups.${i}.${k}`);
    });
  }
  return { step: step as Record<string, number>, grad_norm_exp_avg: (v.grad_norm_exp_avg ?? {}) as Record<string, number>, groups: (v.groups ?? []) as OptimValuesShape['groups'] };
}

/** The step a `step{N}` folder name says, or null for other names. */
export function stepOfName(dir: string): number | null {
  const m = /^step(\d+)$/.exec(path.basename(dir));
  return m ? Number(m[1]) : null;
}

/** What a checkpoint folder says about itself, read cheaply (manifest and train.json only). */
export interface CheckpointIdentity {
  dir: string;
  /** From the folder name (null when not step{N}). */
  nameStep: number | null;
  manifestStep: number;
  trainStep: number;
  runId: string | null;
}

/**
 * Reads a checkpoint's identity and checks that its name, manifest and train.json agree on the
 * step (a `cp -a step5 step999` does not). Throws CheckpointError naming the disagreement.
 */
export function checkpointIdentity(dir: string): CheckpointIdentity {
  const mfile = path.join(dir, 'manifest.json');
  let manifest: ManifestShape;
  try {
    manifest = validateManifest(JSON.parse(fs.readFileSync(mfile, 'utf8')), mfile);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${mfile} is unreadable: ${(e as Error).message}`);
  }
  const tfile = path.join(dir, 'train.json');
  let train: Record<string, unknown>;
  try {
    const raw: unknown = JSON.parse(fs.readFileSync(tfile, 'utf8'));
    train = new Fields(tfile).object(raw, '');
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CheckpointError(`${tfile} is missing from the checkpoint`);
    throw new CheckpointError(`${tfile} is unreadable: ${(e as Error).message}`);
  }
  const trainStep = new Fields(tfile).count(train.global_step, 'global_step');
  const nameStep = stepOfName(dir);
  const id = { dir, nameStep, manifestStep: manifest.step, trainStep, runId: typeof train.run_id === 'string' ? train.run_id : null };
  if (nameStep !== null && (nameStep !== manifest.step || nameStep !== trainStep)) {
    throw new CheckpointError(`${dir} is not the checkpoint of step ${nameStep}: its manifest says step ${manifest.step} and its train.json global_step ${trainStep} (a renamed or copied folder?)`);
  }
  if (manifest.step !== trainStep) {
    throw new CheckpointError(`${dir}: manifest.json says step ${manifest.step} but train.json global_step is ${trainStep}`);
  }
  return id;
}
