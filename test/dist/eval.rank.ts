// Rank-side function for eval.test.ts (run in real processes by runDistributed): the config's
// evaluators over the process group, on the model the config's seed builds.
import { parseTrainConfig } from '../../src/config';
import type { ProcessGroup } from '../../src/dist/process-group';
import { buildEvaluators, collectiveFromProcessGroup, runEvaluators } from '../../src/eval';
import type { EvalMetrics } from '../../src/eval';
import { manualSeed } from '../../src/tensor/random';
import { setNumThreads } from '../../src/tensor/runtime';
import { buildModel } from '../../src/train/build';

/** A character-level tokenizer over `vocab` ids (0 is the pad). */
export function charTokenizer(vocab: number): never {
  return { encodeBatch: async (texts: string[]) => texts.map((t) => Array.from(t, (c) => (c.charCodeAt(0) % (vocab - 1)) + 1)) } as never;
}

/** Evaluates on this rank (pg null: one process) and returns the reduced metrics. */
export async function evaluateOnRank(pg: ProcessGroup | null, args: { raw: Record<string, unknown> }): Promise<EvalMetrics> {
  setNumThreads(1);
  const cfg = parseTrainConfig(args.raw);
  manualSeed(cfg.seed);
  const model = buildModel(cfg);
  const evs = await buildEvaluators(cfg, { tokenizer: charTokenizer(cfg.model.vocab_size), collective: pg ? collectiveFromProcessGroup(pg) : undefined });
  try {
    return (await runEvaluators(model, evs, { precision: cfg.precision })).metrics;
  } finally {
    for (const e of evs) e.close();
    model.dispose();
  }
}
