// `olmo-ts demo`: the built-in example run, and the README's main-job command. Tokenizes the Brown
// corpus with GPT-2's tokenizer (cached after the first run), holds out every 20th document as a
// perplexity set, trains a small OLMo on the rest on the CPU in bf16 with configs/tiny-cpu.yaml
// (evaluating the held-out set as it goes), saves a checkpoint, prints a generated sample and
// writes the HTML report with the validation curve. A few minutes on 2 cores.
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { positiveInt } from './args';

const ROOT = path.resolve(__dirname, '..', '..');
/** Every HELD_OUT_EVERY-th Brown document is the validation set. */
const HELD_OUT_EVERY = 20;
/** Each eval runs the same EVAL_BATCHES batches of EVAL_BATCH_SIZE held-out instances (OLMo's shuffled order). */
const EVAL_BATCHES = 8;
const EVAL_BATCH_SIZE = 16;

interface DemoOptions {
  steps: number;
  batchSize: number;
  output: string;
  prompt: string;
  threads?: number;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('train a small OLMo on the Brown corpus (GPT-2 tokenizer, CPU, bf16) with a held-out perplexity set, save a checkpoint, print a sample and write the HTML report')
    .option('--steps <n>', 'optimizer steps', positiveInt, 300)
    .option('--batch-size <n>', 'instances (of 128 tokens) per step', positiveInt, 8)
    .option('-o, --output <dir>', 'run folder (replaced if it holds an earlier demo)', 'runs/demo')
    .option('--prompt <text>', 'prompt for the generated sample', 'The jury said')
    .option('--threads <n>', 'CPU threads for libtorch (default: all cores)', positiveInt)
    .addHelpText('after', `
The demo uses configs/tiny-cpu.yaml (OLMo's config keys) with the corpus, run folder, steps and
batch size filled in; \`olmo-ts train configs/tiny-cpu.yaml ...\` runs the same thing by hand. Every
20th Brown document is held out from training and evaluated as an \`lm\` evaluator six times during
the run (the same 8 batches of 16 instances each time); the report shows its curve beside the
training loss. The tokenized corpus and the split are cached in $OLMO_TS_CACHE (default
~/.cache/olmo-ts).`)
    .action(async (opts: DemoOptions) => {
      const t0 = Date.now();
      const { prepareBrown } = await import('../data/brown');
      const { loadTokenizer } = await import('../data/tokenizer');
      const { loadTrainConfig } = await import('../config');
      const { Trainer } = await import('../train/trainer');
      const runDir = path.resolve(opts.output);
      if (fs.existsSync(runDir)) {
        if (!fs.existsSync(path.join(runDir, 'config.yaml'))) throw new Error(`${runDir} exists and is not a run folder; pick another --output`);
        // Never under a run that is still going (another demo, a training run): the lock says.
        const { FolderLock, LOCK_FILE } = await import('../util/folder-lock');
        const lock = FolderLock.acquire(runDir, { purpose: 'runs write a run folder' });
        try {
          for (const n of fs.readdirSync(runDir)) if (!n.startsWith(LOCK_FILE)) fs.rmSync(path.join(runDir, n), { recursive: true, force: true });
        } finally {
          lock.release();
        }
      }

      console.log('olmo-ts demo: preparing the Brown corpus with the GPT-2 tokenizer ...');
      const corpus = await prepareBrown({ tokenizer: { identifier: 'gpt2' } });
      const tokens = corpus.summary?.tokens;
      console.log(`  ${corpus.paths.length} token file(s) in ${corpus.dir}${corpus.created ? ` (${tokens} tokens, ${((Date.now() - t0) / 1000).toFixed(1)} s)` : ' (cached)'}`);
      // Every 20th document is held out: training never reads it; the evaluator does.
      const { splitHeldOut } = await import('../data/heldout');
      const manifest = JSON.parse(fs.readFileSync(path.join(corpus.dir, 'manifest.json'), 'utf8')) as { dtype?: string };
      const split = splitHeldOut({ paths: corpus.paths, bytesPerToken: manifest.dtype === 'uint32' ? 4 : 2, every: HELD_OUT_EVERY, outDir: path.join(corpus.dir, 'demo-split') });
      console.log(`  held out ${split.heldOutDocuments} of ${split.heldOutDocuments + split.trainDocuments} documents (${split.heldOutTokens} tokens) as the validation set`);

      const cfg = loadTrainConfig(path.join(ROOT, 'configs', 'tiny-cpu.yaml'), [
        `--data.paths=${JSON.stringify([split.train])}`,
        `--evaluators=${JSON.stringify([{ label: 'brown-heldout', data: { paths: [split.heldOut] } }])}`,
        `--eval_interval=${Math.max(1, Math.round(opts.steps / 6))}`,
        `--eval_subset_num_batches=${EVAL_BATCHES}`,
        `--device_eval_batch_size=${EVAL_BATCH_SIZE}`,
        `--save_folder=${runDir}`,
        `--max_duration=${opts.steps}`,
        `--global_train_batch_size=${opts.batchSize}`,
        `--device_train_microbatch_size=${opts.batchSize}`,
        `--save_interval=${Math.max(opts.steps, 1)}`,
        `--scheduler.t_warmup=${Math.min(20, Math.max(1, Math.floor(opts.steps / 10)))}`,
        '--console_log_interval=10',
      ]);
      console.log(`olmo-ts demo: training ${cfg.model.n_layers}-layer d_model=${cfg.model.d_model} OLMo for ${opts.steps} steps of ${opts.batchSize}x${cfg.model.max_sequence_length} tokens (${cfg.precision}) ...`);
      const trainer = new Trainer(cfg, { numThreads: opts.threads, handleSignals: true, autoResume: false });
      const evals: Array<[number, number]> = [];
      trainer.on('eval', (step: number, m: Record<string, number>) => evals.push([step, m['eval/brown-heldout/CrossEntropyLoss']!]));
      try {
        const r = await trainer.fit();
        const first = r.losses[0]!, last = r.losses[r.losses.length - 1]!;
        const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        console.log(`\nloss: first step ${first.toFixed(3)}, last step ${last.toFixed(3)}; mean of first 10 ${avg(r.losses.slice(0, 10)).toFixed(3)} -> last 10 ${avg(r.losses.slice(-10)).toFixed(3)}`);
        if (evals.length) {
          const [s0, l0] = evals[0]!, [s1, l1] = evals[evals.length - 1]!;
          console.log(`held-out loss (${EVAL_BATCHES * EVAL_BATCH_SIZE} instances never trained on): step ${s0} ${l0.toFixed(3)} -> step ${s1} ${l1.toFixed(3)} (perplexity ${Math.exp(l1).toFixed(1)})`);
        }
        console.log(`checkpoint: ${r.checkpoint}`);

        const tok = await loadTokenizer('gpt2');
        const [promptIds] = await tok.encodeBatch([opts.prompt]);
        trainer.model.eval();
        const [out] = trainer.model.generate(promptIds!, { maxNewTokens: 40, temperature: 0.8, topK: 40, seed: 0 });
        console.log(`sample: ${opts.prompt}${await tok.decode(out!, true)}`);

        const { loadReportData } = await import('../train/logging/report-data');
        const { renderReportHtml } = await import('../train/logging/report-html');
        const report = path.join(runDir, 'report.html');
        fs.writeFileSync(report, renderReportHtml(loadReportData(runDir)));
        console.log(`report: ${report}`);
        console.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      } finally {
        trainer.close();
      }
    });
}
