// AdamW against torch.optim.AdamW, LionW and OLMo's clipping rules against OLMo's formulas
// (fixtures from test/fixtures/optim/gen_optim.py), plus OLMo's decay / no-decay grouping.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Tensor, keep, noGrad, tensor, tidy } from '../../../src';
import { AdamW, LionW, Optimizer, ParamGroup, buildParamGroups } from '../../../src/optim';
import { assertClose } from '../../helpers/compare';
import { referenceDir } from '../../helpers/reference';

interface Enc { shape: number[]; data: number[] }
const fx = JSON.parse(fs.readFileSync(path.join(referenceDir('optim'), 'optim.json'), 'utf8'));
const NAMES = ['w', 'b', 'e'];

function setup(): { params: Record<string, Tensor>; groups: ParamGroup[] } {
  const params: Record<string, Tensor> = {};
  for (const n of NAMES) params[n] = keep(tensor(Float32Array.from(fx.init[n].data), { shape: fx.init[n].shape }).requiresGrad_());
  const named = [
    { name: 'w', tensor: params.w!, kind: 'linear_weight' as const },
    { name: 'b', tensor: params.b!, kind: 'linear_bias' as const },
    { name: 'e', tensor: params.e!, kind: 'embedding' as const },
  ];
  return { params, groups: buildParamGroups(named, { learning_rate: fx.lrs[0], weight_decay: 0.1 }) };
}
function setGrads(params: Record<string, Tensor>, k: number): void {
  for (const n of NAMES) {
    const g = fx.grads[k][n] as Enc | undefined;
    params[n]!.grad = g ? tidy(() => tensor(Float32Array.from(g.data), { shape: g.shape })) : null;
  }
}
function run(opt: Optimizer, params: Record<string, Tensor>): Record<string, number>[] {
  const metrics = [];
  for (let k = 0; k < fx.lrs.length; k++) {
    for (const g of opt.groups) g.lr = fx.lrs[k];
    setGrads(params, k);
    metrics.push(opt.step());
    opt.zeroGrad();
  }
  return metrics;
}

test("OLMo's grouping: linear weights decay; biases, norms and embeddings do not (unless asked)", () => {
  const { params, groups } = setup();
  assert.deepEqual(groups.map((g) => [g.names, g.weightDecay]), [[['w'], 0.1], [['b', 'e'], 0]]);
  const named = [{ name: 'z.weight', tensor: params.w!, kind: 'norm_weight' as const }, { name: 'a.weight', tensor: params.e!, kind: 'embedding' as const }];
  assert.deepEqual(buildParamGroups(named, { learning_rate: 1, weight_decay: 0.1, decay_norm_and_bias: true }).map((g) => g.names), [['z.weight'], ['a.weight']]);
  assert.deepEqual(buildParamGroups(named, { learning_rate: 1, weight_decay: 0.1, no_decay_norm_and_bias: false }).map((g) => g.names), [['a.weight', 'z.weight']]);
  for (const t of Object.values(params)) t.dispose();
});

test('AdamW equals torch.optim.AdamW (eps 1e-5, per-group decay, skipped grads, changing lr)', () => {
  const { params, groups } = setup();
  const opt = new AdamW(groups, { betas: [0.9, 0.95], eps: 1e-5 });
  run(opt, params);
  for (const n of NAMES) assertClose(params[n]!.toList(), fx.adamw.params[n].data, `param ${n}`, 1e-6, 1e-7);
  const st = opt.stateDict();
  for (const n of NAMES) {
    assertClose(st.tensors.exp_avg![n]!.toList(), fx.adamw.exp_avg[n].data, `exp_avg ${n}`, 1e-6, 1e-7);
    assert.equal(st.values.step[n], fx.adamw.step[n], `step count of ${n}`);
  }
  opt.close();
  for (const t of Object.values(params)) t.dispose();
});

test("LionW equals OLMo's LionW, including update_cos_sim", () => {
  const { params, groups } = setup();
  const opt = new LionW(groups, { betas: [0.9, 0.99] });
  const metrics = run(opt, params);
  for (const n of NAMES) assertClose(params[n]!.toList(), fx.lion.params[n].data, `param ${n}`, 1e-6, 1e-7);
  assertClose(metrics.map((m) => m.update_cos_sim!), fx.lion.update_cos_sim, 'update_cos_sim', 1e-5);
  opt.close();
  for (const t of Object.values(params)) t.dispose();
});

