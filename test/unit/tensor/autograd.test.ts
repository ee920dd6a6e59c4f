// Autograd and modes: gradients accumulate and reset, noGrad stops tracking, backward with an
// explicit gradient, autocast runs matmuls in bf16 and restores state, thread count control.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { F, autocast, enableGrad, getNumThreads, isGradEnabled, noGrad, ones, setNumThreads, tensor, tidy, zeroGrad } from '../../../src';
import { blasNumThreads } from '../../../src/tensor/runtime';

test('gradients accumulate across backward calls and zeroGrad clears them', () => {
  tidy(() => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    x.mul(x).sum().backward();
    assert.deepEqual(x.grad!.toList(), [2, 4, 6]);
    x.mul(3).sum().backward();
    assert.deepEqual(x.grad!.toList(), [5, 7, 9]);
    zeroGrad([x], false);
    assert.deepEqual(x.grad!.toList(), [0, 0, 0]);
    zeroGrad([x]);
    assert.equal(x.grad, null);
  });
});

test('backward with an explicit gradient, retainGraph, and non-leaf retainGrad', () => {
  tidy(() => {
    const x = tensor([1, 2], { requiresGrad: true });
    const y = x.mul(2).retainGrad();
    const z = y.square();
    z.backward(tensor([1, 10]), { retainGraph: true });
    assert.deepEqual(x.grad!.toList(), [8, 160]);
    assert.deepEqual(y.grad!.toList(), [4, 80]);
    assert.equal(z.gradFn, 'PowBackward0');
    assert.equal(x.isLeaf, true);
    assert.equal(y.isLeaf, false);
    z.sum().backward();
  });
});

test('noGrad stops tracking and restores the previous mode, even on throw', () => {
  tidy(() => {
    const x = ones([2], { requiresGrad: true });
    const y = noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(isGradEnabled(), true);
    assert.throws(() => noGrad(() => { throw new Error('boom'); }));
    assert.equal(isGradEnabled(), true);
    noGrad(() => assert.equal(enableGrad(() => x.mul(2)).requiresGrad, true));
  });
});

test('detach and grad setter', () => {
  tidy(() => {
    const x = ones([2], { requiresGrad: true });
    assert.equal(x.detach().requiresGrad, false);
    x.grad = tensor([5, 6]);
    assert.deepEqual(x.grad!.toList(), [5, 6]);
    x.grad = null;
    assert.equal(x.grad, null);
  });
});

test('autocast runs linear in bfloat16, keeps fp32 reductions, nests and restores', () => {
  tidy(() => {
    const x = ones([2, 8]), w = ones([4, 8]);
    assert.equal(F.linear(x, w).dtype, 'float32');
    autocast(() => {
      const y = F.linear(x, w);
      assert.equal(y.dtype, 'bfloat16');
      assert.equal(y.softmax(-1, 'float32').dtype, 'float32');
      autocast(() => assert.equal(F.linear(x, w).dtype, 'float32'), { enabled: false });
      assert.equal(F.linear(x, w).dtype, 'bfloat16', 'outer autocast restored after an inner disabled scope');
    });
    assert.equal(F.linear(x, w).dtype, 'float32', 'state restored after the scope');
    assert.throws(() => autocast(() => { throw new Error('inside'); }));
    assert.equal(F.linear(x, w).dtype, 'float32', 'state restored after a throw');
  });
});

test('intra-op thread count can be set and read; OpenBLAS\'s pool follows it', () => {
  const prev = getNumThreads();
  setNumThreads(2);
  assert.equal(getNumThreads(), 2);
  setNumThreads(1);
  assert.equal(getNumThreads(), 1);
  // When OpenBLAS is loaded (Debian's libblas.so.3; scripts/setup.sh installs it) it must follow;
  // a libtorch with MKL or another BLAS has no such pool (-1).
  const openblas = fs.readFileSync('/proc/self/maps', 'utf8').includes('libopenblas');
  assert.equal(blasNumThreads(), openblas ? 1 : -1, 'OpenBLAS threads follow setNumThreads');
  setNumThreads(prev);
  assert.equal(getNumThreads(), prev);
});
