// Downstream scoring against a Python re-statement of OLMo's code on the same logits: rows built
// as prep_examples builds them (left truncation, WinoGrande's layout), padded as collate_fn pads,
// scored and ranked as ICLMetric does for acc, len_norm, pmi_dc and f1, in float32 and bfloat16,
// with the sampler's repeated rows and documents cut short by subset_num_batches.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ICLMetric, ICLMetricType, ICLRow, buildICLSamples, collateICL, iclCompute, roundToDType } from '../../../src/eval';
import type { TaskDoc } from '../../../src/eval';
import type { FormattedDoc } from '../../../src/eval/tasks';
import { tensor } from '../../../src/tensor/creation';
import type { DType } from '../../../src/tensor/dtype';
import { tidy } from '../../../src/tensor/scope';
import { appendF32, charEncode, pythonSkipReason, rng, runReference, tempDir } from './helpers';

const V = 40; // vocabulary of the character tokenizer (0 = pad)
const L = 24; // model_ctx_len, small so that long contexts are cut from the left
const PAD = 0;
const encode = charEncode(V);

/** Documents with 2-4 continuations, a few contexts longer than L, and one WinoGrande-style doc. */
function makeDocs(): TaskDoc[] {
  const r = rng(7);
  const words = ['red', 'ox', 'a', 'sky', 'blue', 'zebra', 'x', 'long', 'tree', 'is', 'the', 'of'];
  const phrase = (n: number) => Array.from({ length: n }, () => words[Math.floor(r.next() * words.length)]).join(' ');
  const docs: FormattedDoc[] = [];
  for (let d = 0; d < 11; d++) {
    const n = 2 + (d % 3);
    const continuations = Array.from({ length: n }, (_, k) => ' ' + phrase(1 + ((d + k) % 3)));
    docs.push({ context: phrase(d % 4 === 0 ? 9 : 3), continuations, label: (d * 5) % n, domainConditional: d % 2 ? 'Answer:' : phrase(1) });
  }
  docs.splice(4, 0, { contexts: ['Kim gave Lee', 'Kim gave Sam'], continuation: ' a red ox', domainConditionals: ['Lee', 'Sam'], label: 1 });
  return docs.map((doc, i) => ({ doc, file: 'synthetic', line: i + 1 }));
}

/** The job's token lists, as the Python side needs them (it has no tokenizer). */
async function jobDocs(docs: TaskDoc[]): Promise<unknown[]> {
  const tok = async (s: string) => (await encode([s]))[0]!;
  return Promise.all(docs.map(async ({ doc }) => {
    if ('context' in doc) {
      return { ctx: await tok(doc.context), dc: await tok(doc.domainConditional), conts: await Promise.all(doc.continuations.map(tok)), cont_strs: doc.continuations, label: doc.label };
    }
    return { winogrande: true, ctxs: await Promise.all(doc.contexts.map(tok)), dcs: await Promise.all(doc.domainConditionals.map(tok)), cont: await tok(doc.continuation), cont_str: doc.continuation, label: doc.label };
  }));
}

interface RefResult {
  batches: Array<{ input_ids: number[][]; dc_input_ids: number[][]; ctx_len: number[]; lls: number[] }>;
  metric: number | null;
  num_samples: number;
}

