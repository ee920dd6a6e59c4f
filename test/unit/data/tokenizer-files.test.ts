// The tokenizers shipped in tokenizers/ (gzipped) load under the names OLMo's configs use, from any
// current folder, and a tokenizer.json next to the config still wins over the shipped copy.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { test } from 'node:test';
import { loadTokenizer } from '../../../src/data/tokenizer';
import { BUNDLED_TOKENIZERS, resolveTokenizerFile } from '../../../src/data/tokenizer-files';

const OFFICIAL = 'tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json'; // configs/official/OLMo-1B.yaml

test("OLMo's config name resolves to the shipped tokenizer from another folder, and encodes", async () => {
  const cwd = process.cwd();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-ts-tok-'));
  try {
    process.chdir(dir);
    assert.equal(resolveTokenizerFile(OFFICIAL), path.join(BUNDLED_TOKENIZERS, 'allenai_eleuther-ai-gpt-neox-20b-pii-special.json.gz'));
    const tok = await loadTokenizer({ identifier: OFFICIAL });
    assert.equal(tok.eosTokenId, 0); // this file's <|endoftext|> is id 0 (see tokenizers/README.md)
    assert.equal(tok.vocabSize, 50280);
    const [ids] = await tok.encodeBatch(['Language models are trained on text.']);
    assert.equal(await tok.decode(ids!), 'Language models are trained on text.');
    // a file of that name in the current folder is what the config means there
    fs.mkdirSync('tokenizers');
    fs.writeFileSync(OFFICIAL, zlib.gunzipSync(fs.readFileSync(path.join(BUNDLED_TOKENIZERS, 'allenai_gpt-neox-olmo-dolma-v1_5.json.gz'))));
    assert.equal(resolveTokenizerFile(OFFICIAL), OFFICIAL);
    assert.equal((await loadTokenizer({ identifier: OFFICIAL })).eosTokenId, 50279);
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown tokenizer name is still a clear error naming the key', async () => {
  assert.equal(resolveTokenizerFile('tokenizers/nope.json'), null);
  await assert.rejects(loadTokenizer('tokenizers/nope.json'), /tokenizer "tokenizers\/nope\.json" is neither a tokenizer\.json file/);
});
