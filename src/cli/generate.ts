// `olmo-ts generate`: loads a checkpoint (OLMo or Hugging Face layout, or a run folder's latest)
// and continues a prompt, greedy or sampled, with the key/value cache.
import { Command } from 'commander';
import { finiteNumber, intInRange, nonNegativeInt, seedInt } from './args';

interface GenerateCliOptions {
  checkpoint: string;
  prompt?: string;
  promptIds?: string;
  tokenizer?: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed?: number;
  device: string;
  ids?: boolean;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text from a checkpoint (greedy by default, or sampled with --temperature/--top-k/--top-p)')
    .requiredOption('--checkpoint <dir>', '(required) a run folder (its `latest` checkpoint), a checkpoint folder (OLMo or Hugging Face OlmoForCausalLM), or a .safetensors with config metadata')
    .option('--prompt <text>', 'the prompt text (needs a tokenizer)')
    .option('--prompt-ids <ids>', 'the prompt as comma-separated token ids (no tokenizer needed)')
    .option('--tokenizer <name|path>', "gpt2 / cl100k or a tokenizer.json path (default: the checkpoint's tokenizer.json, else its config's tokenizer.identifier)")
    .option('--max-new-tokens <n>', "tokens to generate (prompt + new tokens must fit the model's max_sequence_length)", intInRange(0, 1_000_000), 32)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', finiteNumber(0, Infinity), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', nonNegativeInt, 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (1 = off)', finiteNumber(0, 1, { exclusiveMin: true }), 1)
    .option('--seed <n>', 'seed for reproducible sampling', seedInt)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--ids', 'print the generated token ids as JSON instead of text')
    .addHelpText('after', `
Examples:
  $ olmo-ts generate --checkpoint runs/demo --prompt "The jury said"
  $ olmo-ts generate --checkpoint runs/demo/step300 --prompt-ids 464,25349 --ids --temperature 0.8 --seed 1`)
    .action(async (opts: GenerateCliOptions) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      if ((opts.prompt === undefined) === (opts.promptIds === undefined)) throw new Error('give exactly one of --prompt and --prompt-ids');
      const { checkpointTokenizer, resolveModelCheckpoint } = await import('../model/checkpoint');
      const { shardedCheckpointAt, loadModelFromAnyCheckpoint } = await import('../train/sharded-checkpoint');
      const where = shardedCheckpointAt(opts.checkpoint) ?? resolveModelCheckpoint(opts.checkpoint);
      const model = await loadModelFromAnyCheckpoint(where, { device: opts.device as 'cpu' });
      try {
        let tok: import('../data/tokenizer').TextTokenizer | null = null;
        const needTok = opts.prompt !== undefined || !opts.ids;
        if (needTok) {
          const dir = fs.statSync(where).isDirectory() ? where : path.dirname(where);
          const ident = opts.tokenizer ?? (fs.existsSync(path.join(dir, 'tokenizer.json')) ? path.join(dir, 'tokenizer.json') : checkpointTokenizer(where));
          if (!ident) throw new Error(`no tokenizer: ${where} has no tokenizer.json and no config.yaml naming one; pass --tokenizer (gpt2, cl100k or a tokenizer.json), or --prompt-ids with --ids`);
          const { loadTokenizer } = await import('../data/tokenizer');
          tok = await loadTokenizer({ identifier: ident, eosTokenId: model.config.eos_token_id, padTokenId: model.config.pad_token_id });
        }
        const prompt = opts.promptIds !== undefined ? parseIds(opts.promptIds) : (await tok!.encodeBatch([opts.prompt!]))[0]!;
        const [out] = model.generate(prompt, {
          maxNewTokens: opts.maxNewTokens,
          temperature: opts.temperature,
          topK: opts.topK,
          topP: opts.topP,
          seed: opts.seed,
        });
        if (opts.ids) console.log(JSON.stringify(out));
        else process.stdout.write((opts.prompt ?? (await tok!.decode(prompt))) + (await tok!.decode(out!, true)) + '\n');
      } finally {
        model.dispose();
      }
    });
}

function parseIds(text: string): number[] {
  return text.split(',').map((s) => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new Error(`--prompt-ids: expected comma-separated token ids (integers >= 0), got ${JSON.stringify(s.trim())}`);
    return n;
  });
}
