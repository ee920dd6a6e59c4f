// The start-up banner: lines in the order they were set (a label set again keeps its place),
// aligned labels, and removal, so other parts of a run can add their own lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StartupBanner } from '../../../src/train/logging/banner';

test('StartupBanner keeps order, replaces in place, aligns labels', () => {
  const b = new StartupBanner('olmo-ts train');
  b.set('run folder', '/r').set('model', '1 parameter').set('device', 'cpu');
  b.set('model', '2 parameters');
  b.set('world', '1 process');
  b.delete('device');
  assert.equal(b.get('model'), '2 parameters');
  assert.deepEqual(b.entries().map(([k]) => k), ['run folder', 'model', 'world']);
  assert.equal(b.render(), 'olmo-ts train\n  run folder  /r\n  model       2 parameters\n  world       1 process');
  assert.equal(new StartupBanner('t').render(), 't');
});
