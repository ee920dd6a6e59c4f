// Evaluation inside training and from the command line, on a tiny fp32 model with dropout and the
// GPT-2 vocabulary: eval leaves training bitwise unchanged; results reach the console table,
// metrics.jsonl, TensorBoard and the HTML report; `olmo-ts eval` on the run folder, on a step
// folder and on a Hugging Face export reproduces the in-loop numbers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { loadTrainConfig } from '../../src/config';
import { collectOverrideArgs } from '../../src/config/overrides';
import { OLMo } from '../../src/model/olmo';
import { rand } from '../../src/tensor/creation';
import { foldResumed, readMetricsJsonl } from '../../src/train/logging/jsonl';
import { loadReportData } from '../../src/train/logging/report-data';
import { Trainer } from '../../src/train/trainer';
import { CLI, ROOT, assertDistFresh, assertExit, train, writeTokens } from '../helpers/train-process';

const T = 32;
const sandboxes: string[] = [];
after(() => { if (!process.env.OLMO_TS_KEEP_TMP) for (const d of sandboxes) fs.rmSync(d, { recursive: true, force: true }); });

/** A run folder setup: GPT-2-sized vocabulary (so the gpt2 tokenizer fits), 2 layers of width 16, dropout on. */
function setup(name: string): { dir: string; config: string; run: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `olmo-it-eval-${name}-`));
  sandboxes.push(dir);
  writeTokens(path.join(dir, 'train.npy'), 4 * T * 40, 50000, 1);
  writeTokens(path.join(dir, 'val.npy'), T * 10, 50000, 2);
  fs.writeFileSync(path.join(dir, 'piqa.jsonl'), [
    { goal: 'How do I boil water?', sol1: 'Heat it in a pot on the stove.', sol2: 'Put it in the freezer overnight.' },
    { goal: 'How can I dry my hands?', sol1: 'Rub them with a clean towel.', sol2: 'Dip them in a bucket of water.' },
    { goal: 'Keep bread fresh', sol1: 'Seal it in a bag.', sol2: 'Leave it open in the sun.' },
  ].map((d) => JSON.stringify(d)).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'piqa-labels.lst'), '0\n0\n0\n');
  fs.writeFileSync(path.join(dir, 'qa.jsonl'), [
    { context: 'The capital of France is', continuations: [' Paris', ' a banana', ' London'], label: 0 },
    { context: 'Two plus two is', continuations: [' four', ' seven'], label: 0 },
  ].map((d) => JSON.stringify(d)).join('\n') + '\n');
  const run = path.join(dir, 'run');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `run_name: eval-it
seed: 77
model: {d_model: 16, n_heads: 2, n_layers: 2, mlp_ratio: 2, rope: true, include_bias: false, weight_tying: true, layer_norm_with_affine: false,
  attention_dropout: 0.0, residual_dropout: 0.1, embedding_dropout: 0.1, max_sequence_length: ${T},
  vocab_size: 50257, embedding_size: 50304, eos_token_id: 50256, pad_token_id: 50256, init_device: cpu}
optimizer: {name: adamw, learning_rate: 0.01}
scheduler: {name: constant}
tokenizer: {identifier: gpt2}
save_folder: ${run}
save_overwrite: true
save_interval: 1000
max_duration: 6
global_train_batch_size: 4
device_train_microbatch_size: 2
precision: fp32
console_log_interval: 1
data: {paths: [${dir}/train.npy]}
eval_interval: 3
device_eval_batch_size: 4
evaluators:
  - label: val
    data: {paths: [${dir}/val.npy]}
  - label: piqa
    type: downstream
    data: {paths: [${dir}/piqa.jsonl]}
  - label: qa
    type: downstream
    metric_type: pmi_dc
    data: {paths: [${dir}/qa.jsonl]}
`);
  return { dir, config, run };
}
async function fitLosses(config: string, overrides: string[], listen?: (t: Trainer) => void): Promise<{ losses: number[]; evals: Array<[number, Record<string, number>]> }> {
  const cfg = loadTrainConfig(config, collectOverrideArgs(overrides));
  const t = new Trainer(cfg, { numThreads: 1, console: false, autoResume: false });
  const evals: Array<[number, Record<string, number>]> = [];
  t.on('eval', (s: number, m: Record<string, number>) => evals.push([s, m]));
  listen?.(t);
  try {
    return { losses: (await t.fit()).losses, evals };
  } finally {
    t.close();
  }
}

