// `olmo-ts generate`: loads a checkpoint (OLMo or Hugging Face layout) and continues a prompt,
// greedy or sampled, with the key/value cache.
import { Command } from 'commander';

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

const int = (v: string) => parseInt(v, 10);

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text from a checkpoint (greedy by default, or sampled with --temperature/--top-k/--top-p)')
    .requiredOption('--checkpoint <dir>', 'an OLMo checkpoint directory, a .safetensors with config metadata, or an HF OlmoForCausalLM folder')
    .option('--prompt <text>', 'the prompt text (needs a tokenizer)')
    .option('--prompt-ids <ids>', 'the prompt as comma-separated token ids (no tokenizer needed)')
    .option('--tokenizer <file>', 'tokenizer.json path or gpt2/cl100k (default: the checkpoint\'s tokenizer.json)')
    .option('--max-new-tokens <n>', 'tokens to generate', int, 32)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', parseFloat, 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', int, 0)
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', parseFloat, 1)
    .option('--seed <n>', 'seed for reproducible sampling', int)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--ids', 'print the generated token ids as JSON instead of text')
    .action(async (opts: GenerateCliOptions) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      if ((opts.prompt === undefined) === (opts.promptIds === undefined)) throw new Error('give exactly one of --prompt and --prompt-ids');
      const { OLMo } = await import('../model/olmo');
      const model = OLMo.fromCheckpoint(opts.checkpoint, { device: opts.device as 'cpu' });
      try {
        let tok: import('../data/tokenizer').TextTokenizer | null = null;
        const needTok = opts.prompt !== undefined || !opts.ids;
        if (needTok) {
          const dir = fs.statSync(opts.checkpoint).isDirectory() ? opts.checkpoint : path.dirname(opts.checkpoint);
          const ident = opts.tokenizer ?? (fs.existsSync(path.join(dir, 'tokenizer.json')) ? path.join(dir, 'tokenizer.json') : undefined);
          if (!ident) throw new Error('no tokenizer: pass --tokenizer (a tokenizer.json, gpt2 or cl100k), or --prompt-ids with --ids');
          const { loadTokenizer } = await import('../data/tokenizer');
          tok = await loadTokenizer({ identifier: ident, eosTokenId: model.config.eos_token_id, padTokenId: model.config.pad_token_id });
        }
        const prompt = opts.promptIds !== undefined ? opts.promptIds.split(',').map((s) => int(s.trim())) : (await tok!.encodeBatch([opts.prompt!]))[0]!;
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
