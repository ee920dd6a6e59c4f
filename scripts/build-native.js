#!/usr/bin/env node
// Builds the native addon (build/Release/olmo_native.node) with cmake-js, without downloading
// anything: node-api-headers + node-addon-api provide the headers ("binary.napi_versions" in
// package.json). Skips the build when the addon is newer than every native source, unless --force.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

const root = path.resolve(__dirname, '..');
// OLMO_TS_BUILD_DIR: another build folder (scripts/test-torch2.sh builds the 2.x addon into build-torch2/)
const buildDir = path.resolve(root, process.env.OLMO_TS_BUILD_DIR || 'build');
const addon = path.join(buildDir, 'Release', 'olmo_native.node');
const force = process.argv.includes('--force') || process.env.OLMO_TS_FORCE_BUILD === '1';

function newestSource() {
  const files = [path.join(root, 'CMakeLists.txt')];
  for (const dir of ['native', 'cmake']) {
    if (!fs.existsSync(path.join(root, dir))) continue;
    for (const f of fs.readdirSync(path.join(root, dir))) files.push(path.join(root, dir, f));
  }
  return Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
}

if (!force && fs.existsSync(addon) && fs.statSync(addon).mtimeMs >= newestSource()) {
  console.log('olmo-ts: native addon is up to date');
  process.exit(0);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const jobs = String(Math.max(1, Math.min(os.cpus().length, Number(process.env.OLMO_TS_BUILD_JOBS) || os.cpus().length)));
const args = [cmakeJs, 'compile', '--directory', root, '--out', buildDir, '--parallel', jobs];
for (const v of ['TORCH_DIR', 'LIBTORCH', 'OLMO_TS_PYTHON']) {
  if (process.env[v]) args.push(`--CD${v === 'OLMO_TS_PYTHON' ? 'PYTHON_EXECUTABLE' : v}=${process.env[v]}`);
}
console.log(`olmo-ts: building the native addon (${jobs} jobs; about a minute on 2 cores)`);
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  console.error(
    '\nolmo-ts: the native build failed. It needs cmake, a C++17 compiler and libtorch:\n' +
      '  Debian/Ubuntu (CPU):  bash scripts/setup.sh   (installs libtorch-dev, libgloo-dev, libopenblas0-pthread, cmake)\n' +
      '  with PyTorch (GPU):   have `python3 -c "import torch"` work, or set TORCH_DIR=/path/to/libtorch\n',
  );
  process.exit(r.status ?? 1);
}
console.log(`olmo-ts: native addon built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
