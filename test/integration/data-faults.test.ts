// Data faults with real processes: prepare-data holds its output folder (a second run is refused),
// SIGTERM leaves the folder exactly as it was (no visible parts, no manifest change), train refuses
// a folder without a manifest, reads uint32 data as its manifest says, and names the file of a
// token id the embedding cannot index.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { CLI, ROOT, assertDistFresh, assertExit, removeSandboxes, sandbox, train, waitFor } from '../helpers/train-process';

before(() => assertDistFresh());
after(() => removeSandboxes());

const words = 'the jury said it did find that many of the voters were not aware of the law and its rules'.split(' ');
function jsonl(file: string, docs: number, wordsPerDoc: number): void {
  const lines: string[] = [];
  for (let d = 0; d < docs; d++) lines.push(JSON.stringify({ text: Array.from({ length: wordsPerDoc }, (_, i) => words[(d * 7 + i * 3) % words.length]).join(' ') + ` doc${d}` }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
}
const prepare = (args: string[]) => spawnSync(process.execPath, [CLI, 'prepare-data', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
const listing = (d: string) => Object.fromEntries(fs.readdirSync(d).sort().map((n) => [n, fs.readFileSync(path.join(d, n)).toString('base64').slice(0, 64) + fs.statSync(path.join(d, n)).size]));

test('prepare-data: one run per output folder; SIGTERM leaves the folder as it was; train refuses a folder without a manifest', async () => {
  const sb = sandbox('prepare', 1);
  const small = path.join(sb.dir, 'small.jsonl'), big = path.join(sb.dir, 'big.jsonl');
  jsonl(small, 20, 30);
  jsonl(big, 30000, 60); // a few seconds of tokenizing on one thread
  const out = path.join(sb.dir, 'tokens');
  const first = prepare([small, '-o', out]);
  assert.equal(first.status, 0, first.stderr);
  const again = prepare([small, '-o', out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /output folder already holds prepared data .*; pass --overwrite to replace it/);
  const before = listing(out);
  assert.ok('manifest.json' in before && 'part-00000.npy' in before);

  const p1 = spawn(process.execPath, [CLI, 'prepare-data', big, '-o', out, '--overwrite', '-j', '0', '--max-tokens', '20000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err1 = '';
  p1.stderr!.on('data', (d: Buffer) => { err1 += d.toString(); });
  const done1 = new Promise<number | null>((r) => p1.on('close', (c) => r(c)));
  const staging = path.join(out, `.prepare-tmp-${p1.pid}`);
  await waitFor(() => fs.existsSync(staging) && fs.readdirSync(staging).some((n) => /^part-\d{5}\.npy$/.test(n)), 'a finished part in the staging folder', 60_000);
  const p2 = prepare([small, '-o', out, '--overwrite']);
  assert.equal(p2.status, 1, p2.stderr);
  assert.match(p2.stderr, new RegExp(`olmo-ts: .*tokens is in use by another process: olmo-ts prepare-data .*big\\.jsonl .*\\(pid ${p1.pid} on .*\\); prepare-data runs one at a time per folder`));
  const visible = fs.readdirSync(out).filter((n) => !n.startsWith('.')).sort();
  assert.deepEqual(visible, Object.keys(before), 'while it runs, only the earlier output is visible (its parts are staged)');
  p1.kill('SIGTERM');
  assert.equal(await done1, 143, err1);
  assert.match(err1, /SIGTERM received: stopping prepare-data and removing what it wrote/);
  assert.match(err1, /prepare-data stopped by SIGTERM; the output folder is as it was before it started/);
  assert.deepEqual(listing(out), before, 'the earlier output is intact; no staging, no new parts, no lock');

  // A folder whose manifest is gone (e.g. an older olmo-ts killed mid-run) is not training data.
  fs.rmSync(path.join(out, 'manifest.json'));
  const r = await train(sb.config, [`--data.paths=[${out}]`]);
  assertExit(r, 1, 'train on a folder without a manifest');
  assert.match(r.stderr, /^olmo-ts: data\.paths\[0\]: folder \S+\/tokens has no manifest\.json: `olmo-ts prepare-data` did not finish there \(interrupted\?\): run it again with `-o \S+\/tokens --overwrite`\n$/);
});

test('train reads uint32 data as its manifest says, and names the file of a token id the embedding cannot index', async () => {
  const sb = sandbox('tokens', 1);
  const docs = path.join(sb.dir, 'docs.jsonl');
  jsonl(docs, 40, 40);
  const u32 = path.join(sb.dir, 'u32');
  const p = prepare([docs, '-o', u32, '--dtype', 'uint32']);
  assert.equal(p.status, 0, p.stderr);
  const gpt2 = ['--model.vocab_size=50257', '--model.embedding_size=50304', '--model.eos_token_id=50256', '--model.pad_token_id=50256', '--tokenizer.identifier=gpt2'];
  const ok = await train(sb.config, [`--data.paths=[${u32}]`, '--max_duration=2', `--save_folder=${path.join(sb.dir, 'gpt2-run')}`, ...gpt2], { quiet: false });
  assertExit(ok, 0, 'uint32 data');
  assert.match(ok.stdout, /data +\d+ instances \(1 file, uint32\)/);
  assert.doesNotMatch(ok.stderr, /warning/, 'the model config matches the data\'s tokenizer');
  const clash = await train(sb.config, [`--data.paths=[${u32}]`, '--data.memmap_dtype=uint16', ...gpt2]);
  assertExit(clash, 1, 'memmap_dtype against the manifest');
  assert.match(clash.stderr, /data\.memmap_dtype: is uint16, but \S+part-00000\.npy holds uint32 tokens/);
  // The sandbox model (embedding 256) on GPT-2 ids: refused at start from the manifest.
  const big = await train(sb.config, [`--data.paths=[${u32}]`]);
  assertExit(big, 1, 'ids beyond the embedding (manifest)');
  assert.match(big.stderr, /part-00000\.npy: holds token id 50256, but model\.embedding_size is 256/);
  // A raw file (no manifest): refused at the batch that holds the id, naming the file.
  const raw = path.join(sb.dir, 'raw.npy');
  const ids = new Uint16Array(4 * 32 * 3).map((_, i) => (i === 4 * 32 + 5 ? 4000 : i % 250));
  fs.writeFileSync(raw, Buffer.from(ids.buffer));
  const r = await train(sb.config, [`--data.paths=[${raw}]`, '--max_duration=3', '--save_interval=1000']);
  assertExit(r, 1, 'ids beyond the embedding (raw file)');
  assert.match(r.stderr, /olmo-ts: data\.paths: \S+raw\.npy \(instance \d+, tokens \d+:\d+\) holds token id 4000, but model\.embedding_size is 256/);
  assert.doesNotMatch(r.stderr, /index out of range/);
});
