// Every op in test/fixtures/ops/ops.json (computed by PyTorch on the same libtorch version, see
// gen_ops.py there and test/helpers/reference.ts) recomputed through olmo-ts: outputs and input
// gradients must match.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Device, F, Tensor, autocast, cat, dispose, liveTensors, stack, tensor, tidy, where } from '../../../src';
import { assertClose } from '../../helpers/compare';
import { referenceDir } from '../../helpers/reference';

interface Enc { dtype: string; shape: number[]; data: number[] }
interface Case { inputs: Enc[]; outputs: Enc[]; upstream?: Enc[]; grads?: (Enc | null)[] }
const fixture = JSON.parse(fs.readFileSync(path.join(referenceDir('ops'), 'ops.json'), 'utf8')) as { cases: Record<string, Case> };

type Op = (...xs: Tensor[]) => Tensor | Tensor[];
const sdpa = (q: Tensor, k: Tensor, v: Tensor, mask?: Tensor, causal = false) =>
  F.scaledDotProductAttention(q, k, v, { attnMask: mask ?? null, isCausal: causal });

// The same table as gen_ops.py, written with olmo-ts's API.
const OPS: Record<string, Op> = {
  add_broadcast: (a, b) => a.add(b!),
  add_scalar: (a) => a.add(2.5),
  sub: (a, b) => a.sub(b!),
  rsub: (a) => a.rsub(1.5),
  mul: (a, b) => a.mul(b!),
  div: (a, b) => a.div(b!),
  div_scalar: (a) => a.div(3.0),
  pow_scalar: (a) => a.pow(1.7),
  pow_tensor: (a, b) => a.pow(b!),
  maximum: (a, b) => a.maximum(b!),
  minimum: (a, b) => a.minimum(b!),
  matmul_2d: (a, b) => a.matmul(b!),
  matmul_batched: (a, b) => a.matmul(b!),
  linear_bias: (x, w, b) => F.linear(x, w!, b),
  linear_nobias: (x, w) => F.linear(x, w!),
  silu: (a) => a.silu(),
  gelu: (a) => a.gelu(),
  gelu_tanh: (a) => a.gelu('tanh'),
  relu: (a) => a.relu(),
  tanh: (a) => a.tanh(),
  sigmoid: (a) => a.sigmoid(),
  exp: (a) => a.exp(),
  log: (a) => a.log(),
  sqrt: (a) => a.sqrt(),
  rsqrt: (a) => a.rsqrt(),
  neg_abs: (a) => a.neg().abs(),
  square: (a) => a.square(),
  erf: (a) => a.erf(),
  softmax: (a) => a.softmax(-1),
  log_softmax: (a) => a.logSoftmax(-1),
  logsumexp: (a) => a.logsumexp(-1),
  layer_norm_affine: (x, w, b) => F.layerNorm(x, [8], w, b, 1e-5),
  layer_norm_plain: (x) => F.layerNorm(x, [8], null, null, 1e-5),
  rms_norm: (x, w) => F.rmsNorm(x, w, null, 1e-5),
  embedding: (i, w) => F.embedding(i, w!),
  cross_entropy_mean: (x, t) => F.crossEntropy(x, t!, { ignoreIndex: -100 }),
  cross_entropy_sum: (x, t) => F.crossEntropy(x, t!, { ignoreIndex: -100, reduction: 'sum' }),
  cross_entropy_none: (x, t) => F.crossEntropy(x, t!, { ignoreIndex: -100, reduction: 'none' }),
  sdpa_causal: (q, k, v) => sdpa(q, k!, v!, undefined, true),
  sdpa_float_mask: (q, k, v, m) => sdpa(q, k!, v!, m!.detach()),
  sum_all: (a) => a.sum(),
  sum_dim_keep: (a) => a.sum(1, true),
  mean_dims: (a) => a.mean([0, 2]),
  amax: (a) => a.amax(-1),
  max_dim: (a) => a.max(1)[0],
  norm_all: (a) => a.norm(),
  norm_dim: (a) => a.norm(2, 1),
  var_std: (a) => a.var(1).add(a.std(1)),
  transpose_contig: (a) => a.transpose(0, 2).contiguous().mul(2),
  permute_reshape: (a) => a.permute(2, 0, 1).reshape(4, 6),
  narrow: (a) => a.narrow(0, 1, 3),
  slice_step: (a) => a.slice(0, 1, 6, 2),
  chunk: (a) => a.chunk(3, -1),
  split_sizes: (a) => a.split([2, 3], 0),
  cat: (a, b) => cat([a, b!], 0),
  stack: (a, b) => stack([a, b!], 1),
  index_select: (a, i) => a.indexSelect(0, i!),
  gather: (a, i) => a.gather(1, i!),
  masked_fill: (a, m) => a.maskedFill(m!, -1e4),
  where: (c, a, b) => where(c, a!, b!),
  tril_triu: (a) => a.tril().add(a.triu(1).mul(2)),
  repeat_interleave: (a) => a.repeatInterleave(2, 1),
  expand: (a) => a.expand(3, 4).mul(1.0),
  flip: (a) => a.flip([1]),
  cumsum: (a) => a.cumsum(1),
  clamp: (a) => a.clamp(-0.5, 0.7),
  compare_gt: (a, b) => a.gt(b!),
  bf16_roundtrip: (a) => a.bfloat16().float(),
  autocast_linear: (x, w) => autocast(() => F.linear(x, w!), { device: DEVICE }),
};

