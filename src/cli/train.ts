// `olmo-ts train CONFIG [--a.b=c ...]`: the main job. Loads an OLMo YAML config (overrides applied),
// trains, checkpoints, and exits with a code a Slurm script can act on (see --help).
import { Command, InvalidArgumentError } from 'commander';
import { positiveInt } from './args';

/** Exit codes of `olmo-ts train`. */
export const EXIT = { done: 0, error: 1, interrupted: 75, nonFinite: 3 } as const;

const HELP = `
Config overrides use OLMo's dotted keys: --optimizer.learning_rate=1e-3 --max_duration=2000
(values are YAML: --data.paths='[a.npy, b.npy]'). The run folder is save_folder (default
runs/<run_name>): it receives config.yaml, metrics.jsonl, tensorboard/,
train_data/global_indices.npy and step{N}/ checkpoints with a \`latest\` link. One run at a time
per folder (a second one is refused, naming the first).
Restarting with the same save_folder resumes from the checkpoint \`latest\` names; that takes
precedence over load_path, which starts a fresh run. --no-resume starts fresh: a folder holding
an earlier run is refused unless save_overwrite, which moves that run to <save_folder>.previous-<time>.
OLMo keys olmo-ts does not honour are refused (wandb, remote_save_folder, ...) or warned about.

Memory: OLMO_TS_CPU_CACHE_MB caps the idle memory of the caching CPU allocator (default 1/8 of RAM
or the cgroup limit; 0 = off); OLMO_TS_CPU_CACHE_MIN_FREE_MB is the free memory below which it empties
itself. The LM head and loss run fused (no float32 [tokens, vocab] logits); --fused_loss=false turns
that off.

Exit codes:
  0   finished (max_duration or stop_at reached)
  75  stopped early by SIGTERM/SIGINT/SIGHUP or time_limit, after saving a checkpoint: run again
      to resume (a second signal exits at once, without a checkpoint, with 128+signal)
  3   the loss or gradients became non-finite (nothing was applied from that step)
  1   any other error (bad config, data or checkpoint: the message names the key or file; a run
      whose estimated memory does not fit what is available is refused before anything is built:
      OLMO_TS_MEMORY_CHECK=warn starts it anyway, =off skips the check; see \`olmo-ts plan\`)

Examples:
  $ olmo-ts prepare-data --brown -o data/brown-gpt2 && olmo-ts train configs/tiny-cpu.yaml
  $ olmo-ts train configs/tiny-cpu.yaml --data.paths='[my-data/]' --max_duration=1000`;

export function register(program: Command): void {
  program
    .command('train')
    .description('train an OLMo model from a YAML config (OLMo key names), resuming from the run folder if it has checkpoints')
    .argument('<config>', 'training config (YAML)')
    .argument('[overrides...]', 'dotted overrides such as --max_duration=100')
    .option('--threads <n>', 'intra-op CPU threads for libtorch (default: all cores)', positiveInt)
    .option('--on-nonfinite <action>', "what a NaN/inf loss or gradient does: 'error' (stop) or 'skip' the step", 'error')
    .option('--no-resume', 'start a fresh run even if save_folder has checkpoints (an earlier run there is refused unless save_overwrite, which moves it aside)')
    .option('--quiet', 'no banner or console progress (metrics still go to metrics.jsonl and TensorBoard)')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', HELP)
    .action(async (file: string, words: string[], opts: { threads?: number; onNonfinite: string; resume: boolean; quiet?: boolean }) => {
      if (opts.onNonfinite !== 'error' && opts.onNonfinite !== 'skip') throw new InvalidArgumentError(`--on-nonfinite must be 'error' or 'skip', got '${opts.onNonfinite}'`);
      const { loadTrainConfig } = await import('../config');
      const { collectOverrideArgs } = await import('../config/overrides');
      const cfg = loadTrainConfig(file, collectOverrideArgs(words), { onWarning: (m) => process.stderr.write(`olmo-ts: warning: ${m}\n`) });
      const { readLaunchEnv, describeLaunchEnv } = await import('../dist/env');
      const launchEnv = readLaunchEnv();
      // In a job's log, which rank is which and where they meet is the first thing to check.
      if (launchEnv.worldSize > 1) console.log(`olmo-ts: ${describeLaunchEnv(launchEnv, process.env.SLURMD_NODENAME || (await import('node:os')).hostname())}`);
      // Refused keys fail here, before libtorch loads (the Trainer checks again, for API users).
      (await import('../config/unsupported')).checkUnsupportedKeys(cfg);
      const { Trainer, NonFiniteError } = await import('../train/trainer');
      const trainer = new Trainer(cfg, {
        numThreads: opts.threads,
        handleSignals: true,
        console: !opts.quiet,
        onNonFinite: opts.onNonfinite as 'error' | 'skip',
        autoResume: opts.resume,
      });
      // Printed even with --quiet: which checkpoint a restarted job continued from is what an operator
      // (and the fault tests) need to see first.
      trainer.on('resume', (dir: string, step: number) => console.log(`olmo-ts: resumed from ${dir} at step ${step}`));
      // Once the run has ended and its checkpoint is saved, a signal exits at once with the run's
      // status. Under `srun --kill-on-bad-exit` the first rank to exit 75 makes Slurm SIGTERM the
      // others; they must still report 75, or the job script would not requeue. (Registered before
      // fit() so that no moment is left without a handler, when the default action would kill.)
      let outcome: number | null = null;
      const lateSignal = (): void => { if (outcome !== null) process.exit(outcome); };
      process.on('SIGTERM', lateSignal);
      process.on('SIGINT', lateSignal);
      try {
        const r = await trainer.fit();
        const skipped = r.skippedSteps ? `; ${r.skippedSteps} steps skipped (non-finite)` : '';
        if (r.stoppedBy === 'dry_run') console.log(`olmo-ts: dry run: model (${trainer.model.numParams().toLocaleString('en-US')} parameters), optimizer and data built at step ${r.globalStep}; nothing trained`);
        else console.log(`olmo-ts: ${r.stoppedBy} at step ${r.globalStep}; last loss ${r.lastLoss.toFixed(4)}; checkpoint ${r.checkpoint ?? 'none'}${skipped}`);
        if (r.stoppedBy === 'signal' || r.stoppedBy === 'time_limit') process.exitCode = EXIT.interrupted;
        outcome = Number(process.exitCode ?? EXIT.done);
        // In a Slurm job step, the first task to exit 75 makes srun SIGTERM the rest. A rank caught by
        // that SIGTERM while Node is already tearing down (its handlers gone) would die with 143, and
        // the job would not requeue. So rank 0 exits first and the others wait (up to 10 s) for it:
        // srun's SIGTERM then finds them in lateSignal, which exits with the run's status.
        if (outcome === EXIT.interrupted && trainer.pg.rank > 0 && process.env.SLURM_STEP_ID !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, 10_000));
        }
      } catch (e) {
        if (e instanceof NonFiniteError) {
          console.error(`olmo-ts: ${e.message}`);
          process.exitCode = EXIT.nonFinite;
          return;
        }
        throw e;
      } finally {
        if (outcome === null) {
          process.off('SIGTERM', lateSignal);
          process.off('SIGINT', lateSignal);
        }
        trainer.close();
      }
    });
}
