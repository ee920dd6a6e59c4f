// `olmo-ts convert`: converts a model between an olmo-ts/OLMo checkpoint (config.yaml +
// model.safetensors with OLMo names) and Hugging Face's native OlmoForCausalLM folder.
import { Command } from 'commander';

interface ConvertOptions {
  to: string;
  tokenizer?: string;
  blockGroupSize?: number;
  verify?: boolean;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a model between an OLMo checkpoint and the Hugging Face OlmoForCausalLM layout')
    .argument('<input>', 'an OLMo checkpoint directory (config.yaml + model.safetensors) or an HF OlmoForCausalLM folder')
    .argument('<output>', 'the directory to write')
    .requiredOption('--to <format>', 'output format: "hf" (config.json + model.safetensors with HF names) or "olmo"')
    .option('--tokenizer <file>', 'a tokenizer.json to copy into the output directory')
    .option('--block-group-size <n>', 'block_group_size of the written OLMo config (with --to olmo)', (v) => parseInt(v, 10))
    .option('--verify', 'reload the output and check every tensor matches the input exactly')
    .action(async (input: string, output: string, opts: ConvertOptions) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      const { loadCheckpoint, saveCheckpoint } = await import('../model/checkpoint');
      const { loadHfOlmo, saveHfOlmo } = await import('../model/hf');
      const { tidy } = await import('../tensor/scope');
      if (opts.to !== 'hf' && opts.to !== 'olmo') throw new Error(`--to: got ${JSON.stringify(opts.to)}, expected "hf" or "olmo"`);
      const model = opts.blockGroupSize && fs.existsSync(path.join(input, 'config.json')) && !fs.existsSync(path.join(input, 'config.yaml'))
        ? loadHfOlmo(input, { blockGroupSize: opts.blockGroupSize })
        : loadCheckpoint(input);
      try {
        if (opts.to === 'hf') saveHfOlmo(model, output);
        else saveCheckpoint(model, output);
        if (opts.tokenizer) fs.copyFileSync(opts.tokenizer, path.join(output, 'tokenizer.json'));
        if (opts.verify) {
          const back = opts.to === 'hf' ? loadHfOlmo(output, { blockGroupSize: model.config.block_group_size }) : loadCheckpoint(output);
          try {
            const a = model.stateDict();
            const b = back.stateDict();
            for (const [name, t] of a) {
              const u = b.get(name);
              const same = u !== undefined && tidy(() => t.shape.join() === u.shape.join() && Boolean(t.eq(u).all().item()));
              if (!same) throw new Error(`verify: ${name} differs after conversion`);
            }
          } finally {
            back.dispose();
          }
        }
        console.log(`wrote ${opts.to === 'hf' ? 'an HF OlmoForCausalLM' : 'an OLMo checkpoint'} with ${model.numParams()} parameters to ${output}${opts.verify ? ' (verified)' : ''}`);
      } finally {
        model.dispose();
      }
    });
}