test('training losses are bitwise the same with and without evaluators (fp32, dropout on)', { timeout: 300_000 }, async () => {
  const sb = setup('bitwise');
  const plain = await fitLosses(sb.config, [`--save_folder=${sb.run}-plain`, '--evaluators=[]']);
  const withEval = await fitLosses(sb.config, [`--save_folder=${sb.run}-eval`]);
  assert.equal(plain.losses.length, 6);
  assert.deepEqual(withEval.evals.map(([s]) => s), [3, 6], 'evaluated every eval_interval steps');
  assert.ok(Object.keys(withEval.evals[0]![1]).length === 4, `metrics of all evaluators: ${Object.keys(withEval.evals[0]![1])}`);
  plain.losses.forEach((l, i) => assert.ok(Object.is(l, withEval.losses[i]), `step ${i + 1}: ${withEval.losses[i]} with eval, ${l} without`));
  // The comparison can fail: one draw from the training generator between steps changes later losses.
  const perturbed = await fitLosses(sb.config, [`--save_folder=${sb.run}-rng`, '--evaluators=[]'], (t) => t.on('step', (s: number) => { if (s === 3) rand([1]).dispose(); }));
  assert.deepEqual(perturbed.losses.slice(0, 3), plain.losses.slice(0, 3));
  assert.notDeepEqual(perturbed.losses.slice(3), plain.losses.slice(3), 'dropout makes the losses depend on the generator');
});

