// Per-rank memory of sharded training, measured, for world sizes 1, 2 and 4: NO_SHARD (every rank a
// full replica), SHARD_GRAD_OP and FULL_SHARD (by_block), on a model of >= 50M parameters. Three
// views per rank, side by side:
//   - state: the bytes of fp32 parameters + gradients + AdamW state this rank holds (its tensors);
//   - gathered peak: the largest amount of unsharded parameters alive at once (the FSDP engine's
//     count of the storage it allocates and frees);
//   - RSS: the allocator's view — the process's resident set after setup (caches trimmed) and its
//     peak over the training steps, each minus the RSS before the model was built;
// and `olmo-ts plan`'s prediction for the same config, strategy and world size.
//
//   npm run bench:fsdp-memory [-- --steps=3 --seq=128 --d=1024 --layers=12 --tied=false --wrapping=by_block_and_size]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, writeTokensFile } from './dist-data';

const ROOT = path.resolve(__dirname, '..');
const arg = (name: string, def: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def;

interface RankMemory { state: number; gatheredPeak: number; rssSetup: number; rssPeak: number; predicted: number | null; params: number; stepMs: number }

async function run(ws: number, job: object): Promise<RankMemory[]> {
  const port = await freePort();
  const outs = Array.from({ length: ws }, (_, r) => path.join(os.tmpdir(), `olmo-fsdp-mem-${process.pid}-${port}-${r}.json`));
  await Promise.all(outs.map((out, r) => new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'bench/fsdp-memory-rank.ts', JSON.stringify(job), out], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, RANK: String(r), WORLD_SIZE: String(ws), LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: String(ws), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1' },
    });
    p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`rank ${r} exited ${c}`))));
  })));
  return outs.map((o) => {
    const r = JSON.parse(fs.readFileSync(o, 'utf8')) as RankMemory;
    fs.rmSync(o, { force: true });
    return r;
  });
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '3')), seq = Number(arg('seq', '128')), d = Number(arg('d', '1024')), layers = Number(arg('layers', '12'));
  const tied = arg('tied', 'false') === 'true', wrapping = arg('wrapping', 'by_block_and_size');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olmo-bench-fsdp-mem-'));
  const tokens = path.join(dir, 'tokens.npy');
  writeTokensFile(tokens, 64 * seq * 8, 50257);
  console.log(`# bench:fsdp-memory — ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
  console.log(`model d_model ${d}, ${layers} layers, vocab 50304 (${tied ? 'tied' : 'untied'} output), seq ${seq}, 1 sequence per rank, fp32, AdamW, wrapping ${wrapping}; ${steps} steps; MB = 2^20 bytes, per rank`);
  const cases: [string, number, string][] = [['unsharded', 1, 'none'], ['NO_SHARD', 2, 'NO_SHARD'], ['FULL_SHARD', 1, 'FULL_SHARD'],
    ['SHARD_GRAD_OP', 2, 'SHARD_GRAD_OP'], ['SHARD_GRAD_OP', 4, 'SHARD_GRAD_OP'], ['FULL_SHARD', 2, 'FULL_SHARD'], ['FULL_SHARD', 4, 'FULL_SHARD']];
  console.log('strategy        world   state MB   gathered peak MB   RSS setup MB   RSS peak MB   plan MB   step ms');
  const mb = (b: number) => (b / 2 ** 20).toFixed(0);
  let base = 0;
  const only = arg('only', ''); // e.g. --only=FULL_SHARD:4,unsharded:1
  for (const [name, ws, strategy] of cases.filter(([n, w]) => !only || only.split(',').includes(`${n}:${w}`))) {
    const rs = await run(ws, { dir, tokens, steps, seq, d, layers, strategy, ws, tied, wrapping });
    const r0 = rs[0]!;
    if (name === 'unsharded') base = r0.state;
    console.log(`${name.padEnd(14)} ${String(ws).padStart(6)}   ${mb(r0.state).padStart(8)}   ${mb(r0.gatheredPeak).padStart(16)}   ${mb(r0.rssSetup).padStart(12)}   ${mb(r0.rssPeak).padStart(11)}   ${r0.predicted === null ? '-'.padStart(7) : mb(r0.predicted).padStart(7)}   ${r0.stepMs.toFixed(0).padStart(7)}` +
      (base ? `   state ${(100 * r0.state / base).toFixed(1)}% of world 1` : ''));
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
void main();
