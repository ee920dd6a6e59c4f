// Memory scopes: tidy frees what it created except its result, keep() escapes, dispose is
// idempotent, and nested scopes hand returned tensors to their parent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dispose, keep, liveTensors, ones, randn, tidy, zeros } from '../../../src';

test('tidy frees intermediates and keeps what it returns', () => {
  const before = liveTensors();
  const r = tidy(() => {
    const a = ones([4]);
    const b = a.mul(3).add(1);
    return b.exp();
  });
  assert.equal(liveTensors(), before + 1);
  assert.equal(r.shape[0], 4);
  r.dispose();
  assert.equal(liveTensors(), before);
});

test('tidy returns arrays and objects of tensors intact', () => {
  const before = liveTensors();
  const { x, ys } = tidy(() => ({ x: ones([2]), ys: [zeros([1]), randn([3])], n: 5 }));
  assert.equal(liveTensors(), before + 3);
  dispose([x, ys]);
  assert.equal(liveTensors(), before);
});

test('nested tidy moves results to the parent scope, which then frees them', () => {
  const before = liveTensors();
  tidy(() => {
    const inner = tidy(() => ones([2]).add(1));
    assert.equal(inner.isDisposed, false);
    assert.equal(liveTensors(), before + 1);
  });
  assert.equal(liveTensors(), before);
});

test('keep() escapes every scope; dispose() is idempotent', () => {
  const before = liveTensors();
  let kept!: ReturnType<typeof ones>;
  tidy(() => {
    kept = keep(ones([3]));
    ones([3]);
  });
  assert.equal(kept.isDisposed, false);
  assert.equal(liveTensors(), before + 1);
  kept.dispose();
  kept.dispose();
  assert.equal(liveTensors(), before);
  assert.equal(kept.toString(), 'Tensor(disposed)');
});

test('an exception inside tidy still frees the scope', () => {
  const before = liveTensors();
  assert.throws(() => tidy(() => { ones([5]); ones([5]).matmul(ones([2, 2])); }));
  assert.equal(liveTensors(), before);
});

test('views share storage with their base and stay valid after the base handle is disposed', () => {
  const base = ones([2, 3]);
  const v = base.transpose(0, 1);
  const d = base.detach();
  assert.ok(require('../../../src/native').native.sharesStorage(base.id, v.id));
  base.dispose();
  assert.deepEqual(v.shape, [3, 2]);
  assert.equal(v.sum().item(), 6);
  dispose([v, d]);
});