// OLMO_TS_TEST_DEVICE=cuda runs the same table on the GPU against the same CPU reference (with
// a looser tolerance: GPU kernels reduce in other orders).
const DEVICE = (process.env.OLMO_TS_TEST_DEVICE ?? 'cpu') as Device;
const [RTOL, ATOL] = DEVICE === 'cpu' ? [1e-5, 1e-6] : [1e-4, 1e-5];
// Cases computed in bfloat16 (autocast): matmul kernels differ by CPU (AMX, AVX-512 BF16, or
// emulation) and libtorch version in how they block and round, so results may differ by a few bf16
// units in the last place. bf16 keeps 8 significant bits (unit roundoff 2^-8): allow 4 of them,
// relative to each value and, for sums that cancel, to the largest value of the tensor.
const BF16_U = 2 ** -8;
function tolerances(c: Case, expected: Enc): [number, number] {
  if (!c.outputs.some((o) => o.dtype === 'bfloat16')) return [RTOL, ATOL];
  const largest = expected.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  return [Math.max(RTOL, 4 * BF16_U), Math.max(ATOL, 4 * BF16_U * largest)];
}

function build(e: Enc): Tensor {
  if (e.dtype === 'bool') return tensor(e.data, { shape: e.shape, dtype: 'bool', device: DEVICE });
  if (e.dtype === 'int64') return tensor(e.data, { shape: e.shape, dtype: 'int64', device: DEVICE });
  return tensor(Float32Array.from(e.data), { shape: e.shape, device: DEVICE });
}
function values(t: Tensor): number[] {
  return t.toList();
}

test('the op table covers every fixture case', () => {
  assert.deepEqual(Object.keys(OPS).sort(), Object.keys(fixture.cases).sort());
});

for (const [name, c] of Object.entries(fixture.cases)) {
  test(`${name} matches PyTorch (values and gradients)`, () => {
    const before = liveTensors();
    tidy(() => {
      const inputs = c.inputs.map((e) => {
        const t = build(e);
        if (e.dtype !== 'bool' && e.dtype !== 'int64') t.requiresGrad_(true);
        return t;
      });
      const res = OPS[name]!(...inputs);
      const outs = Array.isArray(res) ? res : [res];
      assert.equal(outs.length, c.outputs.length, 'number of outputs');
      outs.forEach((o, k) => {
        const exp = c.outputs[k]!;
        assert.deepEqual(o.shape, exp.shape, `output ${k} shape`);
        assert.equal(o.dtype === 'int64' || o.dtype === 'int32' ? 'int64' : o.dtype, exp.dtype, `output ${k} dtype`);
        assertClose(values(o), exp.data, `${name} output ${k}`, ...tolerances(c, exp));
      });
      if (c.upstream && c.grads) {
        const floatOuts = outs.filter((o) => o.requiresGrad);
        let total: Tensor | null = null;
        floatOuts.forEach((o, k) => {
          const term = o.float().mul(build(c.upstream![k]!)).sum();
          total = total ? total.add(term) : term;
        });
        total!.backward();
        c.grads.forEach((g, k) => {
          const actual = inputs[k]!.grad;
          if (g === null) return assert.equal(actual, null, `input ${k} should get no gradient`);
          assert.ok(actual, `input ${k} has no gradient`);
          assertClose(values(actual), g.data, `${name} grad of input ${k}`, ...tolerances(c, g));
        });
      }
      dispose(inputs);
    });
    assert.equal(liveTensors(), before, 'tidy freed every tensor of the case');
  });
}
