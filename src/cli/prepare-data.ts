// `olmo-ts prepare-data`: tokenize JSON-lines documents (or the built-in Brown corpus) into OLMo
// memmap token files with dolma-style metadata, across worker threads, with a progress line.
import { Command, Option } from 'commander';
import { nonNegativeInt } from './args';

interface Opts {
  output?: string; tokenizer: string; eosTokenId?: number; padTokenId?: number; dtype?: 'uint16' | 'uint32';
  maxTokens?: number; workers?: number; onError: 'skip' | 'fail'; overwrite?: boolean; brown?: boolean; progress?: boolean; quiet?: boolean;
}

const HELP = `
The output folder gets part-NNNNN.npy token files, part-NNNNN.csv.gz document metadata and
manifest.json (dtype, tokenizer, files), written last: the parts appear only once all of them are
complete, and \`train\` refuses a folder without a manifest. One run per output folder at a time.
SIGINT/SIGTERM/SIGHUP stop the run, leaving the folder as it was before it started (exit 128+signal).

Examples:
  $ olmo-ts prepare-data --brown -o data/brown-gpt2
  $ olmo-ts prepare-data 'docs/*.jsonl.gz' -o data/docs --tokenizer tokenizers/my-tokenizer.json`;

export function register(program: Command): void {
  program
    .command('prepare-data')
    .description('tokenize JSON-lines documents (.jsonl, .json.gz, .zst; files, folders or globs) into OLMo token files')
    .argument('[inputs...]', 'input files, folders or globs (documents with a "text" field and optional "id")')
    .option('-o, --output <dir>', '(required, except with --brown) output folder (part-NNNNN.npy + part-NNNNN.csv.gz + manifest.json)')
    .option('--tokenizer <name|path>', 'gpt2 / cl100k, or a tokenizer.json path', 'gpt2')
    .option('--eos-token-id <id>', 'EOS id appended to each document (default: the tokenizer\'s end-of-text token)', nonNegativeInt)
    .option('--pad-token-id <id>', 'pad id to validate and record (default: the tokenizer\'s padding token, else EOS)', nonNegativeInt)
    .addOption(new Option('--dtype <dtype>', 'token dtype (default uint16, uint32 when the vocabulary needs it)').choices(['uint16', 'uint32']))
    .option('--max-tokens <n>', 'tokens per output file before rolling over', nonNegativeInt, 512 * 1024 * 1024)
    .option('-j, --workers <n>', 'worker threads (0: tokenize on the main thread; default: 0 for tokenizer.json files, whose Rust tokenizer already uses every core, else one per core up to 8)', nonNegativeInt)
    .addOption(new Option('--on-error <mode>', 'what a bad line does').choices(['skip', 'fail']).default('fail'))
    .option('--overwrite', 'replace prepared data already in the output folder')
    .option('--brown', 'prepare the built-in Brown corpus (into the cache folder unless -o is given)')
    .option('--quiet', 'no progress line')
    .addOption(new Option('--no-progress', 'same as --quiet').hideHelp())
    .addHelpText('after', HELP)
    .action(async (inputs: string[], opts: Opts) => {
      const data = await import('../data');
      const path = await import('node:path');
      const { stopOnSignals } = await import('./signals');
      const showProgress = opts.progress !== false && !opts.quiet && process.stderr.isTTY;
      const stop = stopOnSignals('prepare-data');
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
          // Tokenized once into the cache, then copied: a second folder costs a copy.
          const r = await stop.run(() => data.copyBrownTo(opts.output!, { tokenizer, dtype: opts.dtype, workers: opts.workers, overwrite: opts.overwrite, onProgress, signal: stop.signal }));
          if (showProgress && r.source.created) process.stderr.write('\n');
          if (r.source.summary) console.log(data.formatSummary(r.source.summary));
          console.log(`prepared: ${path.resolve(opts.output)} (the Brown corpus, ${r.source.created ? 'tokenized into' : 'copied from'} ${r.source.dir})\n${r.paths.join('\n')}`);
          return;
        }
        const r = await stop.run(() => data.prepareBrown({ tokenizer, dtype: opts.dtype, workers: opts.workers, onProgress, signal: stop.signal }));
        if (showProgress && r.created) process.stderr.write('\n');
        if (r.summary) console.log(data.formatSummary(r.summary));
        console.log(`${r.created ? 'prepared' : 'already prepared'}: ${r.dir}\n${r.paths.join('\n')}`);
        return;
      }
      if (!opts.output) throw new Error('--output <dir> is required');
      if (!inputs.length) throw new Error('no inputs given (files, folders or globs; or --brown)');
      const s = await stop.run(() => data.prepareData({
        inputs, output: opts.output!, tokenizer, dtype: opts.dtype, maxTokensPerFile: opts.maxTokens,
        workers: opts.workers, onError: opts.onError, overwrite: opts.overwrite, onProgress, signal: stop.signal,
      }));
      if (showProgress) process.stderr.write('\n');
      console.log(data.formatSummary(s));
      for (const k of s.skipped.slice(0, 20)) console.error(`skipped ${k.file}:${k.line}: ${k.message}`);
      if (s.skipped.length > 20) console.error(`... and ${s.skipped.length - 20} more skipped line(s)`);
    });
}
