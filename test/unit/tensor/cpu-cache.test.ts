// The caching CPU allocator (native/cpu_cache.cc) on every libtorch version: a freed large block
// is reused for the next tensor of about the same size, values are what was written, trim empties
// the cache, small tensors bypass it, and OLMO_TS_CPU_CACHE_MB=0 leaves libtorch's allocator alone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { arange, cpuCache, ones, tidy } from '../../../src';

const ROOT = path.resolve(__dirname, '../../..');
const MB = 1 << 20;

test('a freed 8 MB block is reused, keeps no stale values, and trim returns it', () => {
  assert.equal(cpuCache.stats().enabled, true);
  cpuCache.trim();
  tidy(() => ones([MB], { dtype: 'float64' }).sum()); // 8 MB, freed at the end of tidy
  const s0 = cpuCache.stats();
  assert.ok(s0.cachedBytes >= 8 * MB, `cached ${s0.cachedBytes} bytes after freeing 8 MB`);
  // float64 sums of integers below 2^53 are exact in any order
  const total = tidy(() => arange(0, MB, 1, { dtype: 'float64' }).sum().item() as number);
  const s1 = cpuCache.stats();
  assert.equal(s1.hits, s0.hits + 1, 'the second 8 MB tensor came from the cache');
  assert.equal(total, ((MB - 1) * MB) / 2); // every element written by arange, none left from ones()
  tidy(() => ones([1000]).sum()); // small: libtorch's own allocator
  assert.equal(cpuCache.stats().misses, s1.misses, 'small blocks do not go through the cache');
  cpuCache.trim();
  assert.equal(cpuCache.stats().cachedBytes, 0);
});

test('OLMO_TS_CPU_CACHE_MB=0 disables the cache', () => {
  const script = `const { cpuCache, ones, tidy } = require('./src'); tidy(() => ones([1 << 21]).sum()); console.log(JSON.stringify(cpuCache.stats()));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: ROOT, env: { ...process.env, OLMO_TS_CPU_CACHE_MB: '0' }, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const st = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | boolean>;
  assert.deepEqual({ enabled: st.enabled, cachedBytes: st.cachedBytes, liveBytes: st.liveBytes, hits: st.hits, misses: st.misses, limitBytes: st.limitBytes }, { enabled: false, cachedBytes: 0, liveBytes: 0, hits: 0, misses: 0, limitBytes: 0 });
});
