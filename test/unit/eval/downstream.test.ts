// The downstream evaluator with a real (tiny) model: it equals ICLMetric applied to the model's
// logits for the same batches, subset_num_batches runs only the first batches, and sharding over
// simulated ranks (the sampler pads with repeated rows) gives the single-process result. Also the
// rows prep_examples builds by hand, and the config-level errors of buildEvaluators.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseTrainConfig } from '../../../src/config';
import { DownstreamEvaluator, ICLMetric, ICLMetricType, buildEvaluators, buildICLSamples, collateICL, runEvaluators } from '../../../src/eval';
import type { TaskDoc } from '../../../src/eval';
import { OLMo } from '../../../src/model/olmo';
import { noGrad } from '../../../src/tensor/autograd';
import { tensor } from '../../../src/tensor/creation';
import { manualSeed } from '../../../src/tensor/random';
import { tidy } from '../../../src/tensor/scope';
import { charEncode, localCollectives, tempDir } from './helpers';

const V = 48;
const encode = charEncode(V);

function docs(): TaskDoc[] {
  const d: TaskDoc['doc'][] = [
    { context: 'The sky is', continuations: [' blue', ' made of cheese', ' red'], label: 0, domainConditional: 'is' },
    { context: 'Two and two make', continuations: [' four', ' five'], label: 0, domainConditional: 'make' },
    { contexts: ['Ann thanked Bo', 'Ann thanked Cy'], continuation: ' for the gift', domainConditionals: ['Bo', 'Cy'], label: 1 },
    { context: 'Fish live in', continuations: [' water', ' trees', ' the sky', ' caves'], label: 0, domainConditional: 'in' },
    { context: 'Ice is', continuations: [' cold', ' hot'], label: 0, domainConditional: ' ' },
  ];
  return d.map((doc, i) => ({ doc, file: 'mem', line: i + 1 }));
}

function model(): OLMo {
  manualSeed(5);
  return new OLMo({ d_model: 16, n_heads: 2, n_layers: 1, mlp_ratio: 2, max_sequence_length: 64, vocab_size: V, embedding_size: V, rope: true, include_bias: false, residual_dropout: 0.2, eos_token_id: 0, pad_token_id: 0, init_device: 'cpu' });
}

test('downstream evaluator = ICLMetric on the model\'s logits; subsets and 2-3 simulated ranks agree', async () => {
  const m = model();
  try {
    for (const metricType of ['acc', 'len_norm', 'pmi_dc'] as ICLMetricType[]) {
      const samples = await buildICLSamples(docs(), encode, { pmiDc: metricType === 'pmi_dc' });
      const make = (o: { subset?: number; collective?: ReturnType<typeof localCollectives>[number] } = {}) => new DownstreamEvaluator({
        label: 'toy', metricType, samples, batchSize: 4, subsetNumBatches: o.subset ?? null, globalSubsetNumBatches: -1, seed: 1, dropLast: false, padTokenId: 0, collective: o.collective,
      });
      // Reference: ICLMetric over the same batches of the model's logits (computed here directly).
      const expect = (numBatches: number) => {
        const metric = new ICLMetric(metricType);
        m.eval();
        for (let b = 0; b < numBatches; b++) {
          const batch = collateICL(samples.slice(b * 4, b * 4 + 4), 0);
          noGrad(() => tidy(() => {
            const lm = m.forward(tensor(batch.inputIds, { shape: batch.shape, dtype: 'int64' })).logits;
            const dc = metricType === 'pmi_dc' ? m.forward(tensor(batch.dcInputIds, { shape: batch.dcShape, dtype: 'int64' })).logits : null;
            metric.update(batch, lm, dc);
          }));
        }
        m.train();
        return metric.compute();
      };
      const name = `eval/downstream/toy_${metricType}`;
      const nb = Math.ceil(samples.length / 4);
      const full = await runEvaluators(m, [make()], { precision: 'fp32' });
      assert.equal(full.metrics[name], expect(nb), `${metricType}: all batches`);
      assert.equal(m.training, true, 'train mode restored');
      const sub = await runEvaluators(m, [make({ subset: 2 })], { precision: 'fp32' });
      assert.equal(sub.metrics[name], expect(2), `${metricType}: subset_num_batches 2`);
      assert.equal(sub.results[0]!.instances, 8);
      for (const W of [2, 3]) {
        const evs = localCollectives(W).map((collective) => make({ collective }));
        m.eval();
        const rs = await Promise.all(evs.map((e) => e.evaluate(m, { precision: 'fp32' })));
        m.train();
        for (const r of rs) assert.equal(r.metrics[name], full.metrics[name], `${metricType}: ${W} ranks`);
        assert.ok(rs.reduce((a, r) => a + r.instances, 0) >= samples.length, 'every row was scored by some rank');
      }
    }
    // No tensor outlives an evaluation.
    const { liveTensors } = await import('../../../src/tensor/scope');
    const before = liveTensors();
    await runEvaluators(m, [new DownstreamEvaluator({ label: 'toy', metricType: 'pmi_dc', samples: await buildICLSamples(docs(), encode, { pmiDc: true }), batchSize: 3, subsetNumBatches: null, globalSubsetNumBatches: -1, seed: 1, dropLast: false, padTokenId: 0 })], { precision: 'fp32' });
    assert.equal(liveTensors(), before, 'no tensor leaked');
    // The documents are not trivially ranked: acc is strictly between 0 and 1 for this model.
    const acc = (await runEvaluators(m, [new DownstreamEvaluator({ label: 'toy', metricType: 'acc', samples: await buildICLSamples(docs(), encode), batchSize: 3, subsetNumBatches: null, globalSubsetNumBatches: -1, seed: 1, dropLast: false, padTokenId: 0 })], { precision: 'fp32' })).metrics['eval/downstream/toy_acc']!;
    assert.ok(acc > 0 && acc < 1, `acc ${acc}`);
  } finally {
    m.dispose();
  }
});

