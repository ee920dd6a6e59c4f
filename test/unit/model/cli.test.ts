// The `olmo-ts convert` and `olmo-ts generate` commands, run as a user would (a child process).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, tidy } from '../../../src/index';
import { OLMo } from '../../../src/model/olmo';
import { tinyConfig } from './helpers';

const ROOT = path.resolve(__dirname, '../../..');
function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
const made: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-cli-'));
  made.push(d);
  return d;
};
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('convert: OLMo -> HF -> OLMo with --verify returns identical tensors', () => {
  manualSeed(0);
  const src = tmp();
  const model = new OLMo(tinyConfig({ rope: true, include_bias: false, layer_norm_with_affine: false, weight_tying: false, init_std: 0.2 }));
  model.save(src);
  const hf = path.join(tmp(), 'hf');
  const back = path.join(tmp(), 'olmo');
  try {
    let r = cli('convert', src, hf, '--to', 'hf', '--verify');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /HF OlmoForCausalLM .* \(verified\)/);
    assert.ok(fs.existsSync(path.join(hf, 'config.json')) && fs.existsSync(path.join(hf, 'model.safetensors')));
    r = cli('convert', hf, back, '--to', 'olmo', '--verify');
    assert.equal(r.code, 0, r.err);
    const again = OLMo.fromCheckpoint(back);
    try {
      for (const [name, t] of model.stateDict()) {
        assert.ok(tidy(() => t.eq(again.stateDict().get(name)!).all().item()), `${name} changed in the round trip`);
      }
    } finally {
      again.dispose();
    }
  } finally {
    model.dispose();
  }
});

test('convert: a model HF cannot express fails with the offending key', () => {
  const src = tmp();
  const model = new OLMo(tinyConfig({ block_type: 'parallel', rope: true }));
  model.save(src);
  model.dispose();
  const out = path.join(tmp(), 'hf');
  const r = cli('convert', src, out, '--to', 'hf');
  assert.equal(r.code, 1);
  assert.match(r.err, /model\.block_type: got "parallel"/);
  assert.match(r.err, /A model exports when trained with model\.block_type: sequential/);
  assert.ok(!fs.existsSync(out), 'nothing written for a model HF cannot express');
  assert.match(cli('convert', src, tmp(), '--to', 'onnx').err, /option '--to <format>' argument 'onnx' is invalid\. Allowed choices are hf, olmo/);
});

test('generate: --prompt-ids --ids prints what model.generate returns (greedy and seeded sampling)', () => {
  manualSeed(1);
  const dir = tmp();
  const model = new OLMo(tinyConfig({ rope: true, init_std: 0.3 }));
  model.save(dir);
  try {
    const greedy = model.generate([3, 1, 4, 1, 5], { maxNewTokens: 6 })[0];
    let r = cli('generate', '--checkpoint', dir, '--prompt-ids', '3,1,4,1,5', '--ids', '--max-new-tokens', '6');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), greedy);
    const sampled = model.generate([3, 1, 4], { maxNewTokens: 6, temperature: 0.9, topK: 10, topP: 0.95, seed: 5, eosTokenId: 39 })[0];
    r = cli('generate', '--checkpoint', dir, '--prompt-ids', '3,1,4', '--ids', '--max-new-tokens', '6', '--temperature', '0.9', '--top-k', '10', '--top-p', '0.95', '--seed', '5');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), sampled);
    assert.match(cli('generate', '--checkpoint', dir, '--ids').err, /exactly one of --prompt and --prompt-ids/);
    assert.match(cli('generate', '--checkpoint', dir, '--prompt', 'hi').err, /no tokenizer/);
  } finally {
    model.dispose();
  }
});

test('generate: --prompt text with a tokenizer prints the prompt and its continuation', () => {
  manualSeed(2);
  const dir = tmp();
  const model = new OLMo(tinyConfig({ vocab_size: 50257, embedding_size: 50304, eos_token_id: 50256, pad_token_id: 50256, rope: true, d_model: 16 }));
  model.save(dir);
  model.dispose();
  const r = cli('generate', '--checkpoint', dir, '--prompt', 'The capital of France is', '--tokenizer', 'gpt2', '--max-new-tokens', '4');
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.startsWith('The capital of France is'), r.out);
  assert.ok(r.out.length > 'The capital of France is'.length + 1, 'some text was generated');
});

test('convert: --to defaults to the other format, and --verify passes for llama blocks (compared in the HF layout)', () => {
  manualSeed(3);
  const src = tmp();
  const model = new OLMo(tinyConfig({ rope: true, include_bias: false, layer_norm_with_affine: false, block_type: 'llama', init_std: 0.2 }));
  model.save(src);
  model.dispose();
  const hf = path.join(tmp(), 'hf');
  let r = cli('convert', src, hf, '--verify');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote an HF OlmoForCausalLM .* \(verified\)/);
  r = cli('convert', hf, path.join(tmp(), 'olmo'), '--verify');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wrote an OLMo checkpoint .* \(verified\)/);
});

test('generate: a run folder follows `latest`, and the tokenizer comes from the checkpoint\'s config', () => {
  manualSeed(4);
  const run = tmp();
  const model = new OLMo(tinyConfig({ rope: true, vocab_size: 50257, embedding_size: 50304, eos_token_id: 50256, pad_token_id: 50256 })); // GPT-2's ids
  model.save(path.join(run, 'step3'));
  fs.appendFileSync(path.join(run, 'step3', 'config.yaml'), 'tokenizer:\n  identifier: gpt2\n');
  fs.symlinkSync('step3', path.join(run, 'latest'));
  const want = model.generate([1, 2], { maxNewTokens: 3, eosTokenId: null })[0]!;
  model.dispose();
  const ids = cli('generate', '--checkpoint', run, '--prompt-ids', '1,2', '--max-new-tokens', '3', '--ids');
  assert.equal(ids.code, 0, ids.err);
  assert.deepEqual(JSON.parse(ids.out), want.slice(0, JSON.parse(ids.out).length));
  const text = cli('generate', '--checkpoint', run, '--prompt-ids', '1,2', '--max-new-tokens', '3');
  assert.equal(text.code, 0, text.err); // decoded with gpt2, named by step3/config.yaml
  assert.match(text.out, /^"#/);
  fs.rmSync(path.join(run, 'latest'));
  assert.match(cli('generate', '--checkpoint', run, '--prompt-ids', '1').err, /is a run folder without a `latest` checkpoint link: give one of its checkpoints, e\.g\. .*step3/);
  assert.match(cli('generate', '--checkpoint', tmp(), '--prompt-ids', '1').err, /holds no model: expected model\.safetensors/);
});

test('generate: bad numbers are refused by the option that carries them', () => {
  const bad: [string[], RegExp][] = [
    [['--temperature', 'nan'], /option '--temperature <t>' argument 'nan' is invalid/],
    [['--temperature', '-1'], /option '--temperature <t>' argument '-1' is invalid/],
    [['--top-p', '0'], /option '--top-p <p>' argument '0' is invalid/],
    [['--max-new-tokens', '1e12'], /option '--max-new-tokens <n>' argument '1e12' is invalid\. expected an integer from 0 to 1000000/],
    [['--seed', '-1'], /option '--seed <n>' argument '-1' is invalid/],
  ];
  for (const [args, re] of bad) {
    const r = cli('generate', '--checkpoint', '/nonexistent', '--prompt-ids', '1', ...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, re, args.join(' '));
  }
});
