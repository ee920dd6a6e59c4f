// prepare-data on OLMo's C4 samples and tokenizers: token files decode back to the documents with
// EOS after each, dolma-style metadata, identical bytes for any worker count, size rollover,
// tokenizer cross-checks and EOS validation, and the bad-input table (file:line, skip|fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { prepareData } from '../../../src/data/prepare';
import { loadTokenizer, pythonStrip } from '../../../src/data/tokenizer';
import { DataError } from '../../../src/data/errors';
import { C4, OLMO_TOKENIZER, TOKENIZERS, tmpDir } from './helpers';


function c4Docs(): Array<{ file: string; line: number; text: string }> {
  const out: Array<{ file: string; line: number; text: string }> = [];
  for (const f of fs.readdirSync(C4).sort()) {
    const lines = zlib.gunzipSync(fs.readFileSync(path.join(C4, f))).toString('utf8').split('\n').filter((l) => l.length);
    lines.forEach((l, i) => out.push({ file: path.join(C4, f), line: i + 1, text: JSON.parse(l).text }));
  }
  return out;
}

function readCsvGz(p: string): string[][] {
  return zlib.gunzipSync(fs.readFileSync(p)).toString('utf8').split('\r\n').filter((l) => l).map((l) => l.split(','));
}

test('C4 samples: every document decodes back from its metadata range and ends in EOS', async () => {
  const out = tmpDir();
  const s = await prepareData({ inputs: [C4], output: out, tokenizer: { identifier: OLMO_TOKENIZER }, workers: 2, maxTokensPerFile: 3000 });
  const tok = await loadTokenizer(OLMO_TOKENIZER);
  assert.equal(tok.eosTokenId, 50279);
  assert.equal(tok.padTokenId, 1);
  const docs = c4Docs();
  assert.equal(s.documents, docs.length);
  assert.equal(s.documents, 30);
  assert.ok(s.outputs.length > 2, 'small size limit rolls over');
  let d = 0, tokens = 0;
  for (const f of s.outputs) {
    const ids = new Uint16Array(Uint8Array.from(fs.readFileSync(f.path)).buffer);
    assert.equal(ids.length, f.tokens);
    const rows = readCsvGz(f.metadataPath);
    assert.equal(rows.length, f.documents);
    assert.ok(f.tokens <= 3000 || f.documents === 1, 'a file passes the limit only with a single, longer document');
    let prevEnd = 0;
    for (const [start, end, id, src, loc] of rows) {
      const doc = docs[d++]!;
      assert.equal(Number(start), prevEnd, 'documents are contiguous');
      prevEnd = Number(end);
      assert.equal(src, doc.file);
      assert.equal(Number(loc), doc.line);
      assert.match(id!, /^[0-9a-f]{64}-\d+$/, "dolma's id for documents without one");
      const docIds = ids.subarray(Number(start), Number(end));
      assert.equal(docIds[docIds.length - 1], 50279);
      assert.equal(docIds.filter((x) => x === 50279).length, 1, 'EOS only at the end');
      assert.equal(await tok.decode(docIds.subarray(0, -1)), pythonStrip(doc.text).normalize('NFC'));
    }
    assert.equal(prevEnd, f.tokens);
    tokens += f.tokens;
  }
  assert.equal(tokens, s.tokens);
  assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes('.tmp')), [], 'no temporary files left');
  const manifest = JSON.parse(fs.readFileSync(s.manifestPath, 'utf8'));
  assert.equal(manifest.tokens, s.tokens);
  assert.equal(manifest.eos_token_id, 50279);
});

test('output bytes are identical for 0, 1 and 3 workers and any chunk size', async () => {
  const digests: string[] = [];
  for (const [workers, chunkBytes] of [[0, 1 << 20], [1, 4096], [3, 1000]] as const) {
    const out = tmpDir();
    const s = await prepareData({ inputs: [path.join(C4, '*.json.gz')], output: out, tokenizer: { identifier: OLMO_TOKENIZER }, workers, chunkBytes, maxTokensPerFile: 5000 });
    const h = require('node:crypto').createHash('sha256');
    for (const f of s.outputs) h.update(fs.readFileSync(f.path)).update(zlib.gunzipSync(fs.readFileSync(f.metadataPath)));
    digests.push(`${s.outputs.length}:${h.digest('hex')}`);
  }
  assert.equal(new Set(digests).size, 1, digests.join(' vs '));
});

