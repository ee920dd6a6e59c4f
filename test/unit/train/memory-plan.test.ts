// The memory estimate: parameter counts equal the built model's, each strategy's activations order
// as OLMo's strategies imply, the breakdown adds up, and the start-up check refuses, warns or
// passes against the memory available, with a message naming the numbers and what to change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OLMo } from '../../../src/model/olmo';
import { ModelConfig, modelConfig } from '../../../src/config/model';
import { parseTrainConfig } from '../../../src/config';
import { countParams, planMemory, planTrainMemory, unitParamCounts } from '../../../src/train/memory-plan';
import { InsufficientMemoryError, checkMemory, memoryBannerEntries, preflightMemoryCheck } from '../../../src/train/memory-check';

const small = (over: Partial<ModelConfig> = {}) => modelConfig({ d_model: 64, n_heads: 4, n_layers: 4, mlp_ratio: 4, vocab_size: 100, embedding_size: 128, max_sequence_length: 256, ...over });

test('countParams equals the built model for each block type and option', () => {
  const variants: Array<Partial<ModelConfig>> = [
    {}, { weight_tying: false, include_bias: false }, { block_type: 'parallel', attention_layer_norm: true }, { block_type: 'llama', rope: true, n_kv_heads: 2, activation_type: 'swiglu' },
    { layer_norm_with_affine: false, rope: true }, { bias_for_layer_norm: false, alibi: true, multi_query_attention: true }, { mlp_hidden_size: 200, activation_type: 'swiglu' },
  ];
  for (const v of variants) {
    const c = small(v);
    const m = new OLMo(c, { initParams: false });
    try {
      assert.equal(countParams(c).total, m.numParams(), JSON.stringify(v));
      assert.equal(countParams(c).total - countParams(c).embedding, m.numParams(false), `${JSON.stringify(v)} without embeddings`);
    } finally {
      m.dispose();
    }
  }
});

test('the breakdown adds up; strategies order as their recomputation implies', () => {
  const c = small({ n_layers: 8, max_sequence_length: 1024 });
  // The attention kernel is explicit: the default follows the libtorch (materialized on 1.x, fused on 2.x).
  const p = planMemory({ model: c, microBatchSize: 2, precision: 'fp32', optimizer: 'adamw', activationCheckpointing: null, attentionKernel: 'materialized' });
  const d = p.perDevice;
  assert.equal(d.params, p.numParams * 4);
  assert.equal(d.grads, d.params);
  assert.equal(d.optimizerState, 2 * d.params);
  assert.equal(d.total, d.params + d.grads + d.optimizerState + d.activations + d.transient);
  const a = p.activationsByStrategy;
  assert.equal(d.activations, a.none);
  assert.ok(a.whole_layer < a.none / 2, 'whole_layer keeps less than half');
  // One block is recomputed at a time, so the peak counts the kept blocks below the topmost recompute.
  // (two_in_three and one_in_two keep the same 3 of 8 blocks below their top recompute; two_in_three one more block input.)
  assert.ok(a.whole_layer < a.three_in_four && a.three_in_four < a.two_in_three, 'more blocks recomputed, less kept');
  assert.equal(a.two_in_three - a.one_in_two, p.detail.blockInput);
  assert.ok(a.one_in_two < a.one_in_three && a.one_in_three < a.one_in_four && a.one_in_four < a.none);
  assert.ok(a.fine_grained < a.none && a.fine_grained > a.whole_layer);
  // Activations scale with the micro-batch; parameters do not.
  const p4 = planMemory({ model: c, microBatchSize: 4, precision: 'fp32', optimizer: 'lionw', activationCheckpointing: 'whole_layer', attentionKernel: 'materialized' });
  assert.ok(p4.activationsByStrategy.none > 1.9 * a.none);
  assert.equal(p4.perDevice.optimizerState, d.params, 'LionW keeps one state tensor');
  assert.equal(p4.perDevice.activations, p4.activationsByStrategy.whole_layer);
  // amp: low-precision activations and the autocast weight copies.
  const amp = planMemory({ model: c, microBatchSize: 2, precision: 'amp_bf16', optimizer: 'adamw', activationCheckpointing: null, attentionKernel: 'materialized' });
  assert.ok(amp.perDevice.activations < d.activations && amp.perDevice.transient > 0);
  // Flash-style attention keeps no (T x T) scores: much less, and whole_layer still saves most of it.
  const fused = planMemory({ model: c, microBatchSize: 2, precision: 'fp32', optimizer: 'adamw', activationCheckpointing: null, attentionKernel: 'fused' });
  assert.ok(fused.activationsByStrategy.none < a.none / 2 && fused.activationsByStrategy.whole_layer < fused.activationsByStrategy.none / 2);
  // The fused LM head + loss keeps no (tokens x vocab) float32 log-probabilities and forms no float32 logits.
  const big = small({ n_layers: 2, vocab_size: 50257, embedding_size: 50304 });
  const plain = planMemory({ model: big, microBatchSize: 4, precision: 'amp_bf16', optimizer: 'adamw', activationCheckpointing: null, attentionKernel: 'fused' });
  const head = planMemory({ ...plain.input, fusedHead: true });
  const logitsF32 = 4 * 256 * 50304 * 4;
  assert.ok(plain.detail.headSaved >= logitsF32 && head.detail.headSaved < logitsF32 / 4, `head keeps ${head.detail.headSaved} B fused, ${plain.detail.headSaved} B plain`);
  assert.ok(head.detail.headTransient < plain.detail.headTransient / 2);
  assert.equal(planTrainMemory(parseTrainConfig({ model: big, global_train_batch_size: 4, device_train_microbatch_size: 4 })).input.fusedHead, true, 'training plans the fused head by default');
  assert.equal(planTrainMemory(parseTrainConfig({ model: big, global_train_batch_size: 4, device_train_microbatch_size: 4, fused_loss: false })).input.fusedHead, false);
});

