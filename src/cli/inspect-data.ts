// `olmo-ts inspect-data`: print the decoded text of every instance in given training batches, with
// its token file and source documents (OLMo's scripts/inspect_train_data.py).
import { Command, Option } from 'commander';
import { nonNegativeInt, seedInt } from './args';

interface Opts {
  run?: string; data?: string[]; brown?: boolean; tokenizer?: string; seqLen?: number; batchSize?: number; seed?: number;
  epoch?: number; worldSize?: number; rank?: number; dtype?: string; dropLast?: boolean; maxChars?: number; json?: boolean;
}

export function register(program: Command): void {
  program
    .command('inspect-data')
    .description("print the text of every instance in training batches: from a run folder, or from data + seed")
    .argument('<steps...>', 'training steps, 1-based, as metrics.jsonl numbers them (steps past the first epoch are in later epochs)')
    .option('--run <dir>', "a run's save folder (config.yaml; train_data/global_indices.npy or data-indices/ if present)")
    .option('--data <paths...>', 'token files or prepare-data folders (instead of, or overriding, the run\'s data.paths)')
    .option('--brown', 'use the built-in Brown corpus prepared for --tokenizer')
    .option('--tokenizer <name|path>', 'gpt2 / cl100k, or a tokenizer.json path (default: the run\'s tokenizer.identifier)')
    .option('--seq-len <n>', 'model.max_sequence_length', nonNegativeInt)
    .option('--batch-size <n>', 'global_train_batch_size', nonNegativeInt)
    .option('--seed <n>', 'seed', seedInt)
    .option('--epoch <n>', 'the epoch STEPs count from (default: the run\'s first epoch, its config\'s `epoch`, so STEPs are the run\'s own step numbers; without --run, 0)', nonNegativeInt)
    .option('--world-size <n>', 'number of ranks', nonNegativeInt)
    .option('--rank <n>', 'only this rank', nonNegativeInt)
    .addOption(new Option('--dtype <dtype>', 'data.memmap_dtype (default: from the data\'s manifest, else uint16)').choices(['uint8', 'uint16', 'uint32', 'uint64']))
    .option('--drop-last', 'data.drop_last')
    .option('--max-chars <n>', 'cut each text to this many characters', nonNegativeInt)
    .option('--json', 'one JSON object per instance')
    .addHelpText('after', `
Examples:
  $ olmo-ts inspect-data 1 2 --run runs/tiny-cpu --max-chars 200
  $ olmo-ts inspect-data 3 --run runs/tiny-cpu --epoch 1     # step 3 of the run's second epoch`)
    .action(async (stepArgs: string[], opts: Opts) => {
      const data = await import('../data');
      const steps = stepArgs.map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 1) throw new Error(`step: expected a 1-based integer, got ${JSON.stringify(s)}`);
        return n;
      });
      let paths = opts.data;
      if (opts.brown) paths = (await data.prepareBrown({ tokenizer: { identifier: opts.tokenizer ?? 'gpt2' } })).paths;
      if (!opts.run && !paths) throw new Error('give --run <dir>, --data <paths...> or --brown');
      const dataCfg: import('../data').DataConfig = {};
      if (paths) dataCfg.paths = paths;
      if (opts.dtype) dataCfg.memmap_dtype = opts.dtype as import('../data').MemmapDType;
      if (opts.dropLast) dataCfg.drop_last = true;
      const rows = await data.inspectBatches({
        runDir: opts.run, data: dataCfg, tokenizer: opts.tokenizer ?? (opts.run ? undefined : 'gpt2'),
        maxSequenceLength: opts.seqLen, globalBatchSize: opts.batchSize, seed: opts.seed, epoch: opts.epoch,
        worldSize: opts.worldSize, steps, rank: opts.rank,
      });
      for (const r of rows) console.log(opts.json ? JSON.stringify(r) : data.formatInspected(r, opts.maxChars));
    });
}
