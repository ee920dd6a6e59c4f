// F.headLoss (native/fused_head.cc), the fused LM head + loss: loss, cross-entropy, z-loss and the
// gradients of hidden, weight and bias against PyTorch's unfused linear + cross_entropy + z-loss on
// the same inputs (test/fixtures/ops/head_loss_ref.py, run at test time), in float32 and under bf16
// autocast, for both implementations (the CPU row kernel and the device-generic ATen path CUDA runs)
// and chunk sizes that split the rows unevenly; then misuse, autograd bookkeeping and memory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  ArgumentError, DTypeError, DisposedError, F, IndexError, ShapeError, autocast, cpuCache, dispose, keep, liveTensors,
  manualSeed, noGrad, randint, randn, tensor, tidy,
} from '../../../src';

const PY = '/usr/bin/python3';
const REF = path.join(__dirname, '../../fixtures/ops/head_loss_ref.py');
const U = { float32: 2 ** -24, bfloat16: 2 ** -8 }; // unit roundoff

interface Job { n: number; c: number; v: number; hidden: number[]; weight: number[]; bias: number[] | null; targets: number[]; scale: number; ce_weight: number; z_weight: number; amp: boolean }
interface Ref { loss: number; ce: number; z: number; max_abs_logit: number; grad_hidden: number[]; grad_weight: number[]; grad_bias: number[] | null }

/** A case: N rows of d=C hidden states, V logits (V % 16 != 0 exercises the kernel's tail). */
function makeJob(N: number, C: number, V: number, o: { bias: boolean; scale: number; ceWeight: number; zWeight: number; amp: boolean; seed: number }): Job {
  manualSeed(o.seed);
  return tidy(() => {
    const targets = (randint(0, V, [N], { dtype: 'int64' }).toList() as number[]).map((t, i) => (i % 5 === 3 ? -100 : t));
    return {
      n: N, c: C, v: V,
      hidden: randn([N, C]).toList() as number[], // toList() is flat, row-major
      weight: randn([V, C]).mul(0.3).toList() as number[],
      bias: o.bias ? (randn([V]).mul(0.2).toList() as number[]) : null,
      targets, scale: o.scale, ce_weight: o.ceWeight, z_weight: o.zWeight, amp: o.amp,
    };
  });
}

const JOBS: Record<string, Job> = {
  fp32: makeJob(37, 24, 300, { bias: true, scale: 0.7, ceWeight: 0.5, zWeight: 1e-2, amp: false, seed: 1 }),
  fp32_plain: makeJob(29, 16, 257, { bias: false, scale: 1, ceWeight: 1, zWeight: 0, amp: false, seed: 2 }),
  bf16: makeJob(37, 24, 300, { bias: true, scale: 0.7, ceWeight: 0.5, zWeight: 1e-2, amp: true, seed: 3 }),
  bf16_plain: makeJob(29, 16, 257, { bias: false, scale: 1, ceWeight: 1, zWeight: 1e-4, amp: true, seed: 4 }),
};

