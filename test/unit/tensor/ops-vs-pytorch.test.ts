// Every op in test/fixtures/ops/ops.json (computed by PyTorch on the same libtorch version, see
// gen_ops.py there and test/helpers/reference.ts) recomputed through olmo-ts: outputs and input
// gradients must match.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Device, Tensor, dispose, liveTensors, tensor, tidy } from '../../../src';
import { assertClose } from '../../helpers/compare';
import { opTable } from '../../helpers/op-table';
import { referenceDir } from '../../helpers/reference';

interface Enc { dtype: string; shape: number[]; data: number[] }
interface Case { inputs: Enc[]; outputs: Enc[]; upstream?: Enc[]; grads?: (Enc | null)[] }
const fixture = JSON.parse(fs.readFileSync(path.join(referenceDir('ops'), 'ops.json'), 'utf8')) as { cases: Record<string, Case> };

// OLMO_TS_TEST_DEVICE=cuda runs the same table on the GPU against the same CPU reference (with
// a looser tolerance: GPU kernels reduce in other orders).
const DEVICE = (process.env.OLMO_TS_TEST_DEVICE ?? 'cpu') as Device;
const [RTOL, ATOL] = DEVICE === 'cpu' ? [1e-5, 1e-6] : [1e-4, 1e-5];
const OPS = opTable(DEVICE);
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
