// Runs real `olmo-ts train` processes for the integration tests: a tiny fp32 config and token file in
// a temp folder, spawn/await/signal helpers, and readers for metrics.jsonl and checkpoint folders
// that check manifests and SHA-256 sums independently of src/train/checkpoint.ts.
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** Fails with a clear message when dist/ is missing or older than src/ (the tests run the built CLI). */
export function assertDistFresh(): void {
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: run \`npx tsc -p tsconfig.json\` first`);
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const js = path.join(ROOT, 'dist', path.relative(path.join(ROOT, 'src'), p)).replace(/\.ts$/, '.js');
        if (!fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(p).mtimeMs) stale.push(path.relative(ROOT, p));
      }
    }
  };
  walk(path.join(ROOT, 'src'));
  assert.deepEqual(stale, [], `dist/ is older than these sources: run \`npx tsc -p tsconfig.json\` first`);
}

/** Writes a headerless little-endian uint16 token file (what OLMo's memmap reads) of random ids < vocab. */
export function writeTokens(file: string, nTokens: number, vocab: number, seed = 1): void {
  const a = new Uint16Array(nTokens);
  let s = seed >>> 0;
  for (let i = 0; i < nTokens; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s >>> 16) % vocab;
  }
  fs.writeFileSync(file, Buffer.from(a.buffer));
}

/** The tiny model every test trains: 2 layers, d_model 32, vocab 250 (embedding 256), 32 tokens, batch 4, fp32. */
export function tinyConfigYaml(saveFolder: string, dataFile: string): string {
  return `# tiny fp32 run for the integration tests
run_name: it
seed: 1234
model:
  d_model: 32
  n_heads: 2
  n_layers: 2
  mlp_ratio: 4
  weight_tying: true
  rope: true
  include_bias: false
  activation_type: swiglu
  attention_dropout: 0.0
  residual_dropout: 0.0
  embedding_dropout: 0.0
  max_sequence_length: 32
  vocab_size: 250
  embedding_size: 256
  eos_token_id: 0
  pad_token_id: 0
  init_device: cpu
  init_fn: normal
  init_std: 0.02
optimizer:
  name: adamw
  learning_rate: 1.0e-2
  weight_decay: 0.1
  betas: [0.9, 0.95]
scheduler:
  name: cosine_with_warmup
  t_warmup: 3
  alpha_f: 0.1
save_folder: ${saveFolder}
save_overwrite: true
save_interval: 5
save_num_checkpoints_to_keep: 2
max_duration: 20
global_train_batch_size: 4
device_train_microbatch_size: 4
precision: fp32
max_grad_norm: 1.0
console_log_interval: 1
data:
  paths: [${dataFile}]
`;
}

/** A temp folder with tok.npy (enough for `batches` batches of 4 x 32) and config.yaml saving to ./run. */
export interface Sandbox {
  dir: string;
  config: string;
  data: string;
  run: string;
}
const sandboxes: string[] = [];
export function sandbox(name: string, batches = 200): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `olmo-it-${name}-`));
  sandboxes.push(dir);
  const data = path.join(dir, 'tok.npy');
  writeTokens(data, 4 * 32 * batches, 250);
  const run = path.join(dir, 'run');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, tinyConfigYaml(run, data));
  return { dir, config, data, run };
}

/** Deletes every sandbox of this test file (kept when OLMO_TS_KEEP_TMP is set, to look at a failure). */
export function removeSandboxes(): void {
  if (process.env.OLMO_TS_KEEP_TMP) return;
  for (const d of sandboxes.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** How a process ended and what it printed. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A started `olmo-ts train` process. */
export interface TrainProcess {
  child: ChildProcess;
  done: Promise<RunResult>;
  /** Output so far. */
  out(): { stdout: string; stderr: string };
}

/** Starts `node dist/cli/main.js train CONFIG --threads 1 --quiet ARGS...`. */
export function startTrain(config: string, args: string[] = [], opts: { quiet?: boolean; timeoutMs?: number; cwd?: string } = {}): TrainProcess {
  const argv = [CLI, 'train', config, '--threads', '1', ...(opts.quiet === false ? [] : ['--quiet']), ...args];
  const t0 = Date.now();
  const child = spawn(process.execPath, argv, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OLMo_NONINTERACTIVE: '1' } });
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const done = new Promise<RunResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  return { child, done, out: () => ({ stdout, stderr }) };
}

