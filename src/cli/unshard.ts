// `olmo-ts unshard CHECKPOINT [OUT]`: turns a sharded checkpoint of an FSDP run (step{N}/ with one
// rank{r}/ per rank) into a regular one (full fp32 weights and optimizer state), which `convert`,
// `generate`, `eval` and a run of any world size (load_path) read. OLMo's scripts/unshard.py.
import { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('unshard')
    .description('turn a sharded checkpoint (FSDP run) into a regular, unsharded one')
    .argument('<checkpoint>', 'a sharded checkpoint folder (step{N}/), or a run folder (its latest)')
    .argument('[out]', 'the new checkpoint folder (default: CHECKPOINT-unsharded beside it)')
    .addHelpText('after', `
No process group is needed: every rank's pieces are read, verified against the manifest and joined.
Example:
  $ olmo-ts unshard runs/7b/step1000          # writes runs/7b/step1000-unsharded/`)
    .action(async (checkpoint: string, out?: string) => {
      const { resolveCheckpointPath } = await import('../train/checkpoint');
      const { unshardCheckpoint } = await import('../train/sharded-checkpoint');
      const dir = resolveCheckpointPath(checkpoint);
      const written = await unshardCheckpoint(dir, out ?? `${dir}-unsharded`);
      console.log(`olmo-ts: unsharded ${dir} -> ${written}`);
    });
}