for (const mode of ['global', 'adaptive'] as const) {
  test(`${mode} gradient clipping equals OLMo's (${mode === 'global' ? 'max_grad_norm 1.0' : 'max_grad_norm_ratio 1.5'})`, () => {
    const { params } = setup();
    const named = NAMES.map((n) => ({ name: n, tensor: params[n]!, kind: 'linear_weight' as const }));
    const groups = buildParamGroups(named, { learning_rate: 1e-3, weight_decay: 0 });
    if (mode === 'global') groups[0]!.maxGradNorm = 1.0; else groups[0]!.maxGradNormRatio = 1.5;
    const opt = new AdamW(groups, { betas: [0.9, 0.95] });
    const ref = fx[`clip_${mode}`];
    let sawClip = false;
    for (let k = 0; k < ref.length; k++) {
      setGrads(params, k);
      const m = opt.clipGradsAndCollectMetrics(k + 1);
      assertClose([m.total_grad_norm], [ref[k].total_grad_norm], `step ${k + 1} total_grad_norm`, 1e-6);
      assert.equal(m.clipping_rate, ref[k].clipping_rate, `step ${k + 1} clipping_rate`);
      sawClip ||= m.clipping_rate > 0;
      for (const n of NAMES) {
        const exp = ref[k].grads[n] as Enc | undefined;
        const g = params[n]!.grad;
        if (!exp) { assert.equal(g, null); continue; }
        assertClose(g!.toList(), exp.data, `step ${k + 1} clipped grad ${n}`, 1e-5, 1e-7);
        g!.dispose();
      }
      opt.zeroGrad();
    }
    assert.ok(sawClip, 'the fixture exercises actual clipping');
    opt.close();
    for (const t of Object.values(params)) t.dispose();
  });
}

test('AdamW state survives stateDict -> loadStateDict into a fresh optimizer', () => {
  const a = setup();
  const optA = new AdamW(a.groups, { betas: [0.9, 0.95] });
  run(optA, a.params);
  const b = setup();
  noGrad(() => { for (const n of NAMES) b.params[n]!.copy_(a.params[n]!); });
  const optB = new AdamW(b.groups, { betas: [0.9, 0.95] });
  optB.loadStateDict(optA.stateDict());
  for (const [opt, p] of [[optA, a.params], [optB, b.params]] as const) {
    for (const g of opt.groups) g.lr = 1e-3;  // the scheduler sets lr; state does not carry it
    setGrads(p, 0);
    opt.step();
  }
  for (const n of NAMES) assert.deepEqual(b.params[n]!.toList(), a.params[n]!.toList(), `param ${n} after one more step`);
  optA.close(); optB.close();
  for (const t of [...Object.values(a.params), ...Object.values(b.params)]) t.dispose();
});

test('a non-finite gradient does not poison the adaptive clipping average', () => {
  const { params } = setup();
  const named = NAMES.map((n) => ({ name: n, tensor: params[n]!, kind: 'linear_weight' as const }));
  const groups = buildParamGroups(named, { learning_rate: 1e-3, weight_decay: 0 });
  groups[0]!.maxGradNormRatio = 1.5;
  const opt = new AdamW(groups, { betas: [0.9, 0.95] });
  setGrads(params, 0);
  opt.clipGradsAndCollectMetrics(1);
  setGrads(params, 1);
  opt.clipGradsAndCollectMetrics(2);
  const before = opt.stateDict().values.grad_norm_exp_avg;
  noGrad(() => params.w!.grad!.fill_(Infinity));
  assert.equal(opt.clipGradsAndCollectMetrics(3).total_grad_norm, Infinity);
  assert.deepEqual(opt.stateDict().values.grad_norm_exp_avg, before, 'average unchanged by the refused step');
  opt.zeroGrad();
  setGrads(params, 2);
  const m = opt.clipGradsAndCollectMetrics(4);
  assert.ok(Number.isFinite(m.total_grad_norm));
  for (const n of NAMES) assert.ok(params[n]!.grad === null || params[n]!.grad!.isfinite().all().item(), `grad ${n} finite after clipping`);
  opt.close();
  for (const t of Object.values(params)) t.dispose();
});
