// Activation checkpointing: OLMo's block selection per strategy, and gradients with every strategy
// bitwise equal to those without (fp32 with dropout on, micro-batches, each block type, tied and
// untied output), amp_bf16, the random stream after backward, misuse, and no leaked tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, autocast, getRngState, liveTensors, manualSeed, ones, randn, tensor, tidy, zeroGrad } from '../../../src/index';
import { OLMo } from '../../../src/model/olmo';
import { ACTIVATION_CHECKPOINTING, ActivationCheckpointingStrategy } from '../../../src/config/train';
import { checkpointedBlockCount, shouldCheckpointBlock } from '../../../src/model/activation-checkpointing';
import { CheckpointTape } from '../../../src/tensor/checkpoint';
import { ModelConfig } from '../../../src/config/model';
import { tinyConfig } from './helpers';

test("should_checkpoint_block follows OLMo's rule for each strategy", () => {
  const picked = (s: ActivationCheckpointingStrategy | null) => Array.from({ length: 8 }, (_, i) => (shouldCheckpointBlock(s, i) ? 1 : 0)).join('');
  assert.equal(picked('whole_layer'), '11111111');
  assert.equal(picked('one_in_two'), '10101010');
  assert.equal(picked('one_in_three'), '10010010');
  assert.equal(picked('one_in_four'), '10001000');
  assert.equal(picked('two_in_three'), '01101101');
  assert.equal(picked('three_in_four'), '01110111');
  assert.equal(picked('fine_grained'), '00000000'); // it checkpoints inside blocks instead
  assert.equal(picked(null), '00000000');
  assert.equal(checkpointedBlockCount('one_in_three', 32), 11);
});

interface RunResult {
  grads: Map<string, Uint8Array>;
  rng: Uint8Array;
  losses: number[];
}

/** Two micro-batches of forward + model.backward, as the trainer runs them; raw gradient bytes. */
function run(cfg: ModelConfig, strategy: ActivationCheckpointingStrategy | null, opts: { amp?: boolean; seed?: number } = {}): RunResult {
  manualSeed(opts.seed ?? 11);
  const m = new OLMo(cfg);
  m.setActivationCheckpointing(strategy);
  const params = m.namedParameters();
  const losses: number[] = [];
  try {
    zeroGrad(params.map((p) => p.tensor));
    for (const rows of [[[3, 7, 1, 9, 4, 4, 2, 8, 5, 6, 1, 2], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12]], [[1, 1, 2, 3, 5, 8, 13, 21, 34, 5, 9, 14]]]) {
      tidy(() => {
        const ids = tensor(rows, { dtype: 'int64' });
        const fwd = () => m.forward(ids).logits;
        const logits = opts.amp ? autocast(fwd) : fwd();
        const loss = m.loss(logits, ids).div(2);
        losses.push(loss.item());
        m.backward(loss);
      });
    }
    const grads = new Map<string, Uint8Array>();
    for (const p of params) {
      tidy(() => {
        const g = p.tensor.grad;
        assert.ok(g, `${p.name} has a gradient`);
        const a = g.toArray();
        grads.set(p.name, new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
      });
    }
    return { grads, rng: getRngState(), losses };
  } finally {
    m.dispose();
  }
}

function assertSame(a: RunResult, b: RunResult, what: string): void {
  assert.deepEqual(a.losses, b.losses, `${what}: losses`);
  for (const [name, g] of a.grads) {
    const h = b.grads.get(name)!;
    assert.ok(Buffer.from(g).equals(Buffer.from(h)), `${what}: gradient of ${name} differs`);
  }
  assert.ok(Buffer.from(a.rng).equals(Buffer.from(b.rng)), `${what}: the random stream after backward differs`);
}

const DROPOUT = { attention_dropout: 0.1, residual_dropout: 0.1, embedding_dropout: 0.1 };

