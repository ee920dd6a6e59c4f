// Rank-side functions for fsdp.test.ts: a tiny OLMo sharded by Fsdp next to an unsharded reference
// trained on the whole global batch in the same process.
import { readLaunchEnv } from '../../src/dist/env';
import { Fsdp, ShardingStrategy, fsdpStats } from '../../src/dist/fsdp';
import type { ProcessGroup } from '../../src/dist/process-group';
import { OLMo } from '../../src/model/olmo';
import { AdamW } from '../../src/optim/adamw';
import { buildParamGroups } from '../../src/optim/param-groups';
import { noGrad } from '../../src/tensor/autograd';
import { tensor } from '../../src/tensor/creation';
import { manualSeed } from '../../src/tensor/random';
import { tidy } from '../../src/tensor/scope';
import type { Tensor } from '../../src/tensor/tensor';

export const TINY = {
  d_model: 32, n_heads: 2, n_layers: 3, mlp_ratio: 4, weight_tying: true, rope: true, include_bias: false,
  max_sequence_length: 16, vocab_size: 60, embedding_size: 64, eos_token_id: 0, pad_token_id: 0,
  attention_dropout: 0, residual_dropout: 0, embedding_dropout: 0, init_fn: 'normal', init_std: 0.02,
};

function batch(step: number, B: number, T: number): number[][] {
  let s = 1234 + step;
  return Array.from({ length: B }, () => Array.from({ length: T }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 16) % 60;
  }));
}

function lossOf(m: OLMo, rows: number[][]): Tensor {
  const ids = tensor(rows, { dtype: 'int64' });
  const logits = m.forward(ids).logits;
  const T = rows[0]!.length;
  return logits.slice(1, 0, T - 1).reshape(-1, 64).logSoftmax(-1).gather(1, ids.slice(1, 1, T).reshape(-1, 1)).mean().neg();
}

const maxDiff = (a: Tensor, b: Tensor): number => tidy(() => a.sub(b).abs().max().item() as number);

/** 3 AdamW steps on 4-row batches: the sharded model on each rank's rows vs the reference on all rows. */
export async function matchesReference(pg: ProcessGroup, a: { strategy: ShardingStrategy; wrapping: null | string; model?: Record<string, unknown> }): Promise<Record<string, number>> {
  const cfg = { ...TINY, ...(a.model ?? {}) };
  manualSeed(7);
  const ref = new OLMo(cfg);
  manualSeed(7);
  const model = new OLMo(cfg);
  const f = await Fsdp.create(model, pg, readLaunchEnv(), { strategy: a.strategy, wrapping: a.wrapping as never, paramDtype: 'float32', reduceDtype: 'float32' });
  const groupsOpt = { learning_rate: 1e-2, weight_decay: 0.1 };
  const refOpt = new AdamW(buildParamGroups(ref.namedParameters(), groupsOpt), { betas: [0.9, 0.95], eps: 1e-5 });
  const opt = new AdamW(buildParamGroups(f.namedSegments(), groupsOpt), { betas: [0.9, 0.95], eps: 1e-5 });
  const out: Record<string, number> = { loss: 0, grad: 0, param: 0, expAvgSq: 0 };
  const W = pg.size, B = 12; // divisible by every world size tested (ranks need equal token counts)
  for (let step = 0; step < 3; step++) {
    const rows = batch(step, B, 16);
    refOpt.zeroGrad();
    const refLoss = tidy(() => { const l = lossOf(ref, rows); l.backward(); return l.item() as number; });
    opt.zeroGrad();
    f.zeroGrad();
    const mine = rows.filter((_, i) => i % W === pg.rank);
    const local = tidy(() => { const l = lossOf(model, mine); l.backward(); return l.item() as number; });
    await f.finishBackward();
    const lossT = tensor([local], { dtype: 'float64' });
    await pg.allReduce(lossT, 'avg').wait();
    out.loss = Math.max(out.loss, Math.abs((lossT.item() as number) - refLoss));
    const segs = new Map(f.namedSegments().map((p) => [p.name, p.tensor]));
    const grads = await f.gatherFull((n) => segs.get(n)!.grad!);
    for (const p of ref.namedParameters()) out.grad = Math.max(out.grad, maxDiff(grads.get(p.name)!, p.tensor.grad!));
    refOpt.step();
    opt.step();
  }
  const segs = new Map(f.namedSegments().map((p) => [p.name, p.tensor]));
  const params = await f.gatherFull((n) => segs.get(n)!);
  for (const p of ref.namedParameters()) out.param = Math.max(out.param, maxDiff(params.get(p.name)!, p.tensor));
  const refV = refOpt.stateDict().tensors.exp_avg_sq!, v = opt.stateDict().tensors.exp_avg_sq!;
  const vs = await f.gatherFull((n) => v[n]!);
  for (const p of ref.namedParameters()) out.expAvgSq = Math.max(out.expAvgSq, maxDiff(vs.get(p.name)!, refV[p.name]!));
  // the model's parameters, between steps, are parked views: a use names the unit
  try {
    noGrad(() => model.blocks[0]!.namedParameters()[0]!.tensor.add(1));
    out.parkedError = 0;
  } catch (e) {
    out.parkedError = /FSDP unit/.test((e as Error).message) ? 1 : -1;
  }
  out.fullBytesLive = fsdpStats().fullBytesLive;
  f.close();
  return out;
}
