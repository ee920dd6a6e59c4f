// `olmo-ts prepare-data`: tokenize JSON-lines documents (or the built-in Brown corpus) into OLMo
// memmap token files with dolma-style metadata, across worker threads, with a progress line.
import { Command, Option } from 'commander';
import { nonNegativeInt } from './args';

interface Opts {
  output?: string; tokenizer: string; eosTokenId?: number; padTokenId?: number; dtype?: 'uint16' | 'uint32';
  maxTokens?: number; workers?: number; onError: 'skip' | 'fail'; overwrite?: boolean; brown?: boolean; progress?: boolean;
}

export function register(program: Command): void {
  program
    .command('prepare-data')
    .description('tokenize JSON-lines documents (.jsonl, .json.gz, .zst; files, folders or globs) into OLMo token files')
    .argument('[inputs...]', 'input files, folders or globs (documents with a "text" field and optional "id")')
    .option('-o, --output <dir>', 'output folder (part-NNNNN.npy + part-NNNNN.csv.gz + manifest.json)')
    .option('--tokenizer <name|path>', 'tokenizer.json path, or gpt2 / cl100k', 'gpt2')
    .option('--eos-token-id <id>', 'EOS id appended to each document (default: the tokenizer\'s end-of-text token)', nonNegativeInt)
    .option('--pad-token-id <id>', 'pad id to validate and record (default: the tokenizer\'s padding token, else EOS)', nonNegativeInt)
    .addOption(new Option('--dtype <dtype>', 'token dtype (default uint16, uint32 when the vocabulary needs it)').choices(['uint16', 'uint32']))
    .option('--max-tokens <n>', 'tokens per output file before rolling over', nonNegativeInt, 512 * 1024 * 1024)
    .option('-j, --workers <n>', 'worker threads (0: tokenize on the main thread; default: 0 for tokenizer.json files, whose Rust tokenizer already uses every core, else one per core up to 8)', nonNegativeInt)
    .addOption(new Option('--on-error <mode>', 'what a bad line does').choices(['skip', 'fail']).default('fail'))
    .option('--overwrite', 'replace prepared data already in the output folder')
    .option('--brown', 'prepare the built-in Brown corpus (into the cache folder unless -o is given)')
    .option('--no-progress', 'no progress line')
    .action(async (inputs: string[], opts: Opts) => {
      const data = await import('../data');
      const showProgress = opts.progress !== false && process.stderr.isTTY;
      const onProgress = showProgress
        ? (p: import('../data').PrepareProgress): void => {
          const mbps = p.bytes / 1e6 / Math.max(p.seconds, 1e-9);
          process.stderr.write(`\r${p.filesDone}/${p.filesTotal} files  ${p.documents.toLocaleString('en-US')} docs  ${p.tokens.toLocaleString('en-US')} tokens  ${mbps.toFixed(2)} MB/s  ${p.seconds.toFixed(0)} s   `);
        }
        : undefined;
      const tokenizer = { identifier: opts.tokenizer, eosTokenId: opts.eosTokenId, padTokenId: opts.padTokenId };
      if (opts.brown) {
        if (inputs.length) throw new Error('--brown takes no input files');
        if (opts.output) {
          const s = await data.prepareData({ inputs: [data.brownJsonl()], output: opts.output, tokenizer, dtype: opts.dtype, workers: opts.workers, overwrite: opts.overwrite, onProgress });
          if (showProgress) process.stderr.write('\n');
          console.log(data.formatSummary(s));
          return;
        }
        const r = await data.prepareBrown({ tokenizer, dtype: opts.dtype, workers: opts.workers, onProgress });
        if (showProgress && r.created) process.stderr.write('\n');
        if (r.summary) console.log(data.formatSummary(r.summary));
        console.log(`${r.created ? 'prepared' : 'already prepared'}: ${r.dir}\n${r.paths.join('\n')}`);
        return;
      }
      if (!opts.output) throw new Error('--output <dir> is required');
      if (!inputs.length) throw new Error('no inputs given (files, folders or globs; or --brown)');
      const s = await data.prepareData({
        inputs, output: opts.output, tokenizer, dtype: opts.dtype, maxTokensPerFile: opts.maxTokens,
        workers: opts.workers, onError: opts.onError, overwrite: opts.overwrite, onProgress,
      });
      if (showProgress) process.stderr.write('\n');
      console.log(data.formatSummary(s));
      for (const k of s.skipped.slice(0, 20)) console.error(`skipped ${k.file}:${k.line}: ${k.message}`);
      if (s.skipped.length > 20) console.error(`... and ${s.skipped.length - 20} more skipped line(s)`);
    });
}
