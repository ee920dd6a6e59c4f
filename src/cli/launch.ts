// `olmo-ts launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] -- train CONFIG [...]`:
// starts N ranks of an olmo-ts command on this node with torchrun's environment (src/dist/launch.ts).
import { Command } from 'commander';
import { intAtLeast, positiveInt } from './args';

const HELP = `
Every rank runs the command after "--" with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
NODE_RANK, MASTER_ADDR and MASTER_PORT set (torchrun's contract; \`olmo-ts train\` reads them, and
Slurm's SLURM_PROCID/SLURM_NTASKS/... when they are absent). Rank 0 hosts the rendezvous.
Output lines are prefixed with "[rankN] ". Only rank 0 writes the console progress, metrics,
TensorBoard files and checkpoints.

OMP_NUM_THREADS, when not set, becomes (cores / nproc-per-node) for each rank.

Signals: SIGTERM, SIGINT and SIGHUP are forwarded to every rank, which checkpoint and exit 75.
Inside a Slurm job step (srun) they are not: Slurm signals every process of the step itself.
When a rank fails (non-zero status other than 75, or killed), the others get SIGTERM and, after
--grace seconds, SIGKILL; launch then exits with the failing rank's status and names it.
If launch itself is killed, the ranks notice within a second and stop as on SIGTERM.

Exit status: 0 when every rank finished, 75 when they stopped early with a checkpoint (run the
same command again to resume), else the status of the first rank that failed.

Examples:
  $ olmo-ts launch --nproc-per-node 2 -- train configs/tiny-cpu.yaml
  $ olmo-ts launch --nnodes 2 --node-rank 0 --master-addr node0 --nproc-per-node 8 -- train cfg.yaml   # on node0
  $ olmo-ts launch --nnodes 2 --node-rank 1 --master-addr node0 --nproc-per-node 8 -- train cfg.yaml   # on node1`;

export function register(program: Command): void {
  program
    .command('launch')
    .description('run a command (usually train) as N data-parallel ranks on this node, like torchrun')
    .argument('<command...>', 'the olmo-ts command every rank runs, after "--" (e.g. -- train cfg.yaml --max_duration=100)')
    .requiredOption('--nproc-per-node <n>', 'ranks on this node (one per GPU on a GPU node)', positiveInt)
    .option('--nnodes <n>', 'nodes in the run', positiveInt, 1)
    .option('--node-rank <n>', 'index of this node (0 hosts the rendezvous)', intAtLeast(0), 0)
    .option('--master-addr <host>', 'host of node 0 (required with --nnodes > 1; default 127.0.0.1)')
    .option('--master-port <port>', 'rendezvous port (default: a free port on one node, 29500 across nodes)', positiveInt)
    .option('--grace <seconds>', 'time a rank gets to stop after SIGTERM before SIGKILL', positiveInt, 30)
    .option('--timeout <seconds>', 'collective and rendezvous timeout for the ranks (default 1800, as torch)', positiveInt)
    .passThroughOptions()
    .addHelpText('after', HELP)
    .action(async (command: string[], opts: { nprocPerNode: number; nnodes: number; nodeRank: number; masterAddr?: string; masterPort?: number; grace: number; timeout?: number }) => {
      const { launch } = await import('../dist/launch');
      const r = await launch({
        command,
        nprocPerNode: opts.nprocPerNode,
        nnodes: opts.nnodes,
        nodeRank: opts.nodeRank,
        masterAddr: opts.masterAddr,
        masterPort: opts.masterPort,
        graceSeconds: opts.grace,
        timeoutSeconds: opts.timeout,
      });
      process.exitCode = r.exitCode;
    });
}
