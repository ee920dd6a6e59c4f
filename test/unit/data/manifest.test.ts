// Token data as prepare-data describes it: the manifest's dtype is what train reads (a conflicting
// data.memmap_dtype and mixed dtypes are refused; raw files keep OLMo's uint16 rule), a folder
// without a finished manifest is refused with how to redo it, manifests are validated field by
// field, and token ids beyond the embedding are named with their file (at start from the
// manifest, per batch for raw files), with warnings for a tokenizer other than the model's.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildMemmapDataset } from '../../../src/data/config';
import { collate } from '../../../src/data/collator';
import { DataError } from '../../../src/data/errors';
import { prepareData } from '../../../src/data/prepare';
import { checkBatchTokenIds, checkDataAgainstModel } from '../../../src/data/token-ids';
import { tmpDir } from './helpers';

const DOCS = ['The jury said it did find that many of the voters', 'Merger proposed', 'An 𝄞 emoji and ünïcödé', 'x'.repeat(400)];

async function prepared(dtype: 'uint16' | 'uint32'): Promise<string> {
  const dir = tmpDir();
  const input = path.join(dir, 'docs.jsonl');
  fs.writeFileSync(input, DOCS.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const out = path.join(dir, `out-${dtype}`);
  await prepareData({ inputs: [input], output: out, tokenizer: { identifier: 'gpt2' }, dtype, workers: 0, maxTokensPerFile: 60 });
  return out;
}

test('uint32 prepare-data output is read as uint32 from its manifest; a conflicting memmap_dtype and mixed dtypes are refused', async () => {
  const out = await prepared('uint32');
  const ds = buildMemmapDataset({ paths: [out] }, { maxSequenceLength: 8 });
  assert.equal(ds.dtype, 'uint32');
  const part0 = path.join(out, 'part-00000.npy');
  const raw = new Uint32Array(new Uint8Array(fs.readFileSync(part0)).buffer);
  assert.deepEqual(Array.from(ds.readTokens(0)), Array.from(raw.subarray(0, 8)), 'ids are the file\'s uint32 values');
  assert.equal(buildMemmapDataset({ paths: [part0] }, { maxSequenceLength: 8 }).dtype, 'uint32', 'a part named directly uses its folder\'s manifest');
  assert.throws(() => buildMemmapDataset({ paths: [out], memmap_dtype: 'uint16' }, { maxSequenceLength: 8 }),
    /data\.memmap_dtype: is uint16, but .*part-00000\.npy holds uint32 tokens \(.*manifest\.json\); remove data\.memmap_dtype to use the manifest's, or set it to uint32/);
  assert.equal(buildMemmapDataset({ paths: [out], memmap_dtype: 'uint32' }, { maxSequenceLength: 8 }).dtype, 'uint32');
  const u16 = await prepared('uint16');
  assert.throws(() => buildMemmapDataset({ paths: [out, u16] }, { maxSequenceLength: 8 }), /data\.paths: the token files need different dtypes .*prepare them with the same --dtype/);
  const rawFile = path.join(tmpDir(), 'raw.npy');
  fs.writeFileSync(rawFile, new Uint8Array(64));
  assert.equal(buildMemmapDataset({ paths: [rawFile] }, { maxSequenceLength: 8 }).dtype, 'uint16', 'raw files: OLMo\'s default');
  assert.throws(() => buildMemmapDataset({ paths: [out, rawFile] }, { maxSequenceLength: 8 }), /raw\.npy has no prepare-data manifest, so it would be read as uint16 \(OLMo's default\), but .* holds uint32 tokens; set data\.memmap_dtype/);
});

test('prepare-data picks uint32 by itself for a vocabulary over 65,536 (cl100k, like OLMo 2\'s dolma2), and train reads it so', async () => {
  const dir = tmpDir();
  const input = path.join(dir, 'docs.jsonl');
  fs.writeFileSync(input, DOCS.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const out = path.join(dir, 'cl100k');
  const s = await prepareData({ inputs: [input], output: out, tokenizer: { identifier: 'cl100k' }, workers: 0 });
  assert.equal(s.dtype, 'uint32');
  const ds = buildMemmapDataset({ paths: [out] }, { maxSequenceLength: 4 });
  assert.equal(ds.dtype, 'uint32');
  const ids = Array.from({ length: ds.length }, (_, i) => Array.from(ds.readTokens(i))).flat();
  assert.ok(Math.max(...ids) > 65535, 'ids above uint16 read intact (the EOS id is 100257)');
});

test('unfinished, edited or damaged prepare-data folders are refused, naming the file and saying how to redo them', async () => {
  const out = await prepared('uint16');
  const copy = (name: string, edit: (d: string) => void): string => {
    const d = path.join(path.dirname(out), name);
    fs.cpSync(out, d, { recursive: true });
    edit(d);
    return d;
  };
  const noManifest = copy('no-manifest', (d) => fs.rmSync(path.join(d, 'manifest.json')));
  const redo = /`olmo-ts prepare-data` did not finish there \(interrupted\?\): run it again with `-o .* --overwrite`/;
  assert.throws(() => buildMemmapDataset({ paths: [noManifest] }, { maxSequenceLength: 8 }), new RegExp(`folder .*no-manifest has no manifest\\.json: ${redo.source}`));
  assert.throws(() => buildMemmapDataset({ paths: [path.join(noManifest, 'part-00000.npy')] }, { maxSequenceLength: 8 }), new RegExp(`part-00000\\.npy belongs to a prepare-data folder without a manifest: ${redo.source}`));
  const staged = copy('staged', (d) => { fs.rmSync(path.join(d, 'manifest.json')); for (const n of fs.readdirSync(d)) fs.rmSync(path.join(d, n)); fs.mkdirSync(path.join(d, '.prepare-tmp-123')); });
  assert.throws(() => buildMemmapDataset({ paths: [staged] }, { maxSequenceLength: 8 }), redo);
  const edited = copy('edited', (d) => fs.appendFileSync(path.join(d, 'part-00000.npy'), Buffer.alloc(2)));
  assert.throws(() => buildMemmapDataset({ paths: [edited] }, { maxSequenceLength: 8 }), /part-00000\.npy has \d+ bytes but .*manifest\.json lists \d+ uint16 tokens \(\d+ bytes\): the file changed after prepare-data/);
  const stray = copy('stray', (d) => fs.writeFileSync(path.join(d, 'extra.npy'), Buffer.alloc(16)));
  assert.throws(() => buildMemmapDataset({ paths: [path.join(stray, 'extra.npy')] }, { maxSequenceLength: 8 }), /extra\.npy is not listed in .*manifest\.json/);
  const bad: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    ['files-null', (m) => { m.files = null; }, /manifest\.json: field "files" is null, expected a list of part files/],
    ['dtype', (m) => { m.dtype = 'int7'; }, /field "dtype" is "int7", expected one of uint8, uint16, uint32, uint64/],
    ['tokens', (m) => { (m.files as Record<string, unknown>[])[0]!.tokens = 'many'; }, /field "files\.0\.tokens" is "many", expected an integer >= 0/],
    ['path', (m) => { (m.files as Record<string, unknown>[])[0]!.path = '../x.npy'; }, /field "files\.0\.path" is "\.\.\/x\.npy", expected a file name in this folder/],
  ];
  for (const [name, edit, re] of bad) {
    const d = copy(`bad-${name}`, (dir) => {
      const f = path.join(dir, 'manifest.json');
      const m = JSON.parse(fs.readFileSync(f, 'utf8'));
      edit(m);
      fs.writeFileSync(f, JSON.stringify(m));
    });
    assert.throws(() => buildMemmapDataset({ paths: [d] }, { maxSequenceLength: 8 }), (e: unknown) => e instanceof DataError && re.test(e.message), name);
  }
  const garbled = copy('garbled', (d) => fs.writeFileSync(path.join(d, 'manifest.json'), '{"format": "olmo-'));
  assert.throws(() => buildMemmapDataset({ paths: [garbled] }, { maxSequenceLength: 8 }), /manifest\.json: manifest is not valid JSON .*; rerun `olmo-ts prepare-data \.\.\. --overwrite`/);
});

test('token ids beyond the embedding: refused at start from the manifest, per batch for raw files; tokenizer mismatches warned', async () => {
  const out = await prepared('uint16'); // GPT-2: vocabulary 50257, EOS 50256
  const ds = buildMemmapDataset({ paths: [out] }, { maxSequenceLength: 8 });
  const max = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).max_token_id as number;
  assert.equal(max, 50256, 'every document ends in EOS, the largest GPT-2 id');
  assert.throws(() => checkDataAgainstModel(ds, { embeddingSize: 50000, vocabSize: 50000, eosTokenId: 0 }),
    /part-00000\.npy: holds token id 50256, but model\.embedding_size is 50000 \(ids must be below it\): the data was prepared with gpt2 \(vocabulary 50257\)/);
  assert.deepEqual(checkDataAgainstModel(ds, { embeddingSize: 50304, vocabSize: 50257, eosTokenId: 50256, tokenizer: 'gpt2' }), []);
  const warnings = checkDataAgainstModel(ds, { embeddingSize: 50304, vocabSize: 50280, eosTokenId: 0, tokenizer: 'tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json' });
  assert.equal(warnings.length, 3, warnings.join('\n'));
  assert.match(warnings[0]!, /was prepared with gpt2 \(EOS id 50256\), but model\.eos_token_id is 0/);
  assert.match(warnings[1]!, /\(vocabulary 50257\), but model\.vocab_size is 50280/);
  assert.match(warnings[2]!, /but tokenizer\.identifier is tokenizers\/allenai_eleuther-ai-gpt-neox-20b-pii-special\.json/);

  // A raw file (no manifest) holding id 300 for a 256-row embedding: named at the batch.
  const raw = path.join(tmpDir(), 'raw.npy');
  const ids = new Uint16Array(32).map((_, i) => (i === 21 ? 300 : i));
  fs.writeFileSync(raw, Buffer.from(ids.buffer));
  const rds = buildMemmapDataset({ paths: [raw] }, { maxSequenceLength: 8 });
  const batch = collate([0, 1, 2, 3].map((i) => rds.get(i)), { padTokenId: 0 });
  assert.throws(() => checkBatchTokenIds(batch, rds, 256),
    /data\.paths: .*raw\.npy \(instance 2, tokens 16:24\) holds token id 300, but model\.embedding_size is 256 \(ids must be below it\): .*read with the wrong dtype \(data\.memmap_dtype is uint16\)/);
  checkBatchTokenIds(batch, rds, 301);
});