/** Runs a train process to its end. */
export function train(config: string, args: string[] = [], opts: { quiet?: boolean; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return startTrain(config, args, opts).done;
}

/** Asserts a run exited with `code`, showing its output when it did not. */
export function assertExit(r: RunResult, code: number, what: string): void {
  if (r.code !== code) assert.fail(`${what}: exit ${r.code ?? r.signal}, expected ${code}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`);
}

/** metrics.jsonl records in file order (a resumed run appends; repeated steps appear twice). */
export function readRecords(runDir: string, fromByte = 0): Record<string, number | string>[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file).subarray(fromByte).toString('utf8');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, number | string>);
}

/** Cross-entropy per step; for a step logged twice (redone after a crash) the later value wins. */
export function readLosses(runDir: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of readRecords(runDir)) if ('train/CrossEntropyLoss' in r) m.set(r.step as number, r['train/CrossEntropyLoss'] as number);
  return m;
}

/** Asserts two loss maps hold bitwise-equal values for every step in `steps` (default: all of `expected`'s). */
export function assertSameLosses(actual: Map<number, number>, expected: Map<number, number>, what: string, steps?: number[]): void {
  const want = steps ?? [...expected.keys()];
  assert.ok(want.length > 0, `${what}: no steps to compare`);
  for (const s of want) {
    const a = actual.get(s), e = expected.get(s);
    assert.ok(e !== undefined, `${what}: the reference has no loss for step ${s}`);
    assert.ok(a !== undefined, `${what}: no loss logged for step ${s}`);
    if (!Object.is(a, e)) assert.fail(`${what}: step ${s} loss ${a} != ${e} (diff ${a - e})`);
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Checks a checkpoint folder against its manifest without the library: null when every listed file
 * exists with its size and SHA-256 and the four required files are listed, else what is wrong.
 */
export function checkpointProblem(dir: string): string | null {
  const mf = path.join(dir, 'manifest.json');
  if (!fs.existsSync(mf)) return 'no manifest.json';
  let manifest: { step: number; files: Record<string, { bytes: number; sha256: string }> };
  try {
    manifest = JSON.parse(fs.readFileSync(mf, 'utf8'));
  } catch (e) {
    return `manifest.json unreadable: ${(e as Error).message}`;
  }
  for (const need of ['model.safetensors', 'optim.safetensors', 'optim.json', 'train.json']) if (!manifest.files[need]) return `manifest lacks ${need}`;
  for (const [f, want] of Object.entries(manifest.files)) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) return `${f} missing`;
    const b = fs.readFileSync(p);
    if (b.byteLength !== want.bytes) return `${f} has ${b.byteLength} bytes, manifest says ${want.bytes}`;
    if (sha256(b) !== want.sha256) return `${f} SHA-256 mismatch`;
  }
  return null;
}

/** step{N} folders of a run folder (whatever their state), by step. */
export function stepFolders(runDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(runDir)) return [];
  return fs.readdirSync(runDir)
    .map((n) => /^step(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ step: Number(m[1]), dir: path.join(runDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Entries of a run folder that are temporary (a checkpoint or `latest` being written or deleted). */
export function tempEntries(runDir: string): string[] {
  if (!fs.existsSync(runDir)) return [];
  return fs.readdirSync(runDir).filter((n) => n.includes('.tmp-') || n.includes('.del-'));
}

/** The step a process said it resumed from (`olmo-ts: resumed from DIR at step N`), or null. */
export function resumedFrom(stdout: string): { dir: string; step: number } | null {
  const m = /olmo-ts: resumed from (\S+) at step (\d+)/.exec(stdout);
  return m ? { dir: m[1]!, step: Number(m[2]) } : null;
}

/** SHA-256 of a checkpoint's model.safetensors (bitwise weights comparison). */
export function modelHash(ckptDir: string): string {
  return sha256(fs.readFileSync(path.join(ckptDir, 'model.safetensors')));
}

/** Float32 values of every tensor of an F32 safetensors file, by name. */
export function readF32Safetensors(file: string): Map<string, Float32Array> {
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const out = new Map<string, Float32Array>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    assert.equal(v.dtype, 'F32', `${file}: ${k} is ${v.dtype}`);
    const [s, e] = v.data_offsets;
    out.set(k, new Float32Array(b.buffer.slice(b.byteOffset + 8 + n + s, b.byteOffset + 8 + n + e)));
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `cond()` holds (or fails after `timeoutMs`). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 30_000, everyMs = 10): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