let refs: Record<string, Ref> | null = null;
function reference(): Record<string, Ref> {
  if (refs) return refs;
  const names = Object.keys(JOBS);
  const r = spawnSync(PY, [REF], { input: JSON.stringify(names.map((n) => JOBS[n])), encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${REF} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Ref[];
  refs = Object.fromEntries(names.map((n, i) => [n, out[i]!]));
  return refs;
}

/** ||a - b|| / ||b|| over flattened arrays. */
function relErr(a: number[], b: number[]): number {
  let d = 0, n = 0;
  for (let i = 0; i < b.length; i++) { d += (a[i]! - b[i]!) ** 2; n += b[i]! ** 2; }
  return Math.sqrt(d / Math.max(n, 1e-300));
}

interface Ours { loss: number; ce: number; z: number; gh: number[]; gw: number[]; gb: number[] | null }
function runOurs(job: Job, impl: 'auto' | 'aten', chunkRows: number): Ours {
  return tidy(() => {
    const h = tensor(job.hidden, { shape: [job.n, job.c] }).requiresGrad_();
    const w = tensor(job.weight, { shape: [job.v, job.c] }).requiresGrad_();
    const b = job.bias ? tensor(job.bias).requiresGrad_() : null;
    const t = tensor(job.targets, { dtype: 'int64' });
    const run = () => F.headLoss(h, w, b, t, { scale: job.scale, ceWeight: job.ce_weight, zWeight: job.z_weight, chunkRows, impl });
    const r = job.amp ? autocast(run) : run();
    r.loss.backward();
    return {
      loss: r.loss.item(), ce: r.ce.item(), z: r.z.item(),
      gh: h.grad!.toList() as number[], gw: w.grad!.toList() as number[], gb: b ? (b.grad!.toList() as number[]) : null,
    };
  });
}

const skipNoPy = !fs.existsSync(PY) && 'no /usr/bin/python3 with torch';

for (const name of Object.keys(JOBS)) {
  test(`headLoss equals PyTorch's linear + cross_entropy + z-loss: ${name}, both implementations, uneven chunks`, { skip: skipNoPy }, () => {
    const job = JOBS[name]!;
    const ref = reference()[name]!;
    const [N, C, V] = [job.n, job.c, job.v];
    const u = job.amp ? U.bfloat16 : U.float32;
    // float32: rounding of sums over K = max(N, C, V) terms, sqrt(K)·u with a factor 8 of headroom.
    // bf16: the logits and their gradient are rounded to bf16 (u each) on both sides, in different
    // places (PyTorch rounds the scaled logits again); the loss moves by at most a few u·|logit|.
    const K = Math.max(N, C, V);
    const gradTol = job.amp ? 4 * u : 8 * Math.sqrt(K) * u;
    const lossTol = job.amp ? 4 * u * ref.max_abs_logit * (job.ce_weight + 4 * job.z_weight * (ref.max_abs_logit + Math.log(V))) : 8 * Math.sqrt(K) * u * Math.abs(ref.loss);
    for (const impl of ['auto', 'aten'] as const) {
      for (const chunk of [1, 7, 64]) {
        const o = runOurs(job, impl, chunk);
        const at = `${impl}, chunkRows ${chunk}`;
        assert.ok(Math.abs(o.loss - ref.loss) <= lossTol, `${at}: loss ${o.loss}, PyTorch ${ref.loss} (tolerance ${lossTol})`);
        assert.ok(Math.abs(o.ce - ref.ce) <= lossTol, `${at}: ce ${o.ce}, PyTorch ${ref.ce}`);
        assert.ok(Math.abs(o.z - ref.z) <= lossTol, `${at}: z ${o.z}, PyTorch ${ref.z}`);
        if (job.z_weight === 0) assert.equal(o.z, 0);
        for (const [what, ours, theirs] of [['hidden', o.gh, ref.grad_hidden], ['weight', o.gw, ref.grad_weight], ['bias', o.gb, ref.grad_bias]] as const) {
          if (!theirs) { assert.equal(ours, null); continue; }
          const e = relErr(ours!, theirs);
          assert.ok(e <= gradTol, `${at}: d ${what} differs from PyTorch's by ${e.toExponential(2)} (relative norm; tolerance ${gradTol.toExponential(2)})`);
        }
      }
    }
  });
}

test('headLoss: every target ignored gives a NaN cross-entropy and no cross-entropy gradient, as PyTorch', () => {
  manualSeed(5);
  tidy(() => {
    const h = randn([6, 8]).requiresGrad_();
    const w = randn([40, 8]).requiresGrad_();
    const t = tensor([-100, -100, -100, -100, -100, -100], { dtype: 'int64' });
    for (const impl of ['auto', 'aten'] as const) {
      h.grad = null; w.grad = null;
      const r = F.headLoss(h, w, null, t, { zWeight: 0, impl });
      r.loss.backward();
      assert.ok(Number.isNaN(r.ce.item()), `${impl}: ce ${r.ce.item()}`);
      assert.equal(h.grad!.abs().max().item(), 0, `${impl}: d hidden is 0`);
      assert.equal(w.grad!.abs().max().item(), 0, `${impl}: d weight is 0`);
      // The z-loss still covers every row and has a gradient.
      h.grad = null;
      const z = F.headLoss(h, w, null, t, { ceWeight: 0, zWeight: 1, impl });
      z.loss.backward();
      const g = h.grad!.abs().max().item();
      assert.ok(z.z.item() > 0 && g > 0 && Number.isFinite(g), `${impl}: z-loss ${z.z.item()} and its gradient ${g}`);
    }
  });
});

test('headLoss: gradients only for inputs that require them, no graph without grad, results detached but loss, nothing leaks', () => {
  manualSeed(6);
  const before = liveTensors();
  tidy(() => {
    const h = randn([10, 8]).requiresGrad_();
    const w = randn([50, 8]);
    const b = randn([50]).requiresGrad_();
    const t = randint(0, 50, [10], { dtype: 'int64' });
    const r = F.headLoss(h, w, b, t, { zWeight: 1e-4 });
    assert.equal(r.loss.requiresGrad, true);
    assert.equal(r.ce.requiresGrad, false);
    assert.equal(r.z.requiresGrad, false);
    r.loss.backward();
    assert.ok(h.grad && b.grad);
    assert.equal(w.grad, null);
    assert.throws(() => r.loss.backward(), /backward|graph|freed/i, 'a second backward is refused');
    const e = noGrad(() => F.headLoss(h, w, b, t));
    assert.equal(e.loss.requiresGrad, false);
    assert.ok(Math.abs(e.loss.item() - r.ce.item()) < 1e-3 + 1e-4 * 50, 'the same cross-entropy without a graph');
    // backward with an upstream gradient other than 1 scales every gradient
    h.grad = null;
    const r2 = F.headLoss(h, w, b, t);
    r2.loss.backward(tensor(3));
    const g3 = h.grad!.clone();
    h.grad = null;
    F.headLoss(h, w, b, t).loss.backward();
    assert.ok(g3.sub(h.grad!.mul(3)).abs().max().item() <= 1e-6 * (1 + g3.abs().max().item()));
  });
  assert.equal(liveTensors(), before, 'no tensor handle outlives the calls');
});

test('headLoss misuse: a specific error for each bad input', () => {
  tidy(() => {
    const h = randn([4, 8]), w = randn([20, 8]), b = randn([20]), t = tensor([1, 2, 3, -100], { dtype: 'int64' });
    const cases: [string, () => unknown, new (...a: never[]) => Error, RegExp][] = [
      ['3-D hidden', () => F.headLoss(h.reshape(2, 2, 8), w, null, t), ShapeError, /hidden must be \(tokens, d_model\)/],
      ['weight of another width', () => F.headLoss(h, randn([20, 7]), null, t), ShapeError, /weight must be \(vocab, 8\)/],
      ['bias of another length', () => F.headLoss(h, w, randn([19]), t), ShapeError, /bias must be \(20\)/],
      ['targets of another length', () => F.headLoss(h, w, b, tensor([1, 2], { dtype: 'int64' })), ShapeError, /targets must be \(4\)/],
      ['float targets', () => F.headLoss(h, w, b, tensor([1, 2, 3, 4])), DTypeError, /targets must be int64/],
      ['target past the vocabulary', () => F.headLoss(h, w, b, tensor([1, 20, 3, 4], { dtype: 'int64' })), IndexError, /target 20 is out of range for 20 logits/],
      ['negative target', () => F.headLoss(h, w, b, tensor([1, -5, 3, 4], { dtype: 'int64' })), IndexError, /target -5 is out of range/],
      ['mixed dtypes outside autocast', () => F.headLoss(h.to('bfloat16'), w, null, t), DTypeError, /one dtype outside autocast/],
      ['no tokens', () => F.headLoss(randn([0, 8]), w, null, tensor([], { dtype: 'int64' })), ShapeError, /no tokens/],
      ['zero rows per chunk', () => F.headLoss(h, w, b, t, { chunkRows: 0 }), ArgumentError, /chunkRows must be a positive integer/],
      ['negative scale', () => F.headLoss(h, w, b, t, { scale: -1 }), ArgumentError, /positive finite scale/],
    ];
    for (const [what, fn, cls, re] of cases) {
      assert.throws(fn, (e: Error) => e instanceof cls && re.test(e.message), `${what}: expected ${cls.name} matching ${re}`);
    }
    const gone = randn([4, 8]);
    gone.dispose();
    assert.throws(() => F.headLoss(gone, w, b, t), DisposedError);
  });
});

test('headLoss never holds the (tokens, vocab) float32 logits: its peak allocation is a fraction of them', { skip: !cpuCache.stats().enabled && 'the caching allocator (which counts large blocks) is off here' }, () => {
  manualSeed(7);
  const [N, C, V] = [2048, 32, 4096]; // float32 logits: 32 MiB
  const logitsBytes = N * V * 4;
  const h = keep(randn([N, C]).requiresGrad_());
  const w = keep(randn([V, C]).requiresGrad_());
  const t = keep(randint(0, V, [N], { dtype: 'int64' }));
  const peak = (fn: () => void): number => {
    cpuCache.resetPeak();
    const base = cpuCache.stats().liveBytes;
    tidy(fn);
    return cpuCache.stats().peakLiveBytes - base;
  };
  const fused = peak(() => { autocast(() => F.headLoss(h, w, null, t, { zWeight: 1e-4, chunkRows: 256 })).loss.backward(); });
  const unfused = peak(() => {
    const lf = autocast(() => F.linear(h, w)).float();
    F.crossEntropy(lf, t).add(lf.logsumexp(-1).pow(2).mean().mul(1e-4)).backward();
  });
  // Fused: one bf16 chunk (256 x V), d weight (V x C, twice), d hidden: well under a quarter of the logits.
  assert.ok(fused < logitsBytes / 4, `fused head peaked at ${(fused / 2 ** 20).toFixed(1)} MiB of large blocks`);
  assert.ok(unfused >= logitsBytes, `the measurement sees the unfused float32 logits (${(unfused / 2 ** 20).toFixed(1)} MiB)`);
  dispose([h, w, t]);
});

test('headLoss keeps a chunk of rows and the whole batch equal (chunking changes no value beyond rounding)', () => {
  manualSeed(8);
  tidy(() => {
    const h = randn([50, 12]), w = randn([70, 12]), t = randint(0, 70, [50], { dtype: 'int64' });
    const whole = F.headLoss(h, w, null, t, { zWeight: 1e-3, chunkRows: 50 }).loss.item();
    for (const c of [1, 3, 49]) {
      const v = F.headLoss(h, w, null, t, { zWeight: 1e-3, chunkRows: c }).loss.item();
      assert.ok(Math.abs(v - whole) <= 1e-6 * Math.abs(whole), `chunkRows ${c}: ${v} vs ${whole}`);
    }
  });
});

