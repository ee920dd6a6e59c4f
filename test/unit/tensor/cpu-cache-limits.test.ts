// The caching CPU allocator (native/cpu_cache.cc): its limit derives from the machine, it keeps no
// more idle memory than the limit, it empties itself under memory pressure, and it reports what it
// holds. Each case runs in a child process, since the allocator is set up once per process from
// OLMO_TS_CPU_CACHE_MB / OLMO_TS_CPU_CACHE_MIN_FREE_MB.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { assertDistFresh } from '../../helpers/train-process';

const DIST = path.resolve(__dirname, '../../../dist/index.js');
const MB = 2 ** 20;

/** Runs `body` (JS using `t` = olmo-ts and `blk(mb)` = a float32 tensor of mb MiB) in a child; returns its stats lines. */
function child(env: Record<string, string>, body: string): Record<string, number | boolean>[] {
  assertDistFresh();
  const code = `const t = require(${JSON.stringify(DIST)}); const out = []; const blk = (mb) => t.zeros([mb * 262144]);
    const snap = () => out.push(t.cpuCache.stats()); ${body}; console.log(JSON.stringify(out));`;
  const e = { ...process.env };
  delete e.OLMO_TS_CPU_CACHE_MB;
  delete e.OLMO_TS_CPU_CACHE_MIN_FREE_MB;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...e, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('cpu cache: default limit is 1/8 of the machine (256 MB to 8 GB); freed blocks are reused and counted', () => {
  const [s0, s1, s2] = child({}, 'snap(); let a = blk(8); snap(); a.dispose(); a = blk(8); a.dispose(); snap()');
  assert.equal(s0!.enabled, true, 'installed by default (libtorch 1.x and 2.x)');
  const machine = s0!.machineBytes as number;
  assert.equal(s0!.limitBytes, Math.min(8192, Math.max(256, Math.floor(machine / MB / 8))) * MB);
  assert.equal(s1!.liveBytes, 8 * MB);
  assert.equal(s2!.liveBytes, 0);
  assert.equal(s2!.cachedBytes, 8 * MB, 'the freed block is kept');
  assert.equal(s2!.hits, 1, 'and reused by the second allocation');
  assert.ok((s2!.peakTotalBytes as number) >= 8 * MB);
});

test('cpu cache: idle memory stays under OLMO_TS_CPU_CACHE_MB, the rest goes back to the OS', () => {
  const [s] = child({ OLMO_TS_CPU_CACHE_MB: '20' }, 'const xs = [blk(8), blk(8), blk(8)]; for (const x of xs) x.dispose(); snap()');
  assert.equal(s!.limitBytes, 20 * MB);
  assert.equal(s!.cachedBytes, 16 * MB, 'two 8 MB blocks fit under 20 MB');
  assert.equal(s!.releasedBytes, 8 * MB, 'the third was freed');
});

test('cpu cache: with less free memory than OLMO_TS_CPU_CACHE_MIN_FREE_MB it empties itself before growing', () => {
  // A threshold above any machine's memory: every new block finds the machine "under pressure".
  const [a, b] = child({ OLMO_TS_CPU_CACHE_MIN_FREE_MB: String(1 << 30) }, 'blk(8).dispose(); snap(); blk(32).dispose(); snap()');
  assert.equal(a!.cachedBytes, 8 * MB);
  assert.equal(b!.pressureTrims, 1, 'the miss for 32 MB found memory short');
  assert.equal(b!.releasedBytes, 8 * MB, 'and gave the idle 8 MB back first');
  assert.equal(b!.cachedBytes, 32 * MB, 'the new block is cached again when freed');
});

test('cpu cache: OLMO_TS_CPU_CACHE_MB=0 turns it off', () => {
  const [s] = child({ OLMO_TS_CPU_CACHE_MB: '0' }, 'blk(8).dispose(); snap()');
  assert.equal(s!.enabled, false);
  assert.equal(s!.cachedBytes, 0);
});
