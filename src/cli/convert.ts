// `olmo-ts convert`: converts a model between an olmo-ts/OLMo checkpoint (config.yaml +
// model.safetensors with OLMo names) and Hugging Face's native OlmoForCausalLM folder. The output
// format defaults to the other one; --verify reloads the output and compares it in HF's layout.
import { Command, Option } from 'commander';
import { positiveInt } from './args';

interface ConvertOptions {
  to?: 'hf' | 'olmo';
  tokenizer?: string;
  blockGroupSize?: number;
  verify?: boolean;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a model between an OLMo checkpoint and the Hugging Face OlmoForCausalLM layout')
    .argument('<input>', 'an OLMo checkpoint folder (config.yaml + model.safetensors), a run folder (its `latest` checkpoint), or an HF OlmoForCausalLM folder')
    .argument('<output>', 'the folder to write')
    .addOption(new Option('--to <format>', 'output format (default: the other one: "hf" for an OLMo input, "olmo" for an HF input)').choices(['hf', 'olmo']))
    .option('--tokenizer <name|path>', 'a tokenizer.json to copy into the output folder')
    .option('--block-group-size <n>', 'block_group_size of the written OLMo config (with --to olmo)', positiveInt)
    .option('--verify', 'reload the output and check every tensor matches the input exactly (compared in the HF layout, so llama blocks verify too)')
    .addHelpText('after', `
Examples:
  $ olmo-ts convert runs/demo hf-demo --verify          # OLMo run folder -> HF OlmoForCausalLM
  $ olmo-ts convert hf-demo olmo-demo                   # HF folder -> OLMo checkpoint`)
    .action(async (input: string, output: string, opts: ConvertOptions) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      const { isHfOlmoDir, loadCheckpoint, resolveModelCheckpoint, saveCheckpoint, CONFIG_FILE } = await import('../model/checkpoint');
      const { loadHfOlmo, saveHfOlmo, toHfStateDict, checkHfCompatible } = await import('../model/hf');
      const { tidy } = await import('../tensor/scope');
      const src = resolveModelCheckpoint(input);
      const srcIsHf = fs.statSync(src).isDirectory() && isHfOlmoDir(src) && !fs.existsSync(path.join(src, CONFIG_FILE));
      const to = opts.to ?? (srcIsHf ? 'olmo' : 'hf');
      if (opts.tokenizer && !fs.existsSync(opts.tokenizer)) throw new Error(`--tokenizer: ${opts.tokenizer} not found (give a tokenizer.json file)`);
      const model = opts.blockGroupSize && srcIsHf ? loadHfOlmo(src, { blockGroupSize: opts.blockGroupSize }) : loadCheckpoint(src);
      try {
        if (to === 'hf') checkHfCompatible(model.config); // before anything is written
        if (to === 'hf') saveHfOlmo(model, output);
        else saveCheckpoint(model, output);
        if (opts.tokenizer) fs.copyFileSync(opts.tokenizer, path.join(output, 'tokenizer.json'));
        if (opts.verify) {
          const back = to === 'hf' ? loadHfOlmo(output, { blockGroupSize: model.config.block_group_size }) : loadCheckpoint(output);
          try {
            // Compare in one layout: OLMo names differ by block type (q/k/v_proj vs fused att_proj),
            // HF's do not. An OLMo -> OLMo round trip keeps the block type, so names match there.
            const hfOk = to === 'hf';
            tidy(() => {
              const a = hfOk ? toHfStateDict(model.config, model.stateDict()) : model.stateDict();
              const b = hfOk ? toHfStateDict(back.config, back.stateDict()) : back.stateDict();
              if (a.size !== b.size) throw new Error(`verify: ${a.size} tensors before conversion, ${b.size} after`);
              for (const [name, t] of a) {
                const u = b.get(name);
                const same = u !== undefined && t.shape.join() === u.shape.join() && t.dtype === u.dtype && Boolean(t.eq(u).all().item());
                if (!same) throw new Error(`verify: ${name} differs after conversion`);
              }
            });
          } finally {
            back.dispose();
          }
        }
        console.log(`wrote ${to === 'hf' ? 'an HF OlmoForCausalLM' : 'an OLMo checkpoint'} with ${model.numParams()} parameters to ${output}${opts.verify ? ' (verified)' : ''}`);
      } finally {
        model.dispose();
      }
    });
}
