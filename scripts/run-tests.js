#!/usr/bin/env node
// Runs the test suite with Node's built-in test runner over the TypeScript sources (through tsx).
//   npm test                       every test/**/*.test.ts
//   npm test -- test/unit/data     only files under the given paths (or matching given files)
// test/cuda/ needs a CUDA device: it runs only when named (node scripts/run-tests.js test/cuda) or
// with OLMO_TS_TEST_CUDA=1 (a GPU machine: scripts/gpu/).
//   npm test -- --exclude PATH     every file except those under PATH (repeatable)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const CUDA_DIR = path.join(root, 'test', 'cuda');
function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'fixtures') walk(p, out); } else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const argv = process.argv.slice(2);
const excludes = [];
const filters = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--exclude') excludes.push(path.resolve(root, argv[++i] ?? ''));
  else filters.push(path.resolve(root, argv[i]));
}
const under = (f, p) => f === p || f.startsWith(p + path.sep);
let files = walk(path.join(root, 'test'), []).sort();
const cudaNamed = process.env.OLMO_TS_TEST_CUDA === '1' || filters.some((p) => under(p, CUDA_DIR));
if (!cudaNamed) files = files.filter((f) => !under(f, CUDA_DIR));
if (filters.length) files = files.filter((f) => filters.some((p) => under(f, p)));
if (excludes.length) {
  files = files.filter((f) => !excludes.some((p) => under(f, p)));
  console.log(`run-tests: left out ${excludes.map((p) => path.relative(root, p)).join(', ')}`);
}
if (!files.length) { console.error('no test files matched'); process.exit(1); }
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files.map((f) => path.relative(root, f))];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, OLMO_TS_TEST: '1' } });
process.exit(r.status ?? 1);
