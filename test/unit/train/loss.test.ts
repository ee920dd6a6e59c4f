// nextTokenLoss (src/train/loss.ts): the same loss and the same gradients, bit for bit, as the
// straightforward cast-then-slice computation, with and without z-loss and ignored targets; the
// metric tensors are detached and nothing leaks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { F, Tensor, keep, liveTensors, manualSeed, randint, randn, tidy } from '../../../src';
import { nextTokenLoss } from '../../../src/train/loss';

const [b, T, V] = [3, 9, 50];

/** The loss as written before nextTokenLoss: float32 cast of all logits, contiguous slice, CE (+ z). */
function reference(logits: Tensor, labels: Tensor, zLoss: boolean, divisor: number): Tensor {
  const full = logits.float();
  const ce = F.crossEntropy(full.slice(1, 0, T - 1).contiguous().view(-1, V), labels.slice(1, 1, T).contiguous().view(-1), { ignoreIndex: -100 }).div(divisor);
  return zLoss ? ce.add(full.logsumexp(-1).pow(2).mean().mul(1e-4).div(divisor)) : ce;
}

/** Loss value and the gradient of a float32 leaf that reaches the loss through a bf16 cast. */
function lossAndGrad(leaf: Tensor, labels: Tensor, fn: (logits: Tensor) => Tensor): { loss: number; grad: number[] } {
  return tidy(() => {
    leaf.grad = null;
    const loss = fn(leaf.to('bfloat16')); // (b, T, V) bf16, as under autocast
    loss.backward();
    return { loss: loss.item(), grad: leaf.grad!.toList() };
  });
}

for (const zLoss of [false, true]) {
  test(`nextTokenLoss matches cast-then-slice bit for bit (z-loss ${zLoss ? 'on' : 'off'}, ignored targets)`, () => {
    manualSeed(7);
    const leaf = keep(tidy(() => randn([b, T, V]).mul(3)).requiresGrad_());
    const labels = keep(randint(0, V, [b, T], { dtype: 'int64' }));
    tidy(() => labels.select(0, 2).slice(0, 2, 5).fill_(-100)); // ignored targets in row 2
    const before = liveTensors();
    const ours = lossAndGrad(leaf, labels, (lg) => nextTokenLoss(lg, labels, { zLoss, divisor: 2 }).loss);
    const ref = lossAndGrad(leaf, labels, (lg) => reference(lg, labels, zLoss, 2));
    assert.equal(ours.loss, ref.loss);
    assert.deepEqual(ours.grad, ref.grad);
    assert.equal(liveTensors(), before, 'no tensor handle outlives the calls');
    leaf.grad = null;
    leaf.dispose();
    labels.dispose();
  });
}

test('nextTokenLoss: loss = ce + z, metrics detached, z null without z-loss', () => {
  manualSeed(3);
  tidy(() => {
    const logits = randn([b, T, V]).requiresGrad_();
    const labels = randint(0, V, [b, T], { dtype: 'int64' });
    const m = nextTokenLoss(logits, labels, { zLoss: true, divisor: 4 });
    assert.equal(m.ce.requiresGrad, false);
    assert.equal(m.z!.requiresGrad, false);
    assert.equal(m.loss.requiresGrad, true);
    assert.equal(m.loss.item(), m.ce.add(m.z!).item());
    const plain = nextTokenLoss(logits, labels, { zLoss: false, divisor: 4 });
    assert.equal(plain.z, null);
    assert.equal(plain.ce.item(), m.ce.item());
  });
});
