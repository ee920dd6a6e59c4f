// `olmo-ts eval CONFIG --checkpoint DIR`: runs the config's evaluators once on a checkpoint (an
// olmo-ts/OLMo checkpoint folder, a run folder's latest, or a Hugging Face OlmoForCausalLM
// folder), prints a table and writes the results as JSON.
import { Command } from 'commander';
import { positiveInt } from './args';

interface EvalCliOptions {
  checkpoint: string;
  evaluators?: string;
  output?: string;
  threads?: number;
}

const HELP = `
The evaluators are the config's \`evaluators:\` list with OLMo's keys (label, type: lm | downstream,
data.paths / data.datasets, device_eval_batch_size, subset_num_batches); overrides work as for
train, e.g. --eval_subset_num_batches=10 --device_eval_batch_size=8. The model comes from the
checkpoint (its own config); the config supplies the evaluators, sequence length, tokenizer,
seed (the eval order) and precision.

--checkpoint accepts:
  a checkpoint folder        runs/x/step1000 (model.safetensors + config.yaml) or \`olmo-ts convert\` output
  a run folder               runs/x: its latest complete step*/ checkpoint
  a Hugging Face folder      config.json (model_type "olmo") + model.safetensors

Results: a table on stdout and JSON (metrics with OLMo's names, per-evaluator counts and timing) in
--output, default SAVE_FOLDER/eval/<checkpoint name>.json; \`-o -\` prints the JSON on stdout (the
table then goes to stderr).

Examples:
  $ olmo-ts eval runs/demo/config.yaml --checkpoint runs/demo      # the demo's held-out set again
  $ olmo-ts eval my.yaml --checkpoint hf/OLMo-1B-hf --evaluators piqa,hellaswag -o piqa.json`;

/** Resolves --checkpoint to a loadable model folder (or file) and its training step when known. */
export function resolveEvalCheckpoint(dir: string): { path: string; step: number | null } {
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  if (!fs.existsSync(dir)) throw new Error(`--checkpoint ${dir}: no such file or folder`);
  const stepOf = (d: string): number | null => {
    try {
      const st = JSON.parse(fs.readFileSync(path.join(d, 'train.json'), 'utf8')) as { global_step?: unknown };
      return typeof st.global_step === 'number' ? st.global_step : null;
    } catch {
      const m = /^step(\d+)/.exec(path.basename(d));
      return m ? Number(m[1]) : null;
    }
  };
  if (fs.statSync(dir).isFile()) return { path: dir, step: null };
  if (fs.existsSync(path.join(dir, 'model.safetensors')) || fs.existsSync(path.join(dir, 'metadata.json'))) return { path: dir, step: stepOf(dir) }; // (metadata.json: a sharded checkpoint)
  const { latestCheckpoint } = require('../train/resume-point') as typeof import('../train/resume-point');
  const latest = latestCheckpoint(dir);
  if (latest) return { path: latest, step: stepOf(latest) };
  throw new Error(`--checkpoint ${dir}: not a checkpoint (no model.safetensors), not a run folder with complete step*/ checkpoints, and not a Hugging Face OlmoForCausalLM folder`);
}

export function register(program: Command): void {
  program
    .command('eval')
    .description("run a config's evaluators (perplexity sets, downstream tasks) once on a checkpoint; prints a table and writes JSON")
    .argument('<config>', 'training config (YAML) whose evaluators to run')
    .argument('[overrides...]', 'dotted overrides such as --eval_subset_num_batches=10')
    .requiredOption('--checkpoint <dir>', 'checkpoint folder, run folder (its latest checkpoint) or Hugging Face OlmoForCausalLM folder')
    .option('--evaluators <labels>', 'comma-separated evaluator labels to run (default: all)')
    .option('-o, --output <file>', "where to write the JSON results ('-' for stdout)")
    .option('--threads <n>', 'intra-op CPU threads for libtorch (default: all cores)', positiveInt)
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', HELP)
    .action(async (file: string, words: string[], opts: EvalCliOptions) => {
      const fs = await import('node:fs');
      const os = await import('node:os');
      const path = await import('node:path');
      const { loadTrainConfig } = await import('../config');
      const { collectOverrideArgs } = await import('../config/overrides');
      const { buildEvaluators, runEvaluators, formatEvalTable } = await import('../eval');
      const { setNumThreads } = await import('../tensor/runtime');
      const { writeAtomic } = await import('../data/npy');
      const cfg = loadTrainConfig(file, collectOverrideArgs(words), { onWarning: (m) => process.stderr.write(`olmo-ts: warning: ${m}\n`) });
      if (!cfg.evaluators.length) throw new Error(`${file} has no evaluators: add an \`evaluators:\` list (see olmo-ts eval --help)`);
      const only = opts.evaluators?.split(',').map((s) => s.trim()).filter(Boolean);
      const ck = resolveEvalCheckpoint(opts.checkpoint);
      setNumThreads(opts.threads ?? Math.max(1, os.cpus().length));
      const model = await (await import('../train/sharded-checkpoint')).loadModelFromAnyCheckpoint(ck.path);
      try {
        const m = model.config;
        if (m.vocab_size !== cfg.model.vocab_size || m.eos_token_id !== cfg.model.eos_token_id || m.pad_token_id !== cfg.model.pad_token_id) {
          process.stderr.write(`olmo-ts: warning: the checkpoint's vocab_size/eos/pad (${m.vocab_size}/${m.eos_token_id}/${m.pad_token_id}) differ from the config's (${cfg.model.vocab_size}/${cfg.model.eos_token_id}/${cfg.model.pad_token_id}); the eval data must match the checkpoint's tokenizer\n`);
        }
        const evaluators = await buildEvaluators(cfg, { only, model: m });
        let report;
        try {
          report = await runEvaluators(model, evaluators, { precision: cfg.precision });
        } finally {
          for (const e of evaluators) e.close();
        }
        const out = {
          checkpoint: path.resolve(ck.path),
          step: ck.step,
          config: path.resolve(file),
          precision: cfg.precision,
          metrics: report.metrics,
          evaluators: report.results,
          seconds: report.seconds,
          time: new Date().toISOString(),
        };
        const json = JSON.stringify(out, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 1) + '\n';
        if (opts.output === '-') {
          process.stderr.write(formatEvalTable(report, ck.step ?? undefined) + '\n');
          process.stdout.write(json);
          return;
        }
        console.log(formatEvalTable(report, ck.step ?? undefined));
        const dest = opts.output ?? path.join(cfg.save_folder, 'eval', `${path.basename(path.resolve(ck.path)).replace(/\.safetensors$/, '')}.json`);
        fs.mkdirSync(path.dirname(path.resolve(dest)), { recursive: true });
        writeAtomic(dest, [Buffer.from(json)]);
        console.log(`wrote ${dest}`);
      } finally {
        model.dispose();
      }
    });
}