test('cl100k (js-tiktoken) and OLMo 2 dolma2 tokenizer.json (HF Rust) give the same ids on C4', async () => {
  const a = await loadTokenizer('cl100k');
  const b = await loadTokenizer(path.join(TOKENIZERS, 'allenai_dolma2.json'));
  assert.equal(a.eosTokenId, 100257);
  assert.equal(b.eosTokenId, 100257);
  const texts = c4Docs().map((d) => pythonStrip(d.text));
  const [x, y] = [await a.encodeBatch(texts), await b.encodeBatch(texts)];
  let n = 0;
  texts.forEach((_, i) => { assert.deepEqual(x[i], y[i], `document ${i}`); n += x[i]!.length; });
  assert.ok(n > 5000);
  const gpt2 = await loadTokenizer('gpt2');
  assert.equal(gpt2.eosTokenId, 50256);
  assert.equal(await gpt2.decode(await gpt2.encodeBatch(['Hello world']).then((r) => r[0]!)), 'Hello world');
});

test('uint32 output with cl100k; plain .jsonl and .zst inputs; document ids kept', async () => {
  const dir = tmpDir();
  const lines = ['{"id":"doc-a","text":"  The first document.  "}', '{"id":7,"text":"Second, with a comma id"}', '{"text":"   "}', '{"text":"third"}'];
  fs.writeFileSync(path.join(dir, 'a.jsonl'), lines.join('\n') + '\n');
  const zst = spawnSync('zstd', ['-q', '-f', path.join(dir, 'a.jsonl'), '-o', path.join(dir, 'b.jsonl.zst')]);
  const inputs = [path.join(dir, 'a.jsonl')];
  if (zst.status === 0) inputs.push(path.join(dir, 'b.jsonl.zst'));
  const out = path.join(dir, 'out');
  const s = await prepareData({ inputs, output: out, tokenizer: { identifier: 'cl100k' }, dtype: 'uint32', workers: 0 });
  assert.equal(s.documents, 3 * inputs.length);
  assert.equal(s.emptyDocuments, inputs.length);
  const ids = new Uint32Array(Uint8Array.from(fs.readFileSync(s.outputs[0]!.path)).buffer);
  const tok = await loadTokenizer('cl100k');
  const rows = readCsvGz(s.outputs[0]!.metadataPath);
  assert.deepEqual(rows.map((r) => r[2]), ['doc-a', '7', rows[2]![2], ...(inputs.length > 1 ? ['doc-a', '7', rows[5]![2]] : [])]);
  assert.equal(await tok.decode(ids.subarray(0, Number(rows[0]![1]) - 1)), 'The first document.');
  assert.ok(ids.some((v) => v > 65535) || ids.includes(100257), 'uint32 file holds cl100k ids');
  if (zst.status === 0) {
    const n = Number(rows[2]![1]);
    assert.deepEqual(Array.from(ids.subarray(n, 2 * n)), Array.from(ids.subarray(0, n)), '.zst input gives the same tokens');
  }
});

test('tokenizer choice is validated: EOS mix-up, dtype too small, unknown names', async () => {
  const pii = path.join(TOKENIZERS, 'allenai_eleuther-ai-gpt-neox-20b-pii-special.json');
  await assert.rejects(loadTokenizer({ identifier: pii, eosTokenId: 50279 }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.key, 'model.eos_token_id');
    assert.match(e.message, /id 50279 is "\|\|\|IP_ADDRESS\|\|\|" in .*pii-special\.json, not a special token; this tokenizer's end-of-text token is "<\|endoftext\|>" = id 0/);
    return true;
  });
  assert.equal((await loadTokenizer(pii)).eosTokenId, 0, 'default EOS is the tokenizer\'s own <|endoftext|>');
  await assert.rejects(loadTokenizer({ identifier: OLMO_TOKENIZER, padTokenId: 60000 }), /model\.pad_token_id: 60000 is not a token id of .* \(vocabulary size 50280\)/);
  await assert.rejects(loadTokenizer({ identifier: OLMO_TOKENIZER, padTokenId: 500 }), /model\.pad_token_id: id 500 is .* not a special token/);
  await assert.rejects(loadTokenizer('allenai/eleuther-ai-gpt-neox-20b-pii-special'), /tokenizer\.identifier: tokenizer "allenai\/eleuther-ai-gpt-neox-20b-pii-special" is neither a tokenizer\.json file nor one of gpt2, cl100k/);
  const out = tmpDir();
  await assert.rejects(prepareData({ inputs: [C4], output: out, tokenizer: { identifier: 'cl100k' }, dtype: 'uint16', workers: 0 }), /dtype: cl100k has 100277 ids, more than uint16 holds; use --dtype uint32/);
});