test('ICLMetric matches OLMo\'s arithmetic (Python re-statement) for acc, len_norm, pmi_dc, f1 in fp32 and bf16', { skip: pythonSkipReason() }, async () => {
  const { dir, cleanup } = tempDir('icl');
  try {
    const docs = makeDocs();
    const pyDocs = await jobDocs(docs);
    const cases: Array<[ICLMetricType, DType]> = [['acc', 'float32'], ['len_norm', 'float32'], ['pmi_dc', 'float32'], ['f1', 'float32'], ['len_norm', 'bfloat16'], ['pmi_dc', 'bfloat16']];
    const jobs: unknown[] = [];
    const ours: Array<{ metric: ICLMetric; batches: ReturnType<typeof collateICL>[]; rows: ICLRow[] }> = [];
    for (const [ci, [metricType, dtype]] of cases.entries()) {
      // f1 needs a binary task: keep the two-continuation documents only.
      const useDocs = metricType === 'f1' ? docs.filter(({ doc }) => ('context' in doc ? doc.continuations.length : doc.contexts.length) === 2) : docs;
      const samples = await buildICLSamples(useDocs, encode, { modelCtxLen: L, pmiDc: metricType === 'pmi_dc' });
      assert.ok(samples.some((s) => s.query.length === L), 'some query was cut from the left to model_ctx_len');
      // Sampler order: drop the first row of document 3 (its ranking is skipped, as OLMo's IndexError
      // path), drop the last row (the last document is ranked among the rows it has), then repeat
      // the first three rows (DistributedSampler's padding).
      const order = samples.map((_, i) => i).filter((i) => !(samples[i]!.docId === 3 && samples[i]!.contId === 0) && i !== samples.length - 1);
      order.push(0, 1, 2);
      const bs = 5;
      const lmFile = path.join(dir, `lm-${ci}.f32`), dcFile = path.join(dir, `dc-${ci}.f32`);
      const r = rng(100 + ci);
      const metric = new ICLMetric(metricType);
      const batches: ReturnType<typeof collateICL>[] = [];
      for (let b0 = 0; b0 < order.length; b0 += bs) {
        const batch = collateICL(order.slice(b0, b0 + bs).map((i) => samples[i]!), PAD, L);
        batches.push(batch);
        const draw = (shape: [number, number, number], file: string) => {
          const a = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => 3 * r.normal());
          appendF32(file, a);
          return a;
        };
        const lm = draw([batch.shape[0], batch.shape[1], V], lmFile);
        const dc = metricType === 'pmi_dc' ? draw([batch.dcShape[0], batch.dcShape[1], V], dcFile) : null;
        tidy(() => metric.update(batch,
          tensor(lm, { shape: [batch.shape[0], batch.shape[1], V] }).to(dtype),
          dc ? tensor(dc, { shape: [batch.dcShape[0], batch.dcShape[1], V] }).to(dtype) : null));
      }
      ours.push({ metric, batches, rows: [...metric.scoredRows] });
      jobs.push({
        mode: 'icl', docs: metricType === 'f1' ? pyDocs.filter((_, i) => useDocs.includes(docs[i]!)) : pyDocs,
        model_ctx_len: L, pad_token_id: PAD, batch_size: bs, vocab: V, metric_type: metricType, dtype, order,
        logits_file: lmFile, dc_logits_file: dcFile,
      });
    }
    const refs = runReference<RefResult[]>(jobs, dir);
    for (const [ci, [metricType, dtype]] of cases.entries()) {
      const ref = refs[ci]!, mine = ours[ci]!;
      const what = `${metricType}/${dtype}`;
      assert.equal(mine.batches.length, ref.batches.length, what);
      mine.batches.forEach((b, j) => {
        const rb = ref.batches[j]!;
        assert.deepEqual(Array.from(b.inputIds), rb.input_ids.flat(), `${what} batch ${j}: input_ids as collate_fn pads them`);
        assert.deepEqual(b.shape, [rb.input_ids.length, rb.input_ids[0]!.length]);
        if (metricType === 'pmi_dc') assert.deepEqual(Array.from(b.dcInputIds), rb.dc_input_ids.flat(), `${what} batch ${j}: dc_input_ids`);
        assert.deepEqual(b.ctxLen, rb.ctx_len, `${what} batch ${j}: ctx_len after truncation`);
      });
      // Row scores: float32 sums agree to float32 rounding; bf16 values to one bf16 step.
      const refLls = ref.batches.flatMap((b) => b.lls);
      assert.equal(mine.rows.length, refLls.length);
      const rel = dtype === 'bfloat16' ? 2 ** -7 : 2e-6;
      mine.rows.forEach((row, i) => {
        const e = refLls[i]!;
        assert.ok(Math.abs(row.logLikelihood - e) <= rel * Math.abs(e) + 1e-6, `${what} row ${i}: ${row.logLikelihood} vs OLMo's ${e}`);
      });
      // No two scores of a document are within twice the tolerance, so no ranking can differ between
      // the two implementations: the metric must agree exactly ...
      const byDoc = new Map<number, number[]>();
      for (const row of mine.rows) if (!byDoc.has(row.docId) || byDoc.get(row.docId)!.length <= row.contId) (byDoc.get(row.docId) ?? byDoc.set(row.docId, []).get(row.docId)!)[row.contId] = row.logLikelihood;
      for (const lls of byDoc.values()) {
        const s = lls.filter((x) => x !== undefined).sort((a, b) => b - a);
        if (s.length > 1) assert.ok(s[0]! - s[1]! > 2 * (rel * Math.abs(s[0]!) + 1e-6), `${what}: a near-tie (${s[0]} vs ${s[1]}) would make the comparison fragile`);
      }
      // ... and it does.
      const refMetric = ref.metric ?? NaN;
      assert.ok(Number.isFinite(refMetric), `${what}: reference metric ${ref.metric}`);
      assert.equal(mine.metric.compute(), refMetric, `${what}: metric`);
      assert.equal(iclCompute(mine.rows, metricType), refMetric);
    }
    // The cases are not all the same number (the test tells the metrics apart).
    assert.ok(new Set(refs.slice(0, 4).map((r) => r.metric)).size >= 2, `metrics differ across types: ${refs.map((r) => r.metric)}`);
  } finally {
    cleanup();
  }
});

