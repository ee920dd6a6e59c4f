// Rank-side functions for fsdp.test.ts: the real Trainer in a process group, over a grid of
// `fsdp:` settings, each compared (on rank 0) with the same config trained in one process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTrainConfig } from '../../src/config';
import { ProcessGroup } from '../../src/dist/process-group';
import { Trainer } from '../../src/train/trainer';
import { tidy } from '../../src/tensor/scope';
import type { Tensor } from '../../src/tensor/tensor';

export interface Combo {
  name: string;
  overrides: string[];
  /** Compare with a single process sharded the same way (bf16 precision) instead of the plain trainer. */
  refFsdp?: boolean;
}

async function run(pg: ProcessGroup, config: string, saveFolder: string, overrides: string[], fsdp: boolean): Promise<{ losses: number[]; weights: Map<string, Tensor>; trainer: Trainer }> {
  const cfg = loadTrainConfig(config, [`--save_folder=${saveFolder}`, '--max_duration=20', '--save_interval=1000', '--save_data_indices=false', ...overrides]);
  const trainer = new Trainer(cfg, { processGroup: pg, console: false, autoResume: false, numThreads: 1, fsdp, onWarning: () => undefined });
  const r = await trainer.fit();
  let weights: Map<string, Tensor>;
  if (trainer.fsdp) {
    const segs = new Map(trainer.fsdp.namedSegments().map((p) => [p.name, p.tensor]));
    weights = await trainer.fsdp.gatherFull((n) => segs.get(n)!);
  } else {
    weights = new Map(trainer.model.namedParameters().map((p) => [p.name, p.tensor.float()]));
  }
  return { losses: r.losses, weights, trainer };
}

/** Trains every combo at this world size; rank 0 also trains the single-process reference and returns the differences. */
export async function grid(pg: ProcessGroup, a: { config: string; dir: string; combos: Combo[] }): Promise<Record<string, { loss: number; weight: number; maxWeight: number }>> {
  const out: Record<string, { loss: number; weight: number; maxWeight: number }> = {};
  for (const c of a.combos) {
    const mine = await run(pg, a.config, path.join(a.dir, `${c.name}-ws`), c.overrides, false);
    if (pg.rank === 0) {
      const ref = await run(ProcessGroup.single(), a.config, path.join(a.dir, `${c.name}-ref`), c.overrides, c.refFsdp ?? false);
      let weight = 0, maxWeight = 0;
      for (const [n, w] of ref.weights) {
        weight = Math.max(weight, tidy(() => w.sub(mine.weights.get(n)!).abs().max().item() as number));
        maxWeight = Math.max(maxWeight, tidy(() => w.abs().max().item() as number));
      }
      const loss = Math.max(...ref.losses.map((l, i) => Math.abs(l - mine.losses[i]!)));
      if (ref.losses.length !== 20 || mine.losses.length !== 20) throw new Error(`${c.name}: ${mine.losses.length} / ${ref.losses.length} steps`);
      out[c.name] = { loss, weight, maxWeight };
      for (const t of ref.weights.values()) t.dispose();
      ref.trainer.close();
    }
    for (const t of mine.weights.values()) t.dispose();
    mine.trainer.close();
    fs.rmSync(path.join(a.dir, `${c.name}-ws`), { recursive: true, force: true });
  }
  return out;
}
