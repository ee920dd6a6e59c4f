// The nn layer: Module naming, kinds, train/eval and state-dict loading; Linear, Embedding,
// Dropout and the layer norm variants checked against their formulas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tensor, tidy, autocast, F, Tensor, liveTensors } from '../../../src/index';
import { Module, ModuleList, Linear, Embedding, Dropout, LayerNorm, RMSLayerNorm, AMDLayerNorm } from '../../../src/nn';

const diff = (a: Tensor, b: Tensor) => tidy(() => a.float().sub(b.float()).abs().max().item());

class Toy extends Module {
  readonly proj = this.registerModule('proj', new Linear(4, 3));
  readonly norm = this.registerModule('norm', new LayerNorm(3));
  readonly layers = this.registerModule('layers', new ModuleList([new Linear(3, 3, { bias: false }), new Embedding(5, 3)]));
  readonly drop = this.registerModule('drop', new Dropout(0.5));
}

test('Module: dotted names in registration order, kinds, kept leaf parameters that require grad', () => {
  const m = new Toy();
  assert.deepEqual(
    m.namedParameters().map((p) => `${p.name}:${p.kind}`),
    ['proj.weight:linear_weight', 'proj.bias:linear_bias', 'norm.weight:norm_weight', 'norm.bias:norm_bias', 'layers.0.weight:linear_weight', 'layers.1.weight:embedding'],
  );
  assert.equal(m.numParams(), 12 + 3 + 3 + 3 + 9 + 15);
  for (const p of m.parameters()) {
    assert.ok(p.requiresGrad && p.isLeaf && p.kept);
  }
  tidy(() => m.proj.forward(randn([2, 4]))); // parameters survive tidy scopes
  assert.ok(!m.proj.weight.isDisposed);
  m.dispose();
  assert.ok(m.proj.weight.isDisposed);
});

test('Module: train/eval reach every submodule; duplicate or dotted names are rejected', () => {
  const m = new Toy();
  m.eval();
  assert.ok(m.namedModules().every(([, x]) => !x.training));
  m.train();
  assert.ok(m.drop.training && m.layers.at(1).training);
  class Bad extends Module {
    constructor(kind: 'dup' | 'dot') {
      super();
      this.registerModule('a', new Dropout(0));
      if (kind === 'dup') this.registerModule('a', new Dropout(0));
      else this.registerParameter('w.x', tensor([1]), 'linear_weight');
    }
  }
  assert.throws(() => new Bad('dup'), /'a' is already registered/);
  assert.throws(() => new Bad('dot'), /must not contain '\.'/);
  assert.throws(() => m.layers.at(5), /out of range/);
  m.dispose();
});

test('Module.loadStateDict copies in place (the optimizer keeps its tensors) and checks names', () => {
  const a = new Toy();
  const b = new Toy();
  const w = b.proj.weight;
  b.loadStateDict(a.stateDict());
  assert.equal(b.proj.weight, w);
  assert.equal(diff(a.proj.weight, b.proj.weight), 0);
  const partial = new Map(a.stateDict());
  partial.delete('norm.bias');
  partial.set('extra', a.proj.bias!);
  assert.throws(() => b.loadStateDict(partial), /missing: norm\.bias; unexpected: extra/);
  assert.deepEqual(b.loadStateDict(partial, false), { missing: ['norm.bias'], unexpected: ['extra'] });
  a.dispose();
  b.dispose();
});

test('Linear, Embedding and Dropout compute their formulas', () => {
  manualSeed(0);
  const lin = new Linear(4, 3);
  const emb = new Embedding(5, 3);
  tidy(() => {
    lin.weight.detach().normal_();
    lin.bias!.detach().normal_();
    emb.weight.detach().normal_();
    const x = randn([2, 4]);
    assert.ok(diff(lin.forward(x), x.matmul(lin.weight.T).add(lin.bias!)) < 1e-6);
    assert.equal(diff(emb.forward(tensor([[4, 0]], { dtype: 'int64' })).squeeze(0), F.embedding(tensor([4, 0], { dtype: 'int64' }), emb.weight)), 0);
    const d0 = new Dropout(0);
    assert.equal(d0.forward(x), x, 'p = 0 is the identity (no op dispatched)');
    const d = new Dropout(0.5);
    const y = d.forward(randn([1000]).abs().add(1));
    const zeros = tidy(() => y.eq(0).float().mean().item());
    assert.ok(zeros > 0.4 && zeros < 0.6, `dropped fraction ${zeros}`);
    d.eval();
    assert.equal(d.forward(x), x);
  });
  assert.throws(() => new Dropout(1.5), /\[0, 1\]/);
  lin.dispose();
  emb.dispose();
});

test('layer norms: default, RMS and AMD match their formulas; non-affine ones have no parameters', () => {
  manualSeed(1);
  const ln = new LayerNorm(8);
  const rms = new RMSLayerNorm(8, { bias: false });
  const amd = new AMDLayerNorm(8);
  const bare = new LayerNorm(8, { affine: false });
  assert.equal(bare.parameters().length, 0);
  assert.equal(rms.parameters().length, 1);
  tidy(() => {
    for (const n of [ln, rms, amd]) for (const p of n.parameters()) p.detach().normal_();
    const x = randn([3, 8]).mul(3).add(1);
    const mean = x.mean(-1, true);
    const varb = x.var(-1, true, false);
    const normed = x.sub(mean).div(varb.add(1e-5).sqrt());
    assert.ok(diff(ln.forward(x), normed.mul(ln.weight!).add(ln.bias!)) < 1e-5);
    assert.ok(diff(amd.forward(x), normed.mul(amd.weight!).add(amd.bias!)) < 1e-5);
    assert.ok(diff(bare.forward(x), normed) < 1e-5);
    const rmsRef = x.div(x.square().mean(-1, true).add(1e-5).sqrt()).mul(rms.weight!);
    assert.ok(diff(rms.forward(x), rmsRef) < 1e-5);
  });
  for (const n of [ln, rms, amd]) n.dispose();
});

test('low_precision LayerNorm runs in the autocast dtype; the default one returns float32', () => {
  const low = new LayerNorm(8, { lowPrecision: true });
  const std = new LayerNorm(8);
  const before = liveTensors();
  tidy(() => {
    const x = randn([2, 8]);
    const [a, b] = autocast(() => [low.forward(x), std.forward(x)], { dtype: 'bfloat16' });
    assert.equal(a!.dtype, 'bfloat16');
    assert.equal(b!.dtype, 'float32');
    assert.ok(diff(a!, b!) < 0.05);
    assert.equal(low.forward(x).dtype, 'float32', 'outside autocast it is the default LayerNorm');
  });
  assert.equal(liveTensors(), before);
  low.dispose();
  std.dispose();
});