test('iclCompute: first row and label win, incomplete documents skipped, ties and NaN as torch.argmax, f1 as scikit-learn', () => {
  const row = (docId: number, contId: number, ll: number, labelId: number): ICLRow => ({ docId, contId, logLikelihood: ll, labelId });
  // doc 0: correct (label 1); a repeated row with another value is ignored.
  // doc 1: only cont 1 seen -> skipped; doc 2: conts 0,1 of 3 seen -> ranked among them (wrong).
  // doc 3: a tie -> the first index wins (correct, label 0); doc 4: NaN counts as the maximum.
  const rows = [
    row(0, 0, -3, 1), row(0, 1, -1, 1), row(0, 1, -9, 0),
    row(1, 1, -1, 1),
    row(2, 0, -1, 2), row(2, 1, -2, 2),
    row(3, 0, -2, 0), row(3, 1, -2, 0),
    row(4, 0, -1, 1), row(4, 1, NaN, 1),
  ];
  assert.equal(iclCompute(rows, 'acc'), 3 / 4);
  assert.ok(Number.isNaN(iclCompute([], 'acc')), 'no document: NaN (OLMo divides by zero)');
  // f1 with continuation 0 positive: preds [1, 0, 0, 1] vs labels [1, 2->?]: use a binary set.
  const bin = [row(0, 0, -1, 0), row(0, 1, -2, 0), row(1, 0, -1, 1), row(1, 1, -2, 1), row(2, 0, -2, 0), row(2, 1, -1, 0), row(3, 0, -2, 1), row(3, 1, -1, 1)];
  // preds 0,0,1,1; labels 0,1,0,1 -> tp 1, fp 1, fn 1 -> f1 = 2/4
  assert.equal(iclCompute(bin, 'f1'), 0.5);
  assert.equal(iclCompute(bin.filter((r) => r.labelId === 1 && r.docId === 3), 'f1'), 0, 'no positives: 0');
  assert.throws(() => iclCompute([row(0, 0, -1, 2), row(0, 1, -2, 2), row(0, 2, -3, 2), row(1, 0, -1, 1), row(1, 1, -2, 1)], 'f1'), /f1 needs a binary task/);
});

test('roundToDType rounds to nearest even as torch casts', () => {
  assert.equal(roundToDType(1 + 2 ** -8, 'bfloat16'), 1, 'tie to even (down)');
  assert.equal(roundToDType(1 + 3 * 2 ** -8, 'bfloat16'), 1 + 2 ** -6, 'tie to even (up)');
  assert.equal(roundToDType(1 + 2 ** -8 + 2 ** -20, 'bfloat16'), 1 + 2 ** -7, 'above the tie rounds up');
  assert.equal(roundToDType(1 + 2 ** -11, 'float16'), 1, 'fp16 tie to even');
  assert.equal(roundToDType(1 + 3 * 2 ** -11, 'float16'), 1 + 2 ** -9);
  assert.equal(roundToDType(70000, 'float16'), Infinity);
  assert.equal(roundToDType(0.1, 'float32'), Math.fround(0.1));
  const vals = [-3.14159, 1e-3, 123.456, -0.0078125];
  const t = tensor(Float32Array.from(vals)).to('bfloat16');
  assert.deepEqual(Array.from(t.toFloat64Array()), vals.map((v) => roundToDType(v, 'bfloat16')), 'libtorch\'s own cast agrees');
  t.dispose();
});
