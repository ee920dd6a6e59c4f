// FSDP in real processes (Gloo, CPU): the engine against an unsharded reference at world size 1-4;
// the real Trainer over every sharding strategy x wrapping strategy (with clipping, z-loss, the
// no-decay groups, micro-batches, AdamW and LionW spread over the grid) against one process on the
// same global batches, for 20 steps; bf16 pure/mixed against a single sharded process; sharded
// checkpoints that resume bitwise, load at another world size and unshard.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { Combo } from './fsdp-train.rank';
import { okResults, runDistributed } from '../helpers/distributed';
import { writeTokens, tinyConfigYaml } from '../helpers/train-process';

const ENGINE = path.join(__dirname, 'fsdp.rank.ts');
const TRAIN = path.join(__dirname, 'fsdp-train.rank.ts');
let dir = '', config = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-fsdp-'));
  writeTokens(path.join(dir, 'tok.npy'), 4 * 32 * 100, 250);
  config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, tinyConfigYaml(path.join(dir, 'run'), path.join(dir, 'tok.npy')));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** LOCAL_WORLD_SIZE = perNode: HYBRID shards within each group of perNode ranks ("a node"). */
const nodes = (perNode: number) => (r: number) => ({ LOCAL_WORLD_SIZE: String(perNode), LOCAL_RANK: String(r % perNode) });

// Measured (AMD EPYC, fp32): losses within 1e-6 and weights within 2e-6 of one process after 20
// steps (weights up to ~1.08): only the order of the gradient sums differs. A few times that here.
const LOSS_TOL = 5e-6, WEIGHT_TOL = 1e-5;

test('the FSDP engine: gradients, AdamW state and weights equal an unsharded model (world size 1-4, every strategy)', async () => {
  const runs: [number, string, string | null, number][] = [
    [1, 'FULL_SHARD', 'by_block', 1], [2, 'FULL_SHARD', 'by_block', 2], [3, 'SHARD_GRAD_OP', null, 3],
    [4, 'HYBRID_SHARD', 'by_block', 2], [4, '_HYBRID_SHARD_ZERO2', 'one_in_two', 2],
  ];
  for (const [ws, strategy, wrapping, perNode] of runs) {
    const results = okResults(await runDistributed<Record<string, number>>(ENGINE, 'matchesReference', { worldSize: ws, env: nodes(perNode) }, { strategy, wrapping }));
    for (const r of results) {
      const what = `ws ${ws} ${strategy} ${wrapping}`;
      assert.ok(r.loss! <= LOSS_TOL && r.grad! <= 2e-6 && r.param! <= 2e-6 && r.expAvgSq! <= 1e-7, `${what}: ${JSON.stringify(r)}`);
      assert.equal(r.parkedError, 1, `${what}: using a sharded-away parameter must name its FSDP unit`);
      assert.equal(r.fullBytesLive, 0, `${what}: every gathered parameter is freed after the step`);
    }
  }
});

const STRATEGIES = ['FULL_SHARD', 'SHARD_GRAD_OP', 'HYBRID_SHARD', '_HYBRID_SHARD_ZERO2'];
const WRAPPINGS = ['null', 'by_block', 'by_block_and_size', 'by_block_group', 'by_block_group_and_size', 'size_based', 'one_in_two'];

/** Every strategy x wrapping, with the other features turned on in rotation. */
function gridCombos(strategies: string[], wrappings: string[]): Combo[] {
  const combos: Combo[] = [];
  let i = 0;
  for (const s of strategies) {
    for (const w of wrappings) {
      const o = [`--fsdp.sharding_strategy=${s}`, `--fsdp.wrapping_strategy=${w}`];
      if (w.startsWith('by_block_group')) o.push('--model.block_group_size=2');
      if (w.endsWith('_and_size')) o.push('--model.weight_tying=false'); // wte and ff_out get units of their own
      if (i % 2 === 1) o.push('--optimizer.name=lionw', '--optimizer.learning_rate=1e-3');
      if (i % 3 === 0) o.push('--softmax_auxiliary_loss=true');
      if (i % 4 === 1) o.push('--device_train_microbatch_size=1');
      if (i % 5 === 2) o.push('--max_grad_norm_ratio=1.5'); // adaptive clipping (else global max_grad_norm 1.0)
      combos.push({ name: `${s}/${w}`, overrides: o });
      i++;
    }
  }
  return combos;
}

function assertGrid(results: Record<string, { loss: number; weight: number; maxWeight: number }>, n: number, lossTol: number, weightTol: number): void {
  assert.equal(Object.keys(results).length, n);
  for (const [name, r] of Object.entries(results)) {
    assert.ok(r.loss <= lossTol, `${name}: losses differ from one process by ${r.loss}`);
    assert.ok(r.weight <= weightTol, `${name}: weights differ from one process by ${r.weight} (largest weight ${r.maxWeight})`);
  }
}

test('Trainer, world size 2: every strategy x wrapping equals one process over 20 steps (fp32)', async () => {
  const combos = gridCombos(STRATEGIES, WRAPPINGS);
  // one rank per "node": HYBRID then shards within a rank and replicates across the two
  const [r0] = okResults(await runDistributed<Record<string, { loss: number; weight: number; maxWeight: number }>>(TRAIN, 'grid', { worldSize: 2, env: nodes(1), timeoutMs: 300_000 }, { config, dir, combos }));
  assertGrid(r0!, combos.length, LOSS_TOL, WEIGHT_TOL);
});

test('Trainer, world size 4 (2 "nodes" of 2): every strategy equals one process (fp32)', async () => {
  const combos = gridCombos(STRATEGIES, ['by_block', 'by_block_group_and_size']);
  const [r0] = okResults(await runDistributed<Record<string, { loss: number; weight: number; maxWeight: number }>>(TRAIN, 'grid', { worldSize: 4, env: nodes(2), timeoutMs: 300_000 }, { config, dir, combos }));
  assertGrid(r0!, combos.length, LOSS_TOL, WEIGHT_TOL);
});

test('Trainer, amp_bf16: pure (bf16 reduction) and mixed (fp32 reduction) at world size 2 track one sharded process', async () => {
  const combos: Combo[] = [];
  for (const p of ['pure', 'mixed']) {
    for (const s of ['FULL_SHARD', 'SHARD_GRAD_OP']) combos.push({ name: `${s}/${p}`, overrides: ['--precision=amp_bf16', `--fsdp.precision=${p}`, `--fsdp.sharding_strategy=${s}`, '--fsdp.wrapping_strategy=by_block'], refFsdp: true });
  }
  const [r0] = okResults(await runDistributed<Record<string, { loss: number; weight: number; maxWeight: number }>>(TRAIN, 'grid', { worldSize: 2, timeoutMs: 300_000 }, { config, dir, combos }));
  // bf16 parameters and gradients round differently when the batch is split over ranks (measured:
  // losses within 1.3e-3 of ~5.5, weights within 0.03 after 20 AdamW steps at lr 1e-2, where
  // near-zero gradients can flip an update). A broken reduction is off by far more (loss > 0.1).
  assertGrid(r0!, combos.length, 1e-2, 0.1);
});
