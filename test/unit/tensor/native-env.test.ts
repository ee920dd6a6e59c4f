// Loading the addon must not let a native dependency patch glibc's code under Node's threads or
// take over crash signals: Debian 13's libtorch 2.x brings UCX (through Open MPI), whose load-time
// mmap hooks crashed or hung Node (see src/native/environment.ts). Checked in a fresh process
// through UCX's own debug log and the kernel's record of caught signals; where libtorch has no UCX
// (Debian 12's 1.13) there is nothing to install and both checks hold trivially.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '../../..');

test('loading the addon installs no UCX memory hooks and no handlers for SIGILL/SIGBUS/SIGFPE', () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('UCX_')) delete env[k];
  Object.assign(env, { UCX_LOG_LEVEL: 'debug', UCX_MEM_LOG_LEVEL: 'debug' }); // the hooks log at UCX_MEM_LOG_LEVEL
  // SigCgt: the bit mask of signals with a handler (bit n-1 for signal n), before and after loading
  const script = `const fs = require('node:fs');
const caught = () => BigInt('0x' + fs.readFileSync('/proc/self/status', 'utf8').match(/SigCgt:\\s*(\\w+)/)[1]);
const before = caught();
require('./src/native/index.ts');
console.log('caught', before.toString(), caught().toString());`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  const log = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, log);
  assert.doesNotMatch(log, /installing (bistro|reloc) hook/, 'UCX patched glibc functions while the addon loaded');
  const m = /caught (\d+) (\d+)/.exec(r.stdout);
  assert.ok(m, log);
  const added = BigInt(m[2]!) & ~BigInt(m[1]!);
  for (const [sig, name] of [[4, 'SIGILL'], [7, 'SIGBUS'], [8, 'SIGFPE']] as const) {
    assert.equal(added & (1n << BigInt(sig - 1)), 0n, `loading the addon installed a ${name} handler`);
  }
});
