// Random streams and generator state: same draws as PyTorch after the same seed, and exact
// replay after restoring a saved state (what resuming a run relies on).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Generator, empty, getRngState, manualSeed, rand, randint, randn, randperm, setRngState, tidy } from '../../../src';
import { assertClose } from '../../helpers/compare';
import { referenceDir } from '../../helpers/reference';

const ref = JSON.parse(fs.readFileSync(path.join(referenceDir('ops'), 'ops.json'), 'utf8')).random as Record<string, number[]>;

test('draws after manualSeed equal PyTorch (randn, rand, randint, normal_, uniform_, randperm)', () => {
  tidy(() => {
    manualSeed(42);
    assertClose(randn(7).toList(), ref.randn!, 'randn');
    assertClose(rand([2, 3]).toList(), ref.rand!, 'rand');
    assert.deepEqual(randint(0, 100, 6).toList(), ref.randint);
    assertClose(empty(5).normal_(1.0, 0.02).toList(), ref.normal_!, 'normal_');
    assertClose(empty(5).uniform_(-2.0, 3.0).toList(), ref.uniform_!, 'uniform_');
    assert.deepEqual(randperm(8).toList(), ref.randperm);
  });
});

test('an explicit Generator gives PyTorch stream and does not touch the default one', () => {
  tidy(() => {
    manualSeed(1);
    const a = randn(3).toList();
    manualSeed(1);
    const g = new Generator(7);
    assertClose(randn(4, { generator: g }).toList(), ref.generator_randn!, 'generator randn');
    assert.deepEqual(randn(3).toList(), a, 'default stream unaffected by the generator');
    g.close();
    assert.throws(() => g.getState(), { name: 'DisposedError' });
  });
});

test('saving and restoring the default generator state replays the same draws', () => {
  tidy(() => {
    manualSeed(3);
    randn(10);
    const state = getRngState();
    assert.ok(state instanceof Uint8Array && state.length > 1000);
    const first = randn(20).toList();
    randn(5);
    setRngState(state);
    assert.deepEqual(randn(20).toList(), first);
    assert.throws(() => setRngState(new Uint8Array(3)), { name: 'TorchError' });
  });
});

test('generator state round trip', () => {
  tidy(() => {
    const g = new Generator(11);
    randn(3, { generator: g });
    const s = g.getState();
    const x = randn(6, { generator: g }).toList();
    g.setState(s);
    assert.deepEqual(randn(6, { generator: g }).toList(), x);
    g.close();
  });
});