function badInputs(dir: string): Record<string, string> {
  const files: Record<string, string> = {
    malformed: '{"text":"ok one"}\n{"text": "broken\n{"text":"ok two"}\n',
    notext: '{"text":"fine"}\n{"body":"no text here"}\n',
    nonstring: '{"text":"fine"}\n{"text":["a list"]}\n',
    notobject: '{"text":"fine"}\n[1,2]\n',
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(files)) fs.writeFileSync((out[k] = path.join(dir, `${k}.jsonl`)), v);
  const gz = zlib.gzipSync(Buffer.from('{"text":"a"}\n'.repeat(2000)));
  fs.writeFileSync((out.truncated = path.join(dir, 'truncated.jsonl.gz')), gz.subarray(0, Math.floor(gz.length / 2)));
  return out;
}

test('bad input: fail names file:line and leaves no output; skip reports and continues', async () => {
  const dir = tmpDir();
  const bad = badInputs(dir);
  const cases: Array<[string, RegExp]> = [
    ['malformed', /malformed\.jsonl:2: malformed JSON \(.*\) \(use --on-error skip to skip bad lines\)/],
    ['notext', /notext\.jsonl:2: document has no "text" field/],
    ['nonstring', /nonstring\.jsonl:2: "text" is an object, not a string/],
    ['notobject', /notobject\.jsonl:2: expected a JSON object with a "text" field/],
    ['truncated', /truncated\.jsonl\.gz:\d+: unreadable from this line on \(unexpected end of file\); the lines before it were read/],
  ];
  for (const [name, re] of cases) {
    const out = path.join(dir, `out-${name}`);
    await assert.rejects(prepareData({ inputs: [bad[name]!], output: out, tokenizer: { identifier: OLMO_TOKENIZER }, workers: 1, maxTokensPerFile: 2 }), (e: unknown) => {
      assert.ok(e instanceof DataError, `${name}: ${String(e)}`);
      assert.match(e.message, re, name);
      return true;
    });
    assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], [], `${name}: nothing left in the output folder`);
  }
  await assert.rejects(prepareData({ inputs: [path.join(dir, 'nope.jsonl')], output: path.join(dir, 'o'), tokenizer: { identifier: OLMO_TOKENIZER } }), /nope\.jsonl: input file or folder not found/);
  await assert.rejects(prepareData({ inputs: [path.join(dir, 'zz*.jsonl')], output: path.join(dir, 'o'), tokenizer: { identifier: OLMO_TOKENIZER } }), /zz\*\.jsonl: no input documents match/);

  const out = path.join(dir, 'out-skip');
  const s = await prepareData({ inputs: [bad.malformed!, bad.notext!, bad.truncated!], output: out, tokenizer: { identifier: OLMO_TOKENIZER }, onError: 'skip', workers: 2 });
  assert.deepEqual(s.skipped.map((x) => `${path.basename(x.file)}:${x.line}`).slice(0, 2), ['malformed.jsonl:2', 'notext.jsonl:2']);
  assert.match(s.skipped[2]!.message, /unreadable from this line on/);
  assert.ok(s.skipped[2]!.line > 1);
  assert.ok(s.documents >= 3, 'good lines of every file are kept');
  await assert.rejects(prepareData({ inputs: [bad.notext!], output: out, tokenizer: { identifier: OLMO_TOKENIZER } }), /out-skip: output folder already holds prepared data .*pass --overwrite/);
  const again = await prepareData({ inputs: [bad.malformed!], output: out, tokenizer: { identifier: OLMO_TOKENIZER }, onError: 'skip', overwrite: true, workers: 0 });
  assert.equal(again.documents, 2);
});
