// OLMo's downstream task formats (doc_to_text / doc_to_continuations / doc_to_label /
// doc_to_domain_conditional, v0.2.5) on one document each, written out by hand from OLMo's code;
// the local file readers for the JSONL format and the original releases' layouts; and bad files.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { test } from 'node:test';
import { TASKS, findTaskFiles, readTaskDocs } from '../../../src/eval';
import { tempDir } from './helpers';

const fmt = (label: string, doc: Record<string, unknown>) => TASKS.get(label)!.format(doc);

test('each OLMo task formats a document as OLMo does, with its metric', () => {
  assert.deepEqual(fmt('piqa', { goal: 'Open a jar', sol1: 'Twist the lid.', sol2: 'Bake it.', label: 1 }),
    { context: 'Question: Open a jar\nAnswer:', continuations: [' Twist the lid.', ' Bake it.'], label: 1, domainConditional: 'Answer:' });
  // HellaSwag: " [title]" -> ". ", other [brackets] dropped, double spaces collapsed, ctx_b capitalised (rest lower-cased).
  assert.deepEqual(fmt('hellaswag', { activity_label: 'Baking', ctx_a: 'She mixes [header] the dough.', ctx_b: 'then SHE', endings: [' bakes it [title] Done', 'eats  it'], label: '0' }),
    { context: 'Baking: She mixes the dough. Then she', continuations: [' bakes it. Done', ' eats it'], label: 0, domainConditional: 'Then she' });
  assert.equal((fmt('hellaswag', { activity_label: 'A', ctx_a: 'x went home', ctx_b: '', endings: ['a', 'b'], label: 1 }) as { domainConditional: string }).domainConditional, 'home', 'empty ctx_b: the last word of ctx_a');
  assert.deepEqual(fmt('winogrande', { sentence: 'Ann helped Bo because _ was kind. ', option1: 'Ann', option2: 'Bo', answer: '2' }),
    { contexts: ['Ann helped Bo because Ann', 'Ann helped Bo because Bo'], continuation: ' was kind.', domainConditionals: ['Ann', 'Bo'], label: 1 });
  assert.deepEqual(fmt('openbook_qa', { question_stem: ' Plants need ', choices: { text: ['sun', 'rocks'], label: ['A', 'B'] }, answerKey: 'A ' }),
    { context: ' Plants need ', continuations: [' sun', ' rocks'], label: 0, domainConditional: 'need' });
  assert.deepEqual(fmt('boolq', { passage: 'Cats purr.', question: 'do cats purr', answer: true }),
    { context: 'Cats purr.\nQuestion: do cats purr?\nAnswer:', continuations: [' yes', ' no'], label: 0, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('sciq', { support: '  Heat rises. ', question: 'What rises?', distractor1: 'cold', distractor2: 'ice', distractor3: 'rock', correct_answer: 'heat' }),
    { context: 'Heat rises.\nQuestion: What rises?\nAnswer:', continuations: [' cold', ' ice', ' rock', ' heat'], label: 3, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('arc_easy', { question: 'Which is a gas?', choices: { text: ['air', 'wood', 'iron'], label: ['1', '2', '3'] }, answerKey: '1' }),
    { context: 'Question: Which is a gas?\nAnswer:', continuations: [' air', ' wood', ' iron'], label: 0, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('copa', { premise: 'The man fell. ', choice1: 'He slipped.', choice2: 'He flew.', question: 'cause', label: 0 }),
    { context: 'The man fell because', continuations: [' he slipped.', ' he flew.'], label: 0, domainConditional: 'because' });
  assert.equal((fmt('copa', { premise: 'It rained.', choice1: 'A', choice2: 'B', question: 'effect', label: 1 }) as { context: string }).context, 'It rained therefore');
  assert.deepEqual(fmt('rte', { sentence1: 'A dog ran.', sentence2: 'An animal ran.', label: 0 }),
    { context: 'A dog ran.\nQuestion: An animal ran. True or False?\nAnswer:', continuations: [' True', ' False'], label: 0, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('commitment_bank', { premise: 'P', hypothesis: 'H', label: 2 }),
    { context: 'P\nQuestion: H. True, False or Neither?\nAnswer:', continuations: [' True', ' False', ' Neither'], label: 2, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('mrpc', { sentence1: 'He did n\'t go ( really ) .', sentence2: 'He said " no " , then left .', label: 1 }),
    { context: 'Sentence 1: He didn\'t go (really).\nSentence 2: He said"no", then left.\nQuestion: Do both sentences mean the same thing?\nAnswer:', continuations: [' yes', ' no'], label: 0, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('sst2', { sentence: 'it \'s fine . ', label: 1 }),
    { context: 'it\'s fine. \nQuestion: Is this sentence positive or negative?\nAnswer:', continuations: [' negative', ' positive'], label: 1, domainConditional: 'Answer:' });
  assert.deepEqual(fmt('mmlu_stem', { question: '2+2?', subject: 'college_mathematics', choices: ['3', '4'], answer: 1 }),
    { context: 'Question: 2+2?\nAnswer:', continuations: [' 3', ' 4'], label: 1, domainConditional: 'Answer:' });
  const metrics = Object.fromEntries([...TASKS.values()].map((t) => [t.label, t.metricType]));
  assert.deepEqual(
    [metrics.piqa, metrics.hellaswag, metrics.winogrande, metrics.openbook_qa, metrics.boolq, metrics.sciq, metrics.arc_easy, metrics.arc_challenge, metrics.copa, metrics.rte, metrics.commitment_bank, metrics.mrpc, metrics.sst2, metrics.mmlu_stem_test],
    ['len_norm', 'len_norm', 'acc', 'len_norm', 'acc', 'acc', 'acc', 'len_norm', 'acc', 'len_norm', 'acc', 'f1', 'acc', 'len_norm'],
    "OLMo's metric per task",
  );
});

test('task files: olmo-ts JSONL, HF layout, and the original ARC / SciQ / HellaSwag / PIQA / CB releases', () => {
  const { dir, cleanup } = tempDir('tasks');
  try {
    const w = (name: string, text: string | Buffer) => { const p = path.join(dir, name); fs.writeFileSync(p, text); return p; };
    const jl = (...recs: unknown[]) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
    // olmo-ts's format, any label.
    const own = readTaskDocs('my_task', [w('own.jsonl', jl({ context: 'Q?', continuations: [' a', ' b'], label: 1 }, { context: 'R', continuations: [' c'], label: 0, domain_conditional: 'R:' }))]);
    assert.deepEqual(own.map((d) => d.doc), [
      { context: 'Q?', continuations: [' a', ' b'], label: 1, domainConditional: ' ' },
      { context: 'R', continuations: [' c'], label: 0, domainConditional: 'R:' },
    ]);
    assert.deepEqual(own.map((d) => d.line), [1, 2]);
    // AI2's ARC JSONL (question.stem + choices list) and the HF layout give the same document.
    const arcOrig = { id: 'x', question: { stem: 'Which is hot?', choices: [{ text: 'fire', label: 'A' }, { text: 'ice', label: 'B' }] }, answerKey: 'A' };
    const arcHf = { id: 'x', question: 'Which is hot?', choices: { text: ['fire', 'ice'], label: ['A', 'B'] }, answerKey: 'A' };
    const [a1, a2] = readTaskDocs('arc_challenge', [w('ARC-Challenge-Dev.jsonl', jl(arcOrig, arcHf))]);
    assert.deepEqual(a1!.doc, a2!.doc);
    assert.deepEqual(readTaskDocs('openbook_qa', [w('obqa.jsonl', jl({ question: { stem: 'Sun is a', choices: [{ text: 'star', label: 'A' }] }, answerKey: 'A' }))])[0]!.doc,
      { context: 'Sun is a', continuations: [' star'], label: 0, domainConditional: 'a' });
    // SciQ's release: one JSON array; gzip works too.
    const sciq = [{ question: 'Q1', distractor1: 'a', distractor2: 'b', distractor3: 'c', correct_answer: 'd', support: '' }, { question: 'Q2', distractor1: 'e', distractor2: 'f', distractor3: 'g', correct_answer: 'h', support: 'S' }];
    const s = readTaskDocs('sciq', [w('valid.json.gz', zlib.gzipSync(JSON.stringify(sciq)))]);
    assert.deepEqual(s.map((d) => [d.line, d.doc.label, (d.doc as { context: string }).context]), [[1, 3, '\nQuestion: Q1\nAnswer:'], [2, 3, 'S\nQuestion: Q2\nAnswer:']]);
    // HellaSwag's release: integer labels.
    assert.equal(readTaskDocs('hellaswag', [w('hellaswag_val.jsonl', jl({ ind: 4, activity_label: 'A', ctx_a: 'x', ctx_b: 'y', endings: ['p', 'q'], label: 1, split: 'val' }))])[0]!.doc.label, 1);
    // PIQA's release: questions without labels + valid-labels.lst beside them (or listed explicitly).
    const piqa = w('valid.jsonl', jl({ goal: 'g1', sol1: 'a', sol2: 'b' }, { goal: 'g2', sol1: 'c', sol2: 'd' }));
    w('valid-labels.lst', '1\n0\n');
    assert.deepEqual(readTaskDocs('piqa', [piqa]).map((d) => d.doc.label), [1, 0]);
    const other = w('other-labels.lst', '0\n1\n');
    assert.deepEqual(readTaskDocs('piqa', [piqa, other]).map((d) => d.doc.label), [0, 1]);
    // SuperGLUE CB names its labels.
    assert.deepEqual(readTaskDocs('commitment_bank', [w('cb.jsonl', jl({ premise: 'p', hypothesis: 'h', label: 'neutral' }))]).map((d) => d.doc.label), [2]);
    // MMLU: a file of several subjects keeps the label's category, in OLMo's subject order.
    const mm = (subject: string, q: string) => ({ question: q, subject, choices: ['x', 'y'], answer: 0 });
    const stem = readTaskDocs('mmlu_stem', [w('mmlu.jsonl', jl(mm('college_mathematics', 'm1'), mm('philosophy', 'p'), mm('astronomy', 'a1'), mm('college_mathematics', 'm2')))]);
    assert.deepEqual(stem.map((d) => (d.doc as { context: string }).context.slice(10, 12)), ['a1', 'm1', 'm2'], 'physics subjects come before math in the stem category');
  } finally {
    cleanup();
  }
});

test('bad task files and configs fail with the file, line or key and what to do', () => {
  const { dir, cleanup } = tempDir('taskbad');
  const saved = process.env.OLMO_TS_EVAL_DATA;
  try {
    const w = (name: string, text: string) => { const p = path.join(dir, name); fs.writeFileSync(p, text); return p; };
    const cases: Array<[() => unknown, RegExp]> = [
      [() => readTaskDocs('piqa', [w('a.jsonl', '{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}\n{oops\n')]), /a\.jsonl:2: invalid JSON line/],
      [() => readTaskDocs('piqa', [w('b.jsonl', '{"goal": "g", "sol1": "a", "label": 0}\n')]), /b\.jsonl:1: a piqa document needs "sol2" \(the Hugging Face layout of piqa, validation/],
      [() => readTaskDocs('piqa', [w('c.jsonl', '{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}\n')]), /c\.jsonl:1: label 2 is not the index of one of the 2 continuations/],
      [() => readTaskDocs('arc_easy', [w('d.jsonl', '{"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "F"}\n')]), /d\.jsonl:1: field "answerKey" is "F", expected one of A, B, C, D, E/],
      [() => readTaskDocs('my_task', [w('e.jsonl', '{"goal": "g"}\n')]), /e\.jsonl:1: "my_task" is not one of OLMo's tasks .* olmo-ts's task format/],
      [() => readTaskDocs('x', [w('f.jsonl', '{"context": "c", "continuations": [" a"], "label": 1}\n')]), /f\.jsonl:1: "label" should be the index \(0\.\.0\)/],
      [() => readTaskDocs('x', [w('g.jsonl', '{"context": "c", "continuations": [], "label": 0}\n')]), /g\.jsonl:1: "continuations" should be a non-empty list/],
      [() => readTaskDocs('piqa', [w('h.jsonl', '{"goal": "g", "sol1": "a", "sol2": "b"}\n'), w('h.lst', '0\n1\n')]), /h\.lst: has 2 labels for 1 documents/],
      [() => readTaskDocs('x', [w('i.jsonl', '\n')]), /no x documents in/],
      [() => findTaskFiles('piqa', [path.join(dir, 'missing.jsonl')], 'evaluators.1.data.paths'), /evaluators\.1\.data\.paths\[0\]: task file ".*missing\.jsonl" not found/],
      [() => findTaskFiles('piqa', ['s3://bucket/piqa.jsonl'], 'evaluators.1.data.paths'), /evaluators\.1\.data\.paths\[0\]: "s3:\/\/bucket\/piqa\.jsonl" is a remote URL/],
      [() => { process.env.OLMO_TS_EVAL_DATA = path.join(dir, 'empty'); return findTaskFiles('hellaswag', null, 'evaluators.2.data.paths'); },
        /evaluators\.2\.data\.paths: downstream task "hellaswag" has no local file: set evaluators\.2\.data\.paths .* or put hellaswag\.jsonl in .*empty .*OLMo reads it from Hugging Face \(hellaswag, validation\)/],
    ];
    for (const [fn, re] of cases) assert.throws(fn, re);
    // The default folder is found when it holds <label>.jsonl.
    process.env.OLMO_TS_EVAL_DATA = dir;
    w('sciq.jsonl', '');
    assert.deepEqual(findTaskFiles('sciq', null, 'k'), [path.join(dir, 'sciq.jsonl')]);
  } finally {
    if (saved === undefined) delete process.env.OLMO_TS_EVAL_DATA;
    else process.env.OLMO_TS_EVAL_DATA = saved;
    cleanup();
  }
});
