// Masked scaled-dot-product attention against its definition, softmax(q k^T / sqrt(hs) + mask) v,
// written with olmo-ts's own matmul/softmax: values and gradients, with a query row that is masked
// everywhere (OLMo's left padding with a float32-min bias). libtorch 2.x's fused kernels got that
// row's gradients T times too large (see native/compat.h); this holds on every libtorch version.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { F, Tensor, full, ones, randn, tensor, tidy } from '../../../src';

const FMIN = -3.4028234663852886e38; // torch.finfo(torch.float32).min
const [B, H, T, D] = [2, 2, 6, 8];

/** OLMo's bias: causal, plus batch row 1's first 3 keys padded; min + min clamped back to min. */
function olmoBias(dtype: 'float32' | 'float64'): Tensor {
  const causal = ones([T, T], { dtype }).triu(1).mul(FMIN).view(1, 1, T, T);
  const mask = tensor([[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]], { dtype }); // (B, T)
  return causal.add(mask.rsub(1).mul(FMIN).view(B, 1, 1, T)).clamp(FMIN, null);
}

function grads(attend: (q: Tensor, k: Tensor, v: Tensor) => Tensor, seedInputs: Tensor[], dO: Tensor) {
  const [q, k, v] = seedInputs.map((t) => t.detach().requiresGrad_(true));
  const out = attend(q!, k!, v!);
  out.mul(dO).sum().backward();
  return { out, dq: q!.grad!, dk: k!.grad!, dv: v!.grad! };
}

for (const dtype of ['float64', 'float32'] as const) {
  test(`sdpa with a fully masked row equals the math definition (${dtype}): values and gradients`, () => {
    tidy(() => {
      const inputs = [randn([B, H, T, D], { dtype }), randn([B, H, T, D], { dtype }), randn([B, H, T, D], { dtype })];
      const dO = randn([B, H, T, D], { dtype });
      const bias = olmoBias(dtype);
      const fused = grads((q, k, v) => F.scaledDotProductAttention(q, k, v, { attnMask: bias }), inputs, dO);
      const math = grads((q, k, v) => q.matmul(k.transpose(-2, -1)).div(Math.sqrt(D)).add(bias).softmax(-1).matmul(v), inputs, dO);
      // Rounding bound: unit roundoff times the longest sum (T or D terms) times the magnitudes;
      // the bug this guards against is off by O(magnitude).
      const u = dtype === 'float64' ? 2 ** -53 : 2 ** -24;
      for (const key of ['out', 'dq', 'dk', 'dv'] as const) {
        const ref = math[key];
        const mag = ref.abs().max().item() as number;
        const d = fused[key].sub(ref).abs().max().item() as number;
        const tol = 16 * Math.max(T, D) * u * Math.max(mag, 1);
        assert.ok(d <= tol, `${key} differs by ${d} (bound ${tol.toExponential(2)}, largest ${mag})`);
      }
      // the fully masked rows (batch 1, queries 0..2) attend uniformly to all keys, as OLMo's do
      const vMean = inputs[2]!.select(0, 1).mean(-2, true); // (H, 1, D)
      const rows = fused.out.select(0, 1).slice(1, 0, 3); // (H, 3, D)
      assert.ok((rows.sub(vMean).abs().max().item() as number) <= 16 * T * u * 4, 'fully masked rows average v');
    });
  });
}

test('a bool mask (true = attend) means the same as a 0 / -inf float bias', () => {
  tidy(() => {
    const [q, k, v] = [randn([B, H, T, D]), randn([B, H, T, D]), randn([B, H, T, D])];
    const allowed = ones([T, T]).tril().gt(0); // every row keeps its diagonal
    const asFloat = full([T, T], 0).maskedFill(allowed.logicalNot(), -Infinity);
    const a = F.scaledDotProductAttention(q, k, v, { attnMask: allowed });
    const b = F.scaledDotProductAttention(q, k, v, { attnMask: asFloat });
    const c = F.scaledDotProductAttention(q, k, v, { isCausal: true });
    assert.ok((a.sub(b).abs().max().item() as number) <= 1e-6);
    assert.ok((a.sub(c).abs().max().item() as number) <= 1e-5);
  });
});
