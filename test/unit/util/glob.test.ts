// src/util/glob.ts against Python's own glob.glob on the same temporary tree (skipped with a
// message when /usr/bin/python3 is absent).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { glob } from '../../../src/util/glob';

const PY = '/usr/bin/python3';

test('glob matches Python glob.glob (hidden names, [..], [!..], ?, recursive **)', (t) => {
  if (!fs.existsSync(PY)) return t.skip(`${PY} not found`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-glob-'));
  for (const f of ['a/x1.npy', 'a/x2.npy', 'a/y.txt', 'a/.hid.npy', 'b/c/x3.npy', 'b/c/d/x4.npy', '.h/x5.npy', 'top.npy', 'a/[x].npy']) {
    fs.mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), '');
  }
  const patterns = ['*/x?.npy', 'a/*.npy', 'a/.*', 'a/x[12].npy', 'a/x[!1].npy', '*', '*/', 'b/*/x*.npy', '**/*.npy', 'b/**/x*.npy', 'nothing/*', 'a/[[]x].npy'];
  for (const recursive of [false, true]) {
    const py = spawnSync(PY, ['-c', `import glob, json, sys; print(json.dumps([sorted(glob.glob(p, recursive=${recursive ? 'True' : 'False'})) for p in json.loads(sys.argv[1])]))`, JSON.stringify(patterns)], { cwd: root, encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const expected = JSON.parse(py.stdout) as string[][];
    const prev = process.cwd();
    process.chdir(root);
    try {
      patterns.forEach((p, i) => assert.deepEqual(glob(p, { recursive }).sort(), expected[i], `glob('${p}', recursive=${recursive})`));
    } finally {
      process.chdir(prev);
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});
