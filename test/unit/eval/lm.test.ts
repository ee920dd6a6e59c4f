// Perplexity evaluators against a Python re-statement of OLMo's Trainer.eval for `lm` evaluators on
// the same logits: DistributedSampler's shuffled order (libtorch's randperm), subset_num_batches,
// label masks counted as OLMo counts them, per-source MeanMetrics summed over simulated ranks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildMemmapDataset } from '../../../src/data/config';
import { LanguageModelingEvaluator, distributedSamplerIndices } from '../../../src/eval';
import { OLMo } from '../../../src/model/olmo';
import { noGrad } from '../../../src/tensor/autograd';
import { tensor } from '../../../src/tensor/creation';
import { manualSeed } from '../../../src/tensor/random';
import { buildInfo } from '../../../src/tensor/runtime';
import { liveTensors, tidy } from '../../../src/tensor/scope';
import { appendF32, localCollectives, pythonSkipReason, rng, runReference, tempDir } from './helpers';

const T = 12, V = 64;

function tinyModel(): OLMo {
  manualSeed(3);
  // Dropout is on: the evaluators must run the model in eval mode to agree with the reference.
  return new OLMo({ d_model: 16, n_heads: 2, n_layers: 1, mlp_ratio: 2, max_sequence_length: T, vocab_size: V, embedding_size: V, rope: true, include_bias: false, residual_dropout: 0.3, embedding_dropout: 0.3, eos_token_id: 0, pad_token_id: 0, init_device: 'cpu' });
}

interface LmRef { metrics: Record<string, number>; torch_orders: number[][]; torch_version: string }

test('lm evaluators: OLMo\'s order, subsets, label masks and per-source means (Python re-statement), over 1-3 simulated ranks', { skip: pythonSkipReason() }, async () => {
  const { dir, cleanup } = tempDir('lm');
  const model = tinyModel();
  try {
    const r = rng(11);
    // Two sources: a (5 instances) and b (6), with label masks that hide some targets.
    const files: Record<string, { tok: string; mask: string; n: number }> = {};
    for (const [name, n] of [['a', 5], ['b', 6]] as const) {
      const tok = path.join(dir, `${name}.npy`), mask = path.join(dir, `${name}.mask.npy`);
      fs.writeFileSync(tok, Buffer.from(Uint16Array.from({ length: n * T }, () => 1 + Math.floor(r.next() * (V - 1))).buffer));
      fs.writeFileSync(mask, Uint8Array.from({ length: n * T }, () => (r.next() < 0.8 ? 1 : 0)));
      files[name] = { tok, mask, n };
    }
    const N = 11;
    const dsA = () => buildMemmapDataset({ datasets: { b: [files.b!.tok], a: [files.a!.tok] }, label_mask_paths: [files.a!.mask, files.b!.mask] }, { maxSequenceLength: T, padTokenId: 0 });
    const dsPlain = () => buildMemmapDataset({ paths: [files.a!.tok, files.b!.tok] }, { maxSequenceLength: T, padTokenId: 0 });

    // Every instance's logits in eval mode, dumped for the reference.
    const probe = dsA();
    const ids = Int32Array.from({ length: N * T }, (_, k) => probe.readTokens(Math.floor(k / T))[k % T]!);
    const masks = Array.from({ length: N }, (_, i) => Array.from(probe.get(i).labelMask!));
    const sources = Array.from({ length: N }, (_, i) => probe.get(i).metadata!.label as string);
    probe.close();
    const logitsFile = path.join(dir, 'logits.f32');
    model.eval();
    appendF32(logitsFile, noGrad(() => tidy(() => model.forward(tensor(ids, { shape: [N, T], dtype: 'int64' })).logits.contiguous().toArray() as Float32Array)));
    model.train();

    const cases = [
      { name: 'datasets a/b, masks, 2 ranks, all batches', ds: dsA, W: 2, bs: 3, subset: -1, dropLast: false, sources: ['b', 'a'], mask: true },
      { name: 'paths, 1 rank, first 2 batches', ds: dsPlain, W: 1, bs: 4, subset: 2, dropLast: false, sources: null, mask: false },
      { name: 'datasets, 3 ranks, drop_last', ds: dsA, W: 3, bs: 5, subset: 1, dropLast: true, sources: ['a', 'b'], mask: true },
    ];
    const jobs: unknown[] = [];
    const ours: Array<{ results: Array<Record<string, number>>; orders: number[][] }> = [];
    for (const c of cases) {
      const colls = localCollectives(c.W);
      const evs = colls.map((collective) => new LanguageModelingEvaluator({
        label: 'held-out', dataset: c.ds(), sources: c.sources, batchSize: c.bs, subsetNumBatches: c.subset, globalSubsetNumBatches: -1,
        seed: 6198, dropLast: c.dropLast, padTokenId: 0, collective,
      }));
      model.eval();
      const live = liveTensors();
      const results = await Promise.all(evs.map((e) => e.evaluate(model, { precision: 'fp32' })));
      assert.equal(liveTensors(), live, `${c.name}: no tensor outlives the evaluation`);
      model.train();
      const orders = evs.map((e) => Array.from(e.indices));
      ours.push({ results: results.map((x) => x.metrics), orders });
      for (const e of evs) e.close();
      jobs.push({
        mode: 'lm', label: 'held-out', num_instances: N, seq_len: T, vocab: V, world_size: c.W, batch_size: Math.min(c.bs, c.dropLast ? Math.floor(N / c.W) : c.bs),
        subset: c.subset, seed: 6198, drop_last: c.dropLast, input_ids: Array.from(ids), label_mask: c.mask ? masks.flat() : null,
        sources: c.sources, instance_source: sources, logits_file: logitsFile, orders,
      });
    }
    const refs = runReference<LmRef[]>(jobs, dir);
    cases.forEach((c, ci) => {
      const ref = refs[ci]!, mine = ours[ci]!;
      // The order is libtorch's randperm: checked against torch's DistributedSampler when Python's torch
      // is the same version as the linked libtorch (another version may permute differently).
      if (ref.torch_version.split('.').slice(0, 2).join('.') === buildInfo().torchVersion.split('.').slice(0, 2).join('.')) {
        assert.deepEqual(mine.orders, ref.torch_orders, `${c.name}: each rank's order is torch DistributedSampler's`);
      }
      const names = Object.keys(ref.metrics).sort();
      assert.ok(names.length >= 2, `${c.name}: reference produced metrics ${names}`);
      mine.results.forEach((metrics, rank) => {
        assert.deepEqual(Object.keys(metrics).sort(), names, `${c.name}: metric names`);
        for (const n of names) {
          const want = ref.metrics[n]!, got = metrics[n]!;
          assert.ok(Math.abs(got - want) <= 2e-6 * Math.abs(want), `${c.name}, rank ${rank}: ${n} = ${got}, OLMo's arithmetic ${want}`);
        }
      });
    });
  } finally {
    model.dispose();
    cleanup();
  }
});