test('eval results reach the console, metrics.jsonl, TensorBoard and the report; olmo-ts eval reproduces them', { timeout: 300_000 }, async () => {
  assertDistFresh();
  const sb = setup('sinks');
  const r = await train(sb.config, [], { quiet: false });
  assertExit(r, 0, 'train with evaluators');
  // Console: a compact table after each eval.
  for (const step of [3, 6]) assert.match(r.stdout, new RegExp(`eval at step ${step}: 3 evaluators`));
  assert.match(r.stdout, /\n {2}evaluator +metric +value\n {2}val +val\/CrossEntropyLoss +\d+\.\d+\n +val\/Perplexity +[\d,.]+\n {2}piqa +downstream\/piqa_len_norm +[01]\.\d{4}\n {2}qa +downstream\/qa_pmi_dc +[01]\.\d{4}/);
  // metrics.jsonl: one eval record at each eval step, after the step's training record.
  const recs = readMetricsJsonl(sb.run).records;
  const evalRecs = recs.filter((x) => 'eval/val/CrossEntropyLoss' in x.metrics);
  assert.deepEqual(evalRecs.map((x) => x.step), [3, 6]);
  assert.deepEqual(Object.keys(evalRecs[1]!.metrics).sort(), ['eval/downstream/piqa_len_norm', 'eval/downstream/qa_pmi_dc', 'eval/val/CrossEntropyLoss', 'eval/val/Perplexity']);
  const folded = foldResumed(recs);
  assert.equal(folded.length, 6, 'eval records merge into their step');
  assert.ok('train/CrossEntropyLoss' in folded[5]!.metrics && 'eval/val/Perplexity' in folded[5]!.metrics);
  const last = evalRecs[1]!.metrics;
  assert.ok(Math.abs(last['eval/val/Perplexity']! - Math.exp(last['eval/val/CrossEntropyLoss']!)) < 1e-9 * last['eval/val/Perplexity']!);
  // TensorBoard: the eval tags are in the event file.
  const tbDir = path.join(sb.run, 'tensorboard');
  const events = fs.readdirSync(tbDir).map((f) => fs.readFileSync(path.join(tbDir, f)).toString('latin1')).join('');
  for (const tag of ['eval/val/CrossEntropyLoss', 'eval/downstream/piqa_len_norm', 'eval/downstream/qa_pmi_dc']) assert.ok(events.includes(tag), `TensorBoard has ${tag}`);
  // Report: eval curves beside the training loss, marked at the eval steps.
  const report = loadReportData(sb.run);
  const loss = report.charts.find((c) => c.id === 'loss')!;
  const evalSeries = loss.series.find((s) => s.label === 'eval: val')!;
  assert.deepEqual(evalSeries.points.map((p) => p[0]), [3, 6]);
  assert.equal(evalSeries.markers, true);
  assert.deepEqual(report.charts.find((c) => c.id === 'downstream')!.series.map((s) => s.label), ['piqa_len_norm', 'qa_pmi_dc']);
  assert.equal(report.summary.finalEvalLoss?.value, last['eval/val/CrossEntropyLoss']);
  const html = spawnSync(process.execPath, [CLI, 'report', sb.run], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(html.status, 0, html.stderr);
  assert.match(fs.readFileSync(path.join(sb.run, 'report.html'), 'utf8'), /Eval loss \(val\)/);

  // olmo-ts eval on the run folder (its latest checkpoint is step 6): the in-loop numbers again.
  const evalCli = (args: string[]) => spawnSync(process.execPath, [CLI, 'eval', sb.config, '--threads', '1', ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, OLMo_NONINTERACTIVE: '1' } });
  const close = (got: Record<string, number>, what: string) => {
    for (const [k, v] of Object.entries(last)) assert.ok(Math.abs(got[k]! - v) <= 1e-6 * Math.abs(v), `${what}: ${k} = ${got[k]}, in-loop ${v}`);
  };
  const e1 = evalCli(['--checkpoint', sb.run]);
  assert.equal(e1.status, 0, e1.stderr);
  assert.match(e1.stdout, /eval at step 6: 3 evaluators/);
  const out1 = path.join(sb.run, 'eval', 'step6.json');
  assert.match(e1.stdout, new RegExp(`wrote ${out1.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const j1 = JSON.parse(fs.readFileSync(out1, 'utf8')) as { step: number; metrics: Record<string, number>; evaluators: Array<{ label: string; instances: number }> };
  assert.equal(j1.step, 6);
  close(j1.metrics, 'run folder');
  assert.deepEqual(j1.evaluators.map((e) => [e.label, e.instances]), [['val', 10], ['piqa', 6], ['qa', 5]]);
  // A Hugging Face export of the same weights, a subset of evaluators, JSON on stdout.
  const hf = path.join(sb.dir, 'hf');
  const m = OLMo.fromCheckpoint(path.join(sb.run, 'step6'));
  m.saveHf(hf);
  m.dispose();
  const e2 = evalCli(['--checkpoint', hf, '--evaluators', 'val,qa', '-o', '-']);
  assert.equal(e2.status, 0, e2.stderr);
  const j2 = JSON.parse(e2.stdout) as { step: number | null; metrics: Record<string, number> };
  assert.deepEqual(Object.keys(j2.metrics).sort(), ['eval/downstream/qa_pmi_dc', 'eval/val/CrossEntropyLoss', 'eval/val/Perplexity']);
  assert.equal(j2.step, null);
  for (const k of Object.keys(j2.metrics)) assert.ok(Math.abs(j2.metrics[k]! - last[k]!) <= 1e-6 * Math.abs(last[k]!), `HF export: ${k}`);
  // Clear errors.
  const bad = evalCli(['--checkpoint', sb.run, '--evaluators', 'nope']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /olmo-ts: evaluators: no evaluator labelled "nope"; the config has "val", "piqa", "qa"/);
  const noCk = evalCli(['--checkpoint', sb.dir]);
  assert.equal(noCk.status, 1);
  assert.match(noCk.stderr, /--checkpoint .*: not a checkpoint \(no model\.safetensors\), not a run folder/);
});

test('eval_on_load evaluates a resumed checkpoint before training on (OLMo), and not a fresh start', { timeout: 120_000 }, async () => {
  const sb = setup('onload');
  const first = await fitLosses(sb.config, ['--max_duration=2', '--save_interval=2', '--eval_on_load=true', '--eval_interval=1000']);
  assert.deepEqual(first.evals, [], 'a fresh start has nothing loaded to evaluate');
  const cfg = loadTrainConfig(sb.config, collectOverrideArgs(['--max_duration=3', '--eval_on_load=true', '--eval_interval=1000']));
  const t = new Trainer(cfg, { numThreads: 1, console: false });
  const evals: number[] = [];
  let stepsAtEval = -1;
  t.on('eval', (s: number) => { evals.push(s); stepsAtEval = steps; });
  let steps = 0;
  t.on('step', () => { steps++; });
  try {
    const r = await t.fit();
    assert.equal(r.globalStep, 3);
  } finally {
    t.close();
  }
  assert.deepEqual(evals, [2], 'evaluated at the restored step');
  assert.equal(stepsAtEval, 0, 'before the first resumed step');
});

