// `olmo-ts plan`: how much memory a training config needs per device (parameters, gradients,
// optimizer state, activations with and without each activation_checkpointing strategy), and
// whether it fits the memory available here. `olmo-ts config show --memory` prints the same.
import { Command, InvalidArgumentError } from 'commander';
import type { TrainConfig } from '../config';
import { positiveInt } from './args';

const HELP = `
The estimate is what the trainer checks before it builds a model (it refuses a run that does not fit,
instead of being killed by the kernel; OLMO_TS_MEMORY_CHECK=warn or off relaxes that).
Overrides use OLMo's dotted syntax, e.g. to see a smaller micro-batch or checkpointing:
  $ olmo-ts plan configs/official/OLMo-7B.yaml --device_train_microbatch_size=1 --activation_checkpointing=whole_layer
  $ olmo-ts plan configs/tiny-cpu.yaml --model.max_sequence_length=2048 --json
Per rank of a sharded run (fsdp: decides the strategy, wrapping and precision):
  $ olmo-ts plan configs/official/OLMo-7B.yaml --world-size 256 --local-world-size 8
On GPUs (flash attention, each device's memory):
  $ olmo-ts plan configs/official/OLMo-7B.yaml --world-size 256 --local-world-size 8 --attention fused --device-memory 80`;

/** The plan of a loaded config as printed lines (or one JSON object). */
export async function memoryPlanReport(cfg: TrainConfig, source: string, json: boolean, ranks?: { worldSize: number; localWorldSize?: number; fsdp?: boolean }, o: { attention?: 'materialized' | 'fused'; deviceGiB?: number } = {}): Promise<string> {
  const mp = await import('../train/memory-plan');
  const mc = await import('../train/memory-check');
  const plan = mp.planTrainMemory(cfg, o.attention ? { attentionKernel: o.attention } : {}, ranks);
  const available = o.deviceGiB !== undefined ? { bytes: o.deviceGiB * 2 ** 30, source: '--device-memory' } : mc.availableMemory();
  const check = mc.checkMemory(plan, available);
  if (json) {
    return JSON.stringify({ config: source, numParams: plan.numParams, input: { ...plan.input, model: undefined }, perDevice: plan.perDevice, setupPeak: plan.setupPeak, sharding: plan.sharding, activationsByStrategy: plan.activationsByStrategy, available, verdict: check.verdict }, null, 2) + '\n';
  }
  const i = plan.input;
  const lines = [
    `Memory plan per device for ${source}: ${(plan.numParams / 1e6).toFixed(1)}M parameters, ${i.precision}, ${i.optimizer === 'adamw' ? 'AdamW' : 'LionW'}, ` +
      `micro-batch ${i.microBatchSize} x ${i.seqLen} tokens (${i.microBatches} per step), attention: ${i.attentionKernel}` +
      (i.parallel.worldSize > 1 || plan.sharding ? `, world size ${i.parallel.worldSize} (${plan.sharding ? `FSDP ${i.parallel.strategy}, wrapping ${i.parallel.wrapping ?? 'null'}, precision ${i.parallel.fsdpPrecision}` : 'NO_SHARD: a full replica per rank'})` : ''),
    '',
    ...mp.memoryPlanLines(plan).map((l) => `  ${l}`),
    '',
    'Activations (peak) by activation_checkpointing, same micro-batch:',
    ...mp.strategyTableLines(plan).map((l) => `  ${l}`),
    `  (fine_grained recomputes ${mp.fineGrainedParts(cfg.model).join(', ')} in each ${cfg.model.block_type} block)`,
    '',
    `${o.deviceGiB !== undefined ? 'Per device' : 'This machine'}: ${mp.formatBytes(available.bytes)} available (${available.source}): ${check.verdict === 'ok' ? 'fits' : check.verdict === 'warn' ? 'close to the limit' : 'does NOT fit; training would refuse to start'}.`,
  ];
  return lines.join('\n') + '\n';
}

/** Adds `plan` to the CLI. */
export function register(program: Command): void {
  program
    .command('plan')
    .description('estimate the memory a training config needs per device, with and without activation checkpointing')
    .argument('<config>', 'YAML config file (OLMo format)')
    .argument('[overrides...]', 'dotted overrides such as --device_train_microbatch_size=2')
    .option('--json', 'print JSON')
    .option('--world-size <n>', 'ranks of the run (several are sharded as fsdp: says; NO_SHARD replicates)', positiveInt, 1)
    .option('--local-world-size <n>', 'ranks per node (HYBRID_SHARD replicates across nodes; default: --world-size)', positiveInt)
    .option('--fsdp', 'shard even a single process as fsdp: says')
    .option('--attention <kernel>', "'fused' (flash / memory-efficient SDPA, as libtorch 2.x on GPUs) or 'materialized' (the T x T scores; libtorch 1.x); default: this build's", (v: string) => {
      if (v !== 'fused' && v !== 'materialized') throw new InvalidArgumentError("expected 'fused' or 'materialized'");
      return v;
    })
    .option('--device-memory <GiB>', "check against a device of this many GiB (e.g. 80 for an H100) instead of this machine's memory", (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of GiB');
      return n;
    })
    .option('--no-validate-paths', 'let ${path.glob} match nothing (the data need not exist to plan)')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', HELP)
    .action(async (file: string, words: string[], opts: { json?: boolean; validatePaths: boolean; worldSize: number; localWorldSize?: number; fsdp?: boolean; attention?: 'materialized' | 'fused'; deviceMemory?: number }) => {
      const { loadTrainConfig } = await import('../config');
      const { collectOverrideArgs } = await import('../config/overrides');
      const cfg = loadTrainConfig(file, collectOverrideArgs(words), { validatePaths: opts.validatePaths, onWarning: (m) => process.stderr.write(`olmo-ts: warning: ${m}\n`) });
      process.stdout.write(await memoryPlanReport(cfg, file, opts.json ?? false, { worldSize: opts.worldSize, localWorldSize: opts.localWorldSize, fsdp: opts.fsdp }, { attention: opts.attention, deviceGiB: opts.deviceMemory }));
    });
}