test('distributedSamplerIndices: padding repeats the start, drop_last cuts, ranks stride, shuffle leaves the global generator alone', async () => {
  const { getRngState } = await import('../../../src/tensor/random');
  const o = { shuffle: false, seed: 0, dropLast: false };
  assert.deepEqual(Array.from(distributedSamplerIndices(5, { ...o, rank: 0, worldSize: 2 })), [0, 2, 4]);
  assert.deepEqual(Array.from(distributedSamplerIndices(5, { ...o, rank: 1, worldSize: 2 })), [1, 3, 0], 'padded with the first index');
  assert.deepEqual(Array.from(distributedSamplerIndices(2, { ...o, rank: 4, worldSize: 5 })), [0], 'padding wraps more than once');
  assert.deepEqual(Array.from(distributedSamplerIndices(5, { ...o, dropLast: true, rank: 1, worldSize: 2 })), [1, 3]);
  assert.deepEqual(Array.from(distributedSamplerIndices(1, { ...o, dropLast: true, rank: 0, worldSize: 2 })), []);
  const before = Buffer.from(getRngState()).toString('hex');
  const a = distributedSamplerIndices(50, { ...o, shuffle: true, seed: 9, rank: 0, worldSize: 1 });
  assert.equal(Buffer.from(getRngState()).toString('hex'), before, 'the default generator is untouched');
  assert.deepEqual(Array.from(a).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i), 'a permutation');
  assert.notDeepEqual(Array.from(a), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(distributedSamplerIndices(50, { ...o, shuffle: true, seed: 9, rank: 0, worldSize: 1 }), a, 'same seed, same order');
});
