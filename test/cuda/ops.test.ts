// The op table (test/helpers/op-table.ts) on CUDA: the inputs and upstream gradients of
// test/fixtures/ops/ops.json, run through olmo-ts on the GPU and through this machine's PyTorch on
// the same GPU (ops_ref.py, at test time); outputs and input gradients must match.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Tensor, dispose, liveTensors, tensor, tidy } from '../../src';
import { assertClose } from '../helpers/compare';
import { opTable } from '../helpers/op-table';
import { DEVICE, PY_DEVICE, U_BF16, cudaMissing, runReference, tempDir } from './cuda-env';

interface Enc { dtype: string; shape: number[]; data: number[] }
interface Case { inputs: Enc[]; outputs: Enc[]; upstream?: Enc[]; grads?: (Enc | null)[] }

const missing = cudaMissing();
test(`a CUDA device is present (${DEVICE})`, () => {
  if (missing) assert.fail(missing);
});

function references(): Record<string, Case> {
  const dir = tempDir('cuda-ops');
  try {
    const file = path.join(dir, 'ops.json');
    runReference('ops_ref.py', [file, PY_DEVICE]);
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: Record<string, Case> }).cases;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const cases = missing ? {} : references();
const OPS = opTable(DEVICE);

// Same ops on the same GPU, but olmo-ts may reach them through other entry points (the fused SDPA
// kernel against the written-out softmax, another cuBLAS algorithm): float32 results may differ in
// how they round and reduce. 2^-13 relative leaves 11 of float32's 24 bits for that (the inputs
// are O(1), reductions short); the absolute part scales with the tensor's largest value, for sums
// that cancel. bfloat16 results (autocast) keep 8 bits: 4 units in the last place.
function tolerances(expected: Enc, bf16: boolean): [number, number] {
  const largest = expected.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const rtol = bf16 ? 4 * U_BF16 : 2 ** -13;
  return [rtol, rtol * Math.max(largest, 1e-3)];
}

function build(e: Enc): Tensor {
  if (e.dtype === 'bool' || e.dtype === 'int64') return tensor(e.data, { shape: e.shape, dtype: e.dtype, device: DEVICE });
  return tensor(Float32Array.from(e.data), { shape: e.shape, device: DEVICE });
}

test('the CUDA references cover the op table', { skip: missing ?? false }, () => {
  assert.deepEqual(Object.keys(cases).sort(), Object.keys(OPS).sort());
});

for (const name of Object.keys(OPS)) {
  test(`${name} on ${DEVICE} matches PyTorch on ${DEVICE} (values and gradients)`, { skip: missing ?? false }, () => {
    const c = cases[name];
    assert.ok(c, `no reference for ${name}`);
    const bf16 = c.outputs.some((o) => o.dtype === 'bfloat16');
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
        assert.equal(o.device, DEVICE, `output ${k} stays on ${DEVICE}`);
        assert.deepEqual(o.shape, exp.shape, `output ${k} shape`);
        assert.equal(o.dtype === 'int64' || o.dtype === 'int32' ? 'int64' : o.dtype, exp.dtype, `output ${k} dtype`);
        assertClose(o.toList(), exp.data, `${name} output ${k}`, ...tolerances(exp, bf16));
      });
      if (c.upstream && c.grads) {
        let total: Tensor | null = null;
        outs.filter((o) => o.requiresGrad).forEach((o, k) => {
          const term = o.float().mul(build(c.upstream![k]!)).sum();
          total = total ? total.add(term) : term;
        });
        total!.backward();
        c.grads.forEach((g, k) => {
          const actual = inputs[k]!.grad;
          if (g === null) return assert.equal(actual, null, `input ${k} should get no gradient`);
          assert.ok(actual, `input ${k} has no gradient`);
          assertClose(actual.toList(), g.data, `${name} grad of input ${k}`, ...tolerances(g, bf16));
        });
      }
      dispose(inputs);
    });
    assert.equal(liveTensors(), before, 'tidy freed every tensor of the case');
  });
}
