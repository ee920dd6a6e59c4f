// Generation: the key/value cache gives the same logits and the same tokens as recomputing the
// whole sequence; greedy, top-k, top-p and seeded sampling behave as specified; EOS stops a row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, tensor, tidy, liveTensors, cat } from '../../../src/index';
import { OLMo } from '../../../src/model/olmo';
import { sampleNext } from '../../../src/model/generate';
import { ModelConfig } from '../../../src/config/model';
import { maxAbsDiff, tinyConfig } from './helpers';

const VARIANTS: [string, Partial<ModelConfig>][] = [
  ['learned positions', {}],
  ['rope + gqa', { rope: true, n_kv_heads: 2 }],
  ['alibi + llama', { alibi: true, block_type: 'llama' }],
  ['parallel + mqa + qk norm', { block_type: 'parallel', rope: true, multi_query_attention: true, attention_layer_norm: true }],
];

for (const [name, over] of VARIANTS) {
  test(`incremental decoding with the cache matches the full forward (${name})`, () => {
    manualSeed(1);
    const model = new OLMo(tinyConfig({ init_std: 0.2, ...over })).eval();
    try {
      const d = tidy(() => {
        const ids = tensor([[3, 7, 1, 9, 4, 12, 5, 8], [2, 2, 6, 11, 30, 1, 17, 3]], { dtype: 'int64' });
        const full = model.forward(ids).logits; // (2, 8, V)
        const first = model.forward(ids.slice(1, 0, 5), { useCache: true });
        const steps = [first.logits];
        let past = first.attnKeyValues!;
        for (let t = 5; t < 8; t++) {
          const o = model.forward(ids.slice(1, t, t + 1), { pastKeyValues: past, useCache: true });
          steps.push(o.logits);
          past = o.attnKeyValues!;
        }
        return maxAbsDiff(cat(steps, 1), full);
      });
      assert.ok(d <= 1e-5, `cached logits differ by ${d}`);
    } finally {
      model.dispose();
    }
  });

  test(`generation with the cache equals generation without it, token for token (${name})`, () => {
    manualSeed(2);
    const model = new OLMo(tinyConfig({ init_std: 0.3, ...over }));
    try {
      const prompts = [[5, 9, 2, 14], [7, 3]]; // different lengths: left padding + mask
      for (const opts of [{ temperature: 0 }, { temperature: 1.0, seed: 7 }, { temperature: 0.8, topK: 5, topP: 0.9, seed: 3 }]) {
        const a = model.generate(prompts, { maxNewTokens: 12, eosTokenId: null, ...opts });
        const b = model.generate(prompts, { maxNewTokens: 12, eosTokenId: null, useCache: false, ...opts });
        assert.deepEqual(a, b, `options ${JSON.stringify(opts)}`);
        assert.equal(a[0]!.length, 12);
        for (const row of a) for (const t of row) assert.ok(t >= 0 && t < 40, `token ${t} outside the vocabulary`);
      }
    } finally {
      model.dispose();
    }
  });
}

test('a left-padded prompt generates what the same prompt alone generates (greedy)', () => {
  manualSeed(3);
  const model = new OLMo(tinyConfig({ rope: true, init_std: 0.3 }));
  try {
    const alone = model.generate([7, 3], { maxNewTokens: 8, eosTokenId: null });
    const batched = model.generate([[5, 9, 2, 14, 8], [7, 3]], { maxNewTokens: 8, eosTokenId: null });
    assert.deepEqual(batched[1], alone[0]);
  } finally {
    model.dispose();
  }
});

test('seeded sampling is reproducible and differs across seeds; greedy ignores the seed', () => {
  manualSeed(4);
  const model = new OLMo(tinyConfig({ init_std: 0.05 }));
  try {
    const s1 = model.generate([1, 2, 3], { maxNewTokens: 16, temperature: 1, seed: 11, eosTokenId: null });
    const s1b = model.generate([1, 2, 3], { maxNewTokens: 16, temperature: 1, seed: 11, eosTokenId: null });
    const s2 = model.generate([1, 2, 3], { maxNewTokens: 16, temperature: 1, seed: 12, eosTokenId: null });
    assert.deepEqual(s1, s1b);
    assert.notDeepEqual(s1, s2);
    const g1 = model.generate([1, 2, 3], { maxNewTokens: 6, seed: 1 });
    const g2 = model.generate([1, 2, 3], { maxNewTokens: 6, seed: 2 });
    assert.deepEqual(g1, g2);
  } finally {
    model.dispose();
  }
});

test('generation stops a row at EOS and leaks no tensors', () => {
  manualSeed(5);
  const model = new OLMo(tinyConfig({ init_std: 0.3 }));
  try {
    const greedy = model.generate([4, 8, 15], { maxNewTokens: 10, eosTokenId: null })[0]!;
    const stopAt = greedy[3]!;
    const before = liveTensors();
    const cut = model.generate([4, 8, 15], { maxNewTokens: 10, eosTokenId: stopAt })[0]!;
    assert.equal(liveTensors(), before);
    assert.deepEqual(cut, greedy.slice(0, greedy.indexOf(stopAt) + 1));
  } finally {
    model.dispose();
  }
});

test('sampleNext: greedy takes the argmax, top-k 1 is greedy, top-p keeps the smallest set reaching p', () => {
  tidy(() => {
    const logits = tensor([[0.1, 3.0, 0.2, 2.9], [5.0, 1.0, 0.0, -1.0]]);
    assert.deepEqual(sampleNext(logits, { temperature: 0 }).toList(), [1, 0]);
    for (let i = 0; i < 5; i++) assert.deepEqual(sampleNext(logits, { temperature: 1, topK: 1 }).toList(), [1, 0]);
    // Row 0: probabilities ~ [.027, .495, .030, .448]; with topP 0.4 the mass before token 3 (.495)
    // already reaches p, so only token 1 is left.
    for (let i = 0; i < 20; i++) assert.deepEqual(sampleNext(logits, { temperature: 1, topP: 0.4 }).toList(), [1, 0]);
    // With topP 0.9 tokens 1 and 3 are candidates, never 0 or 2.
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) seen.add(sampleNext(logits, { temperature: 1, topP: 0.9 }).toList()[0]!);
    assert.deepEqual([...seen].sort(), [1, 3]);
    // top-k 2 on row 1 allows only tokens 0 and 1.
    for (let i = 0; i < 30; i++) assert.ok([0, 1].includes(sampleNext(logits, { temperature: 2, topK: 2 }).toList()[1]!));
  });
});

test('generate rejects bad arguments', () => {
  const model = new OLMo(tinyConfig());
  try {
    assert.throws(() => model.generate([], {}), /at least one token/);
    assert.throws(() => model.generate([1, 99], { maxNewTokens: 1 }), /outside the vocabulary/);
    assert.throws(() => model.generate([1], { maxNewTokens: 1, temperature: -1 }), /temperature/);
    assert.throws(() => model.generate([1], { maxNewTokens: 1, topP: 0 }), /topP/);
    assert.throws(() => model.generate([1], { maxNewTokens: 40 }), /max_sequence_length/);
  } finally {
    model.dispose();
  }
});
