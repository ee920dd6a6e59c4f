// Evaluation over real processes (Gloo): each rank evaluates its slice of every eval set and the
// sums are all-reduced, so every rank reports what one process computes over the same instances;
// in a data-parallel run (`olmo-ts launch`) evaluators leave the losses bitwise unchanged and log
// the metrics a single-process `olmo-ts eval` of the final checkpoint gives.
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import type { EvalMetrics } from '../../src/eval';
import { okResults, runDistributed } from '../helpers/distributed';
import { CLI, ROOT, assertDistFresh, readLosses, readRecords, writeTokens } from '../helpers/train-process';
import { evaluateOnRank } from './eval.rank';

const dirs: string[] = [];
after(() => { if (!process.env.OLMO_TS_KEEP_TMP) for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
function tempDir(name: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `olmo-dist-eval-${name}-`));
  dirs.push(d);
  return d;
}

test('evaluators over 2 and 3 Gloo ranks report the metrics one process computes', { timeout: 180_000 }, async () => {
  const dir = tempDir('ranks');
  const V = 64, T = 16;
  // 12 instances and 12 rows: 2 and 3 ranks split them without the sampler's padding.
  fs.writeFileSync(path.join(dir, 'val.npy'), Buffer.from(Uint16Array.from({ length: 12 * T }, (_, i) => 1 + ((i * 37) % (V - 1))).buffer));
  fs.writeFileSync(path.join(dir, 'toy.jsonl'), Array.from({ length: 5 }, (_, d) => JSON.stringify({ context: `q${d} is`, continuations: [' a', ' bb', ' ccc'].slice(0, 2 + (d % 2)), label: d % 2 })).join('\n') + '\n');
  const raw = {
    seed: 3, precision: 'fp32', device_eval_batch_size: 3,
    model: { d_model: 16, n_heads: 2, n_layers: 1, mlp_ratio: 2, max_sequence_length: T, vocab_size: V, embedding_size: V, rope: true, include_bias: false, eos_token_id: 0, pad_token_id: 0 },
    data: { paths: [path.join(dir, 'val.npy')] },
    evaluators: [
      { label: 'val', data: { paths: [path.join(dir, 'val.npy')] } },
      { label: 'toy', type: 'downstream', data: { paths: [path.join(dir, 'toy.jsonl')] } },
    ],
  };
  const single = await evaluateOnRank(null, { raw });
  assert.deepEqual(Object.keys(single).sort(), ['eval/downstream/toy_acc', 'eval/val/CrossEntropyLoss', 'eval/val/Perplexity']);
  for (const worldSize of [2, 3]) {
    const ranks = okResults(await runDistributed<EvalMetrics>(path.join(__dirname, 'eval.rank.ts'), 'evaluateOnRank', { worldSize }, { raw }));
    for (const [r, m] of ranks.entries()) {
      assert.equal(m['eval/downstream/toy_acc'], single['eval/downstream/toy_acc'], `${worldSize} ranks, rank ${r}: accuracy`);
      for (const k of ['eval/val/CrossEntropyLoss', 'eval/val/Perplexity']) {
        assert.ok(Math.abs(m[k]! - single[k]!) <= 1e-6 * Math.abs(single[k]!), `${worldSize} ranks, rank ${r}: ${k} ${m[k]} vs ${single[k]}`);
      }
    }
  }
});

function launch(nproc: number, config: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'launch', '--nproc-per-node', String(nproc), '--', 'train', config, '--quiet', ...args], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

test('data-parallel training with evaluators: same losses as without, metrics of the checkpoint', { timeout: 300_000 }, async () => {
  assertDistFresh();
  const dir = tempDir('train');
  const T = 32;
  writeTokens(path.join(dir, 'train.npy'), 4 * T * 20, 50000, 1);
  writeTokens(path.join(dir, 'val.npy'), T * 10, 50000, 2);
  fs.writeFileSync(path.join(dir, 'qa.jsonl'), [
    { context: 'The capital of France is', continuations: [' Paris', ' a banana', ' London'], label: 0 },
    { context: 'Two plus two is', continuations: [' four', ' seven'], label: 0 },
  ].map((d) => JSON.stringify(d)).join('\n') + '\n');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `run_name: dist-eval
seed: 5
model: {d_model: 16, n_heads: 2, n_layers: 2, mlp_ratio: 2, rope: true, include_bias: false, attention_dropout: 0.0,
  residual_dropout: 0.0, embedding_dropout: 0.0, max_sequence_length: ${T}, vocab_size: 50257, embedding_size: 50304,
  eos_token_id: 50256, pad_token_id: 50256, init_device: cpu}
optimizer: {name: adamw, learning_rate: 0.01}
scheduler: {name: constant}
tokenizer: {identifier: gpt2}
save_overwrite: true
save_interval: 1000
max_duration: 4
global_train_batch_size: 4
device_train_microbatch_size: 2
precision: fp32
data: {paths: [${dir}/train.npy]}
eval_interval: 2
device_eval_batch_size: 2
evaluators:
  - label: val
    data: {paths: [${dir}/val.npy]}
  - label: qa
    type: downstream
    data: {paths: [${dir}/qa.jsonl]}
`);
  const withEval = path.join(dir, 'with'), without = path.join(dir, 'without');
  const [a, b] = await Promise.all([launch(2, config, [`--save_folder=${withEval}`]), launch(2, config, [`--save_folder=${without}`, '--evaluators=[]'])]);
  assert.equal(a.code, 0, a.out.slice(-3000));
  assert.equal(b.code, 0, b.out.slice(-3000));
  const la = readLosses(withEval), lb = readLosses(without);
  assert.equal(la.size, 4);
  for (const [s, v] of lb) assert.ok(Object.is(la.get(s), v), `step ${s}: ${la.get(s)} with eval, ${v} without`);
  const evals = readRecords(withEval).filter((r) => 'eval/val/CrossEntropyLoss' in r);
  assert.deepEqual(evals.map((r) => r.step), [2, 4], 'rank 0 logs each eval once');
  // A single-process eval of the final checkpoint reproduces the sharded in-loop numbers.
  const e = spawnSync(process.execPath, [CLI, 'eval', config, '--checkpoint', withEval, '--threads', '1', '-o', '-'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(e.status, 0, e.stderr);
  const single = (JSON.parse(e.stdout) as { metrics: Record<string, number> }).metrics;
  const last = evals[1]!;
  for (const k of ['eval/val/CrossEntropyLoss', 'eval/val/Perplexity', 'eval/downstream/qa_acc']) {
    assert.ok(Math.abs((last[k] as number) - single[k]!) <= 1e-6 * Math.abs(single[k]!) + 1e-12, `${k}: in-loop over 2 ranks ${last[k]}, one process ${single[k]}`);
  }
});