test('rows as prep_examples builds them: left truncation, actual ctx_len, WinoGrande ctx_len, code-point cont_str_len', async () => {
  const rows = await buildICLSamples([
    { doc: { context: 'abcdefghij', continuations: [' xyz', ' é😀'], label: 1, domainConditional: 'Q:' }, file: 'f', line: 1 },
    { doc: { contexts: ['ab', 'abcd'], continuation: ' k', domainConditionals: ['b', 'd'], label: 0 }, file: 'f', line: 2 },
  ], encode, { modelCtxLen: 8 });
  const r0 = rows[0]!;
  assert.equal(r0.query.length, 8, 'cut to model_ctx_len from the left');
  assert.deepEqual(r0.query, (await encode(['abcdefghij xy']))[0]!.slice(-8));
  assert.equal(r0.ctxLen, 8 - 4 + 1, 'ctx_len = len(query) - len(cont) + 1');
  assert.equal(r0.contStrLen, 3);
  assert.equal(rows[1]!.contStrLen, 2, "' é😀' is 3 code points (4 UTF-16 units)");
  assert.deepEqual(rows.slice(2).map((r) => [r.docId, r.contId, r.ctxLen, r.dcLen, r.contLen, r.labelId]), [[1, 0, 2, 1, 2, 0], [1, 1, 4, 1, 2, 0]]);
  assert.deepEqual(rows[2]!.dcQuery, [...(await encode(['b']))[0]!, ...(await encode([' k']))[0]!.slice(0, -1)]);
  const c = collateICL(rows, 0, 8);
  assert.deepEqual(c.shape, [4, 8]);
  assert.deepEqual(Array.from(c.inputIds.subarray(16, 24)), [...rows[2]!.query, ...Array(8 - rows[2]!.query.length).fill(0)], 'padded right');
  await assert.rejects(buildICLSamples([{ doc: { context: '', continuations: [' a'], label: 0, domainConditional: 'x' }, file: 'q.jsonl', line: 3 }], encode), /q\.jsonl:3: the context "" has no tokens/);
  await assert.rejects(buildICLSamples([{ doc: { context: 'a', continuations: [' '.repeat(9)], label: 0, domainConditional: 'x' }, file: 'q.jsonl', line: 4 }], encode, { modelCtxLen: 8 }), /q\.jsonl:4: continuation 0 has 9 tokens, more than the 8-token context window/);
  await assert.rejects(buildICLSamples([{ doc: { context: 'a', continuations: [' b'], label: 0, domainConditional: '' }, file: 'q.jsonl', line: 5 }], encode, { pmiDc: true }), /q\.jsonl:5: the domain-conditional prompt "" has no tokens \(pmi_dc/);
});

test('buildEvaluators: OLMo defaults and fallbacks, and specific errors for bad evaluator configs', async () => {
  const { dir, cleanup } = tempDir('build');
  try {
    const tok = path.join(dir, 'val.npy');
    fs.writeFileSync(tok, Buffer.alloc(2 * 16 * 5));
    const task = path.join(dir, 'task.jsonl');
    fs.writeFileSync(task, JSON.stringify({ context: 'ab', continuations: [' c', ' d'], label: 0 }) + '\n');
    const base = { model: { d_model: 16, n_heads: 2, n_layers: 1, max_sequence_length: 16, vocab_size: V, embedding_size: V, rope: true, eos_token_id: 0, pad_token_id: 0 }, data: { paths: [tok] }, device_eval_batch_size: 3, eval_subset_num_batches: 7 };
    const tokenizer = { encodeBatch: encode } as never;
    const cfg = (evaluators: unknown[]) => parseTrainConfig({ ...base, evaluators });
    const evs = await buildEvaluators(cfg([
      { label: 'val', data: { paths: [tok] } },
      { label: 'multi', data: { datasets: { x: [tok], y: [tok] } }, device_eval_batch_size: 2, subset_num_batches: 1 },
      { label: 'mine', type: 'downstream', data: { paths: [task] }, metric_type: 'pmi_dc' },
      { label: 'arc_challenge', type: 'downstream', data: { paths: [task] } },
    ]), { tokenizer });
    assert.deepEqual(evs.map((e) => e.metricNames), [
      ['eval/val/CrossEntropyLoss', 'eval/val/Perplexity'],
      ['eval/x/CrossEntropyLoss', 'eval/x/Perplexity', 'eval/y/CrossEntropyLoss', 'eval/y/Perplexity'],
      ['eval/downstream/mine_pmi_dc'],
      ['eval/downstream/arc_challenge_len_norm'],
    ], "OLMo's metric names; downstream metric from metric_type, else the task's");
    const lm = evs[0] as import('../../../src/eval').LanguageModelingEvaluator;
    assert.equal(lm.numBatches, 2, 'top-level device_eval_batch_size 3 over 5 instances, eval_subset_num_batches 7 capped');
    assert.equal((evs[1] as typeof lm).numBatches, 1, "the evaluator's own subset_num_batches wins");
    for (const e of evs) e.close();
    const only = await buildEvaluators(cfg([{ label: 'val', data: { paths: [tok] } }, { label: 'mine', type: 'downstream', data: { paths: [task] } }]), { tokenizer, only: ['mine'] });
    assert.deepEqual(only.map((e) => e.label), ['mine']);
    const bad: Array<[unknown[], RegExp, { only?: string[] }?]> = [
      [[{ label: 'val' }], /evaluators\.0\.data: an lm evaluator needs data\.paths or data\.datasets/],
      [[{ label: 'val', data: { paths: [path.join(dir, 'nope.npy')] } }], /evaluators\.0\.data\.paths\[0\]: token file ".*nope\.npy" not found/],
      [[{ label: 'val', data: { paths: [tok] }, metric_type: 'acc' }], /evaluators\.0\.metric_type: got "acc", but it only applies to downstream evaluators/],
      [[{ label: 'a', data: { datasets: { s: [tok] } } }, { label: 'b', data: { datasets: { s: [tok] } } }], /evaluators\.1\.label: evaluator 'b' would log eval\/s\/CrossEntropyLoss, which 'a' logs too/],
      [[{ label: 'mmlu_stem_var', type: 'downstream' }], /evaluators\.0\.label: "mmlu_stem_var": MMLU prompt variations .* not implemented/],
      [[{ label: 'piqa', type: 'downstream', data: { datasets: { s: [task] } } }], /evaluators\.0\.data\.datasets: a downstream evaluator reads task files from data\.paths/],
      [[{ label: 'val', data: { paths: [tok] } }], /evaluators: no evaluator labelled "nope"; the config has "val"/, { only: ['nope'] }],
      [[{ label: 'v', data: { paths: [tok] }, type: 'perplexity' }], /evaluators\.0\.type/],
    ];
    for (const [e, re, o] of bad) await assert.rejects(async () => buildEvaluators(cfg(e), { tokenizer, ...o }), re);
    // An eval file shorter than one instance.
    fs.writeFileSync(path.join(dir, 'short.npy'), Buffer.alloc(10));
    await assert.rejects(buildEvaluators(cfg([{ label: 'val', data: { paths: [path.join(dir, 'short.npy')] } }])), /evaluators\.0\.data: the token files of 'val' hold no complete instance of 16 tokens/);
  } finally {
    cleanup();
  }
});