test('every strategy gives bitwise the gradients of no checkpointing (fp32, dropout on, 2 micro-batches)', () => {
  const cfg = tinyConfig({ n_layers: 4, ...DROPOUT });
  const ref = run(cfg, null);
  for (const s of ACTIVATION_CHECKPOINTING) assertSame(run(cfg, s), ref, s);
});

test('each block type, tied and untied output, QK norm, RoPE, GQA, swiglu: whole_layer and fine_grained are bitwise exact', () => {
  const variants: Array<[string, Partial<ModelConfig>]> = [
    ['parallel + alibi + qk norm + gelu', { block_type: 'parallel', alibi: true, attention_layer_norm: true, activation_type: 'gelu' }],
    ['llama + rope + untied + rms + gqa', { block_type: 'llama', rope: true, weight_tying: false, layer_norm_type: 'rms', n_kv_heads: 2, include_bias: false }],
    ['sequential + rope + swiglu + low_precision norm + block groups', { rope: true, activation_type: 'swiglu', layer_norm_type: 'low_precision', block_group_size: 2, clip_qkv: 4 }],
  ];
  for (const [name, over] of variants) {
    const cfg = tinyConfig({ n_layers: 2, ...DROPOUT, ...over });
    const ref = run(cfg, null);
    for (const s of ['whole_layer', 'fine_grained'] as const) assertSame(run(cfg, s), ref, `${name}, ${s}`);
  }
});

test('amp_bf16: checkpointed gradients equal those without (recompute under the first pass autocast state)', () => {
  const cfg = tinyConfig({ n_layers: 2, rope: true, ...DROPOUT });
  const ref = run(cfg, null, { amp: true });
  for (const s of ['whole_layer', 'fine_grained'] as const) assertSame(run(cfg, s, { amp: true }), ref, `amp_bf16 ${s}`);
});

test('CheckpointTape: a recomputed dropout draws the first-pass mask, and the random stream continues as without it', () => {
  manualSeed(5);
  tidy(() => {
    const x = ones([64, 64]).requiresGrad_(true);
    const w = randn([64, 64]);
    const tape = new CheckpointTape();
    const [y] = tape.recompute(([t]) => [F.dropout(t!.mul(2), 0.5)], [x]);
    const kept = y!.detach().ne(0); // the first pass's mask
    const afterForward = getRngState();
    tape.backward(y!.mul(w).sum());
    // d/dx sum(dropout(2x) * w) = 2 * mask * w / (1 - p): zero exactly where the first pass dropped.
    const expected = w.mul(4).maskedFill(kept.logicalNot(), 0);
    assert.equal(x.grad!.sub(expected).abs().max().item(), 0);
    assert.ok(Buffer.from(getRngState()).equals(Buffer.from(afterForward)), 'the recompute does not advance the generator');
    assert.throws(() => tape.backward(), /already back-propagated/);
  });
});

test('misuse: loss.backward() after a checkpointed forward is refused at the next forward; tensors are not leaked', () => {
  manualSeed(2);
  const m = new OLMo(tinyConfig({ n_layers: 2 }));
  m.setActivationCheckpointing('whole_layer');
  try {
    const ids = tensor([[1, 2, 3, 4]], { dtype: 'int64' });
    const base = liveTensors();
    for (let i = 0; i < 3; i++) {
      tidy(() => {
        const logits = m.forward(ids).logits;
        m.backward(m.loss(logits, ids));
      });
    }
    zeroGrad(m.parameters());
    assert.equal(liveTensors(), base, 'no tensor outlives a checkpointed step');
    tidy(() => {
      const logits = m.forward(ids).logits;
      m.loss(logits, ids).backward();
    });
    assert.throws(() => tidy(() => m.forward(ids)), /not back-propagated: call model\.backward\(loss\)/);
    m.discardActivationCheckpoints();
    zeroGrad(m.parameters());
    // Evaluation (eval mode or no grad) never records a tape.
    m.eval();
    tidy(() => m.forward(ids));
    tidy(() => m.forward(ids));
    ids.dispose();
  } finally {
    m.dispose();
  }
});
