// End to end through the CLI and the trainer-facing API: prepare-data on C4 -> createTrainLoader
// (global_indices.npy) -> inspect-data from the run folder shows exactly the loader's batches;
// the Brown corpus is untagged, cached on first use and reused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createTrainLoader } from '../../../src/data/train-loader';
import { inspectBatches } from '../../../src/data/inspect';
import { loadTokenizer } from '../../../src/data/tokenizer';
import { brownDocuments, prepareBrown, untagSentence } from '../../../src/data/brown';
import { loadGlobalIndices, buildGlobalIndices } from '../../../src/data/global-indices';
import { C4, OLMO_TOKENIZER, tmpDir } from './helpers';

const ROOT = path.resolve(__dirname, '../../..');
function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI prepare-data -> trainer loader -> inspect-data shows the same instances', async () => {
  const dir = tmpDir();
  const tokens = path.join(dir, 'c4-tokens');
  const r = cli(['prepare-data', path.join(C4, 'c4-sample.0*.json.gz'), '-o', tokens, '--tokenizer', OLMO_TOKENIZER, '-j', '2', '--max-tokens', '6000']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /prepared 30 documents, [\d,]+ tokens \(uint16\) from 3 file\(s\)\ninto \d token file\(s\) in [\d.]+ s: [\d.]+ MB\/s of text on 2 worker thread\(s\)/);

  // The trainer's side: a run folder as OLMo lays it out.
  const run = path.join(dir, 'run');
  const cfg = { seed: 6198, global_train_batch_size: 4, model: { max_sequence_length: 64, pad_token_id: 1, eos_token_id: 50279 }, tokenizer: { identifier: OLMO_TOKENIZER }, data: { paths: [tokens], drop_last: false } };
  fs.mkdirSync(run, { recursive: true });
  fs.writeFileSync(path.join(run, 'config.yaml'), require('yaml').stringify(cfg));
  const td = createTrainLoader({ data: cfg.data, maxSequenceLength: 64, padTokenId: 1, globalBatchSize: 4, seed: 6198, workDir: path.join(run, 'train_data') });
  assert.deepEqual(loadGlobalIndices(td.globalIndicesFile!), buildGlobalIndices({ numInstances: td.dataset.length, seed: 6198, dropLast: false, worldSize: 1 }));
  const batches: Int32Array[] = [];
  for await (const b of td.loader) { batches.push(b.inputIds); if (batches.length === 3) break; }
  await td.close();

  const tok = await loadTokenizer(OLMO_TOKENIZER);
  const seen = await inspectBatches({ runDir: run, steps: [3, 1] });
  assert.deepEqual(seen.map((x) => x.step), [1, 1, 1, 1, 3, 3, 3, 3]);
  for (const x of seen) {
    const b = batches[x.step - 1]!;
    assert.equal(x.text, await tok.decode(b.subarray(x.example * 64, (x.example + 1) * 64)), `step ${x.step} example ${x.example}`);
    assert.ok(x.documents.length >= 1 && x.documents.every((d) => d.src.startsWith(C4)));
  }
  // OLMo trainer's per-rank logs take precedence: a fake log row is what gets shown
  fs.mkdirSync(path.join(run, 'data-indices'));
  fs.writeFileSync(path.join(run, 'data-indices', 'rank0.tsv.gz'), zlib.gzipSync('1\t5\t2\n2\t0\t1\n'));
  const logged = await inspectBatches({ runDir: run, steps: [1] });
  assert.deepEqual(logged.map((x) => x.index), [5, 2]);

  const out = cli(['inspect-data', '2', '--run', run, '--max-chars', '40']);
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /^\[step=2, epoch=0, rank=0, example=0\] index=0 file=.*part-00000\.npy tokens=0:64\n {2}documents: [0-9a-f]{64}-1 \(.*c4-sample\.01\.json\.gz:1\)\n"The woman who died after falling from a \.\.\."/);
});

test('CLI errors are one clear line', () => {
  const a = cli(['prepare-data', 'whatever.jsonl']);
  assert.equal(a.status, 1);
  assert.equal(a.stderr.trim(), 'olmo-ts: --output <dir> is required');
  const b = cli(['prepare-data', '/nonexistent/x.jsonl', '-o', tmpDir()]);
  assert.equal(b.status, 1);
  assert.equal(b.stderr.trim(), 'olmo-ts: /nonexistent/x.jsonl: input file or folder not found');
  const c = cli(['inspect-data', '0', '--data', 'x']);
  assert.equal(c.stderr.trim(), 'olmo-ts: step: expected a 1-based integer, got "0"');
});

test('Brown corpus: tags stripped back to text, prepared once into the cache, then reused', async () => {
  assert.equal(untagSentence("The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, that/cs Atlanta's/np$ 1/2/cd election/nn (/( ended/vbd )/) ./."), 'The jury said "no evidence", that Atlanta\'s 1/2 election (ended).');
  const docs = brownDocuments();
  assert.equal(docs.length, 500);
  assert.ok(docs.every((d) => !/[A-Za-z]\/(at|nn|vbd|jj|in) /.test(d.text)), 'no word/TAG left');
  assert.ok(docs[0]!.text.startsWith('The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.'));
  const cache = tmpDir();
  const first = await prepareBrown({ tokenizer: { identifier: 'gpt2' }, cacheDir: cache, workers: 2 });
  assert.equal(first.created, true);
  assert.equal(first.summary!.documents, 500);
  assert.ok(first.paths[0]!.startsWith(path.join(cache, 'brown')));
  const again = await prepareBrown({ tokenizer: { identifier: 'gpt2' }, cacheDir: cache });
  assert.equal(again.created, false);
  assert.deepEqual(again.paths, first.paths);
  const tok = await loadTokenizer('gpt2');
  const ids = new Uint16Array(Uint8Array.from(fs.readFileSync(first.paths[0]!).subarray(0, 2 * 40)).buffer);
  assert.equal(await tok.decode(ids), (await tok.decode(await tok.encodeBatch([docs[0]!.text]).then((x) => x[0]!.slice(0, 40)))));
});