test('the start-up check refuses, warns or passes against what is available, naming the numbers', () => {
  const cfg = parseTrainConfig({ model: { d_model: 64, n_heads: 4, n_layers: 4, vocab_size: 100, embedding_size: 128, max_sequence_length: 256 }, global_train_batch_size: 8, device_train_microbatch_size: 4 });
  const plan = planTrainMemory(cfg);
  const total = plan.perDevice.total;
  assert.equal(checkMemory(plan, { bytes: total * 2, source: 'test' }).verdict, 'ok');
  const warn = checkMemory(plan, { bytes: total * 1.05, source: 'test' });
  assert.equal(warn.verdict, 'warn');
  assert.match(warn.message, /needs about .* of .* available \(test\) \(95%\)/);
  const refuse = checkMemory(plan, { bytes: total / 2, source: 'cgroup limit 1.0 GiB' });
  assert.equal(refuse.verdict, 'refuse');
  assert.match(refuse.message, /parameters .* \+ gradients .* \+ optimizer state .* \+ activations .* = /);
  assert.match(refuse.message, /activation_checkpointing: whole_layer .* smaller device_train_microbatch_size \(now 4\)/);
  assert.throws(() => preflightMemoryCheck(cfg, { mode: 'refuse', warn: () => undefined, available: { bytes: total / 2, source: 'x' } }), InsufficientMemoryError);
  const warned: string[] = [];
  preflightMemoryCheck(cfg, { mode: 'warn', warn: (m) => warned.push(m), available: { bytes: total / 2, source: 'x' } });
  assert.equal(warned.length, 1);
  assert.doesNotThrow(() => preflightMemoryCheck(cfg, { mode: 'off', warn: () => assert.fail('no check'), available: { bytes: 1, source: 'x' } }));
  // The banner's lines: the estimate by kind, then what is available.
  const banner = memoryBannerEntries(preflightMemoryCheck(cfg, { warn: () => undefined, available: { bytes: total * 4, source: 'cgroup limit 9 GiB' } }));
  assert.deepEqual(banner.map(([label]) => label), ['memory', 'available']);
  assert.match(banner[0]![1], /^about .* per device = parameters .* \+ gradients .* \+ optimizer state .* \+ activations .* \(micro-batch 4 x 256, activation_checkpointing: null\)$/);
  assert.match(banner[1]![1], /\(cgroup limit 9 GiB\): the run needs 25% of it$/);
});

test('FSDP plans: units add up to the model, state shrinks with the world size, the gathered unit and the setup peak are counted', () => {
  const c = small({ n_layers: 6, weight_tying: false, vocab_size: 1000, embedding_size: 1024 });
  const { total } = countParams(c);
  for (const w of ['by_block', 'by_block_and_size', 'by_block_group', 'one_in_two', null] as const) {
    const units = unitParamCounts(c, w);
    assert.ok(units.reduce((a, b) => a + b, 0) <= total, `${w}: units exceed the model`);
  }
  const base = { model: c, microBatchSize: 2, precision: 'fp32' as const, optimizer: 'adamw' as const, activationCheckpointing: null, attentionKernel: 'materialized' as const };
  const one = planMemory(base);
  const fs4 = planMemory({ ...base, parallel: { worldSize: 4, strategy: 'FULL_SHARD', wrapping: 'by_block_and_size', fsdpPrecision: 'mixed' } });
  const sgo4 = planMemory({ ...base, parallel: { worldSize: 4, strategy: 'SHARD_GRAD_OP', wrapping: 'by_block_and_size', fsdpPrecision: 'mixed' } });
  assert.ok(fs4.sharding, 'FULL_SHARD plans a sharding');
  // Parameters, gradients and state are each about a quarter (shards are padded up to the world size).
  for (const k of ['params', 'grads', 'optimizerState'] as const) {
    const r = fs4.perDevice[k] / one.perDevice[k];
    assert.ok(r >= 0.25 && r < 0.26, `${k}: ${r}`);
  }
  // FULL_SHARD gathers units only while they compute: the transient is at least the biggest unit
  // and far below the whole model; SHARD_GRAD_OP keeps gathered parameters between forward and backward.
  const biggest = Math.max(...unitParamCounts(c, 'by_block_and_size')) * 4;
  assert.ok(fs4.perDevice.transient >= biggest && fs4.perDevice.transient < total * 4, `transient ${fs4.perDevice.transient}`);
  assert.ok(sgo4.perDevice.total > fs4.perDevice.total);
  // Each rank builds the whole fp32 model before sharding it.
  assert.ok(fs4.setupPeak >= total * 4);
  // The check counts every rank of the machine and names the sharding's cost.
  const avail = { bytes: fs4.perDevice.total * 4 * 1.05 + fs4.setupPeak * 4, source: 'test' };
  assert.equal(checkMemory(fs4, avail, 1).verdict, 'ok');
  const tight = checkMemory(fs4, { bytes: Math.max(fs4.perDevice.total, fs4.setupPeak) * 2, source: 'test' }, 4);
  assert.equal(tight.verdict, 'refuse');
  assert.match(tight.message, /times 4 ranks on this machine/);
  // An unsharded multi-rank plan that does not fit suggests FULL_SHARD.
  const dp = planMemory({ ...base, parallel: { worldSize: 4, strategy: 'NO_SHARD' } });
  assert.match(checkMemory(dp, { bytes: dp.perDevice.total / 2, source: 'test' }).message, /FULL_SHARD/);
});
