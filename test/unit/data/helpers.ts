// Shared helpers for the data tests: the numpy reference script, OLMo's tokenizers and C4 sample
// (shipped in the repo) and throwaway temporary folders.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const FIXTURES = path.resolve(__dirname, '../../fixtures/data');
/** OLMo's tokenizers, shipped in the repo (gzipped; loadTokenizer takes the .json names). */
export const TOKENIZERS = path.resolve(__dirname, '../../../tokenizers');
/** OLMo's C4 test sample (10 documents per file, as OLMo's test_fixtures). */
export const C4 = path.resolve(__dirname, '../../fixtures/c4-sample');
/** OLMo v1's training tokenizer (EOS 50279, pad 1). */
export const OLMO_TOKENIZER = path.join(TOKENIZERS, 'allenai_gpt-neox-olmo-dolma-v1_5.json');

const PY = '/usr/bin/python3';
let numpyOk: boolean | undefined;

/** Why numpy reference tests cannot run here, or undefined when they can. */
export function numpySkipReason(): string | undefined {
  if (numpyOk === undefined) {
    const r = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' });
    numpyOk = r.status === 0;
  }
  return numpyOk ? undefined : `${PY} with numpy is not available (install python3-numpy) - live numpy comparison skipped`;
}

/** Runs test/fixtures/data/numpy_reference.py on the given cases and returns its answers. */
export function numpyAnswers<T = unknown>(cases: object[]): T[] {
  const r = spawnSync(PY, [path.join(FIXTURES, 'numpy_reference.py')], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`numpy_reference.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T[];
}

/** A fresh temporary folder, removed when the process exits. */
export function tmpDir(prefix = 'olmo-ts-data-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}
