// Multi-process cost on CPU (Gloo over loopback), side by side with PyTorch:
//  1. all-reduce time and bandwidth for a few sizes, olmo-ts vs torch.distributed (2 ranks);
//  2. the real Trainer's step time at world size 1 vs 2 with the same per-rank batch and threads
//     (so ideal data parallelism costs nothing): NO_SHARD with the gradient all-reduce after
//     backward or overlapped with it, and FSDP's strategies (with and without forward prefetch).
// Rounds are interleaved and medians reported.
//
//   npm run bench:dist [-- --config=configs/small-cpu.yaml --batch=4 --steps=6 --warmup=2 --rounds=3]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, writeTokensFile } from './dist-data';

const ROOT = path.resolve(__dirname, '..');
const arg = (name: string, def: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs `argv` as `ws` ranks and returns rank 0's JSON result. */
async function ranks(ws: number, argv: (out: string) => string[], threads: number): Promise<Record<string, number>> {
  const port = await freePort();
  const out = path.join(os.tmpdir(), `olmo-bench-dist-${process.pid}-${port}.json`);
  const procs = Array.from({ length: ws }, (_, r) => new Promise<void>((resolve, reject) => {
    const [cmd, ...rest] = argv(out);
    const p = spawn(cmd!, rest, {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, RANK: String(r), WORLD_SIZE: String(ws), LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: String(ws), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: String(threads) },
    });
    p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`rank ${r} exited ${c}`))));
  }));
  await Promise.all(procs);
  const res = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, number>;
  fs.rmSync(out, { force: true });
  return res;
}

async function main(): Promise<void> {
  const config = arg('config', 'configs/small-cpu.yaml');
  const batch = Number(arg('batch', '4'));
  const steps = Number(arg('steps', '6'));
  const warmup = Number(arg('warmup', '2'));
  const rounds = Number(arg('rounds', '3'));
  const sizes = [4, 32, 128];
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`# bench:dist — ${new Date().toISOString().slice(0, 10)}, ${cpu}, ${os.cpus().length} cores, Node ${process.version}`);

  // 1. all-reduce bandwidth
  const ours: Record<string, number[]> = {}, theirs: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const job = JSON.stringify({ sizesMb: sizes, iters: 5 });
    const a = await ranks(2, (out) => [process.execPath, '--import', 'tsx', 'bench/dist-rank.ts', 'allreduce', job, out], 1);
    const b = await ranks(2, (out) => ['/usr/bin/python3', 'bench/dist_ref.py', job, out], 1);
    for (const s of sizes) {
      (ours[s] ??= []).push(a[String(s)]!);
      (theirs[s] ??= []).push(b[String(s)]!);
    }
  }
  console.log('\nall-reduce, 2 ranks, Gloo on loopback (fp32, median ms; bus bandwidth = 2(n-1)/n x bytes / time)');
  console.log('size MB   olmo-ts ms   PyTorch ms   ratio   olmo-ts GB/s   PyTorch GB/s');
  const gbs = (mb: number, ms: number) => ((mb * 1024 * 1024) / (ms / 1000) / 1e9).toFixed(2);
  for (const s of sizes) {
    const a = median(ours[s]!), b = median(theirs[s]!);
    console.log(`${String(s).padStart(7)}   ${a.toFixed(1).padStart(10)}   ${b.toFixed(1).padStart(10)}   ${(a / b).toFixed(2).padStart(5)}   ${gbs(s, a).padStart(12)}   ${gbs(s, b).padStart(12)}`);
  }

  // 2. training steps, same per-rank batch and one thread per rank; NO_SHARD and FSDP's strategies
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-bench-dist-'));
  const tokens = path.join(dir, 'tokens.npy');
  writeTokensFile(tokens, 64 * 512 * 256, 50257);
  const variants: { name: string; ws: number; overlap?: boolean; fsdp?: string[]; prefetch?: boolean }[] = [
    { name: 'world 1', ws: 1 },
    { name: 'world 2 NO_SHARD (DDP)', ws: 2, fsdp: ['NO_SHARD'] },
    { name: 'world 2 NO_SHARD, overlapped all-reduce', ws: 2, overlap: true, fsdp: ['NO_SHARD'] },
    { name: 'world 2 FULL_SHARD by_block', ws: 2, fsdp: ['FULL_SHARD', 'by_block'] },
    { name: 'world 2 FULL_SHARD by_block, no fwd prefetch', ws: 2, fsdp: ['FULL_SHARD', 'by_block'], prefetch: false },
    { name: 'world 2 FULL_SHARD (one unit)', ws: 2, fsdp: ['FULL_SHARD', 'null'] },
    { name: 'world 2 SHARD_GRAD_OP by_block', ws: 2, fsdp: ['SHARD_GRAD_OP', 'by_block'] },
  ];
  const times: Record<string, number[]> = {};
  let info: Record<string, number> = {};
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const fsdp = v.fsdp ? [`--fsdp.sharding_strategy=${v.fsdp[0]}`, ...(v.fsdp[1] ? [`--fsdp.wrapping_strategy=${v.fsdp[1]}`] : [])] : [];
      const job = JSON.stringify({
        config, warmup, steps, overlap: v.overlap ?? false, prefetch: v.prefetch ?? true, threads: 1,
        overrides: [`--save_folder=${path.join(dir, `run-${r}-${variants.indexOf(v)}`)}`, `--data.paths=[${tokens}]`, `--global_train_batch_size=${batch * v.ws}`,
          `--device_train_microbatch_size=${batch}`, `--max_duration=${warmup + steps}`, '--save_interval=100000', '--save_data_indices=false', '--evaluators=[]', ...fsdp],
      });
      const res = await ranks(v.ws, (out) => [process.execPath, '--import', 'tsx', 'bench/dist-rank.ts', 'train', job, out], 1);
      (times[v.name] ??= []).push(res.stepMs!);
      info = res;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const base = median(times['world 1']!);
  console.log(`\ntraining step (${config}, ${batch} sequences per rank, 1 thread per rank, ${steps} timed steps after ${warmup}, median of ${rounds} rounds)`);
  console.log(`parameters ${info.params!.toLocaleString('en-US')}; gradient all-reduce per step ${(info.gradBytes! / 1e6).toFixed(1)} MB per rank`);
  console.log(`${'variant'.padEnd(46)} step ms   vs world 1`);
  for (const v of variants) {
    const m = median(times[v.name]!);
    console.log(`${v.name.padEnd(46)} ${m.toFixed(0).padStart(7)}   ${((m / base - 1) * 100).toFixed(1).padStart(6)}%`);
  }
}
void main();
