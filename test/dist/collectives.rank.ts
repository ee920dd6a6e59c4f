// Rank-side functions for collectives.test.ts (run in real processes by runDistributed).
import type { ProcessGroup } from '../../src/dist/process-group';
import { tensor, zeros, empty } from '../../src/tensor/creation';

const vals = (t: { toArray(): ArrayLike<number | bigint> }): number[] => Array.from(t.toArray(), Number);

/** Every collective on small tensors whose results are exact in fp32 and bf16. */
export async function everyCollective(pg: ProcessGroup): Promise<Record<string, number[]>> {
  const r = pg.rank, W = pg.size;
  const out: Record<string, number[]> = {};
  for (const op of ['sum', 'avg', 'max', 'min'] as const) {
    const t = tensor([r + 1, 10 * (r + 1), -r], { dtype: 'float32' });
    await pg.allReduce(t, op).wait();
    out[`allReduce.${op}`] = vals(t);
  }
  // bf16 goes through fp32 on Gloo; these values are exact in bf16
  const b = tensor([r + 1, 2 * r], { dtype: 'float32' }).to('bfloat16');
  await pg.allReduce(b, 'sum').wait();
  out['allReduce.bf16'] = vals(b.float());
  // several tensors (of one dtype) are one flat reduction
  const a1 = tensor([r, r], { dtype: 'float32' }), a2 = tensor([[1, 2], [3, r]], { dtype: 'float32' });
  await pg.allReduce([a1, a2], 'sum').wait();
  out['allReduce.list'] = [...vals(a1), ...vals(a2)];
  const i = tensor([r + 5], { dtype: "int64" });
  await pg.allReduce(i, 'max').wait();
  out['allReduce.int64'] = vals(i);
  // broadcast from the last rank, a bf16 and an fp32 tensor together, bit for bit
  const root = W - 1;
  const bb = tensor([r + 0.5, -r], { dtype: 'float32' }).to('bfloat16');
  const bf = tensor([Math.PI * (r + 1)], { dtype: 'float32' });
  await pg.broadcast([bb, bf], root).wait();
  out['broadcast'] = [...vals(bb.float()), ...vals(bf)];
  // all-gather into one tensor, fp32 and bf16
  const g = empty([W * 2], { dtype: 'float32' });
  await pg.allGather(g, tensor([r, r + 100], { dtype: 'float32' })).wait();
  out['allGather'] = vals(g);
  const gb = empty([W, 2], { dtype: 'bfloat16' });
  await pg.allGather(gb, tensor([r, -r], { dtype: 'float32' }).to('bfloat16')).wait();
  out['allGather.bf16'] = vals(gb.float());
  // reduce-scatter: rank r gets the sum (or mean) of chunk r
  const src = tensor(Array.from({ length: 2 * W }, (_, k) => k + 10 * r), { dtype: 'float32' });
  const rs = zeros([2]);
  await pg.reduceScatter(rs, src, 'sum').wait();
  out['reduceScatter.sum'] = vals(rs);
  await pg.reduceScatter(rs, src, 'avg').wait();
  out['reduceScatter.avg'] = vals(rs);
  await pg.barrier();
  return out;
}

/** Sub-groups of consecutive pairs ({0,1}, {2,3}): a sum within each pair. */
export async function pairs(pg: ProcessGroup): Promise<number[]> {
  const groups = [];
  for (let s = 0; s < pg.size; s += 2) groups.push(await pg.subgroup([s, s + 1], `pair${s / 2}`));
  const mine = groups.find((g) => g !== null)!;
  const t = tensor([pg.rank + 1], { dtype: 'float32' });
  await mine.allReduce(t, 'sum').wait();
  return [...vals(t), mine.rank, mine.size];
}

/** Rank 1 joins a collective 1.5 s late; rank 0 counts timer ticks while it waits. */
export async function eventLoopStaysFree(pg: ProcessGroup): Promise<number> {
  if (pg.rank === 1) await new Promise((r) => setTimeout(r, 1500));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 50);
  const t = tensor([1], { dtype: 'float32' });
  await pg.allReduce(t, 'sum').wait();
  clearInterval(timer);
  return ticks;
}

/** Rank 1 exits (as a killed process would) before the second collective. */
export async function peerDies(pg: ProcessGroup): Promise<string> {
  const t = tensor([1], { dtype: 'float32' });
  await pg.allReduce(t).wait();
  if (pg.rank === 1) process.exit(9);
  await pg.allReduce(t).wait();
  return 'unreachable';
}

/** Rank 1 stays alive but never issues the collective: rank 0 times out. */
export async function peerHangs(pg: ProcessGroup): Promise<string> {
  const t = tensor([1], { dtype: 'float32' });
  if (pg.rank === 1) {
    await new Promise((r) => setTimeout(r, 8000));
    return 'slept';
  }
  await pg.allReduce(t).wait();
  return 'unreachable';
}
