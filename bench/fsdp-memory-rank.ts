// One rank of bench/fsdp-memory.bench.ts: trains the benchmark model for a few steps with the given
// sharding and writes this rank's memory figures (see the driver) as JSON to the file given last.
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseTrainConfig } from '../src/config';
import { fsdpStats, resetFsdpPeak } from '../src/dist/fsdp';
import { native } from '../src/native';
import { Trainer } from '../src/train/trainer';

/** A value from /proc/self/status in bytes (VmRSS, VmHWM). */
function procStatus(key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function main(): Promise<void> {
  const [arg, out] = process.argv.slice(2) as [string, string];
  const job = JSON.parse(arg) as { dir: string; tokens: string; steps: number; seq: number; d: number; layers: number; strategy: string; ws: number; tied: boolean; wrapping: string };
  const rank = Number(process.env.RANK ?? 0);
  const cfg = parseTrainConfig({
    run_name: 'mem', seed: 1,
    model: {
      d_model: job.d, n_heads: job.d / 64, n_layers: job.layers, mlp_ratio: 4, rope: true, include_bias: false,
      activation_type: 'swiglu', max_sequence_length: job.seq, vocab_size: 50257, embedding_size: 50304, eos_token_id: 50256, pad_token_id: 50256, weight_tying: job.tied,
      attention_dropout: 0, residual_dropout: 0, embedding_dropout: 0, init_fn: 'normal', init_std: 0.02,
    },
    optimizer: { name: 'adamw', learning_rate: 1e-4, weight_decay: 0.1 },
    scheduler: { name: 'constant' },
    precision: 'fp32', max_duration: job.steps, global_train_batch_size: job.ws, device_train_microbatch_size: 1,
    save_folder: `${job.dir}/run-${job.strategy}-${job.ws}`, save_overwrite: true, save_interval: 1_000_000, save_data_indices: false,
    data: { paths: [job.tokens] },
    fsdp: { sharding_strategy: job.strategy === 'none' ? 'FULL_SHARD' : job.strategy, wrapping_strategy: job.wrapping },
  });
  native.mallocTrim();
  const baseline = procStatus('VmRSS');
  const trainer = new Trainer(cfg, { console: false, autoResume: false, numThreads: 1, fsdp: job.strategy === 'FULL_SHARD' && job.ws === 1 });
  let state = 0, rssSetup = 0, params = 0, last = 0, rssPeak = 0;
  const times: number[] = [];
  trainer.on('step', (step: number) => {
    const now = performance.now();
    if (step > 1) times.push(now - last);
    last = now;
    // the training peak, read at the last step (the final checkpoint's host copies come after)
    if (step === job.steps) rssPeak = procStatus('VmHWM') - baseline;
    if (step !== 1) return;
    // after the first step every piece of state exists (AdamW's moments, the gradients)
    const mine = trainer.fsdp ? trainer.fsdp.namedSegments() : trainer.model.namedParameters();
    const opt = Object.values(trainer.optimizer.stateDict().tensors).flatMap((byName) => Object.values(byName));
    state = 4 * (2 * mine.reduce((a, p) => a + p.tensor.numel, 0) + opt.reduce((a, t) => a + t.numel, 0));
    params = trainer.model.numParams();
    // what the allocator holds: the caching allocator's cache and glibc's free heap handed back
    // (the whole model each rank built before sharding was freed, but stays resident otherwise)
    native.cpuCacheTrim();
    native.mallocTrim();
    rssSetup = procStatus('VmRSS') - baseline;
    fs.writeFileSync('/proc/self/clear_refs', '5'); // the peak (VmHWM) from here on
    resetFsdpPeak();
  });
  await trainer.fit();
  let predicted: number | null = null;
  try {
    // `olmo-ts plan`'s estimate of the same run (when the estimator knows FSDP)
    const { planTrainMemory } = await import('../src/train/memory-plan');
    predicted = planTrainMemory(cfg, {}, { worldSize: job.ws, fsdp: job.strategy !== 'none' }).perDevice.total;
  } catch (e) {
    console.error(`plan: ${(e as Error).message}`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const result = { state, gatheredPeak: fsdpStats().fullBytesPeak, rssSetup, rssPeak, predicted, params, stepMs: sorted[Math.floor(sorted.length / 2)] ?? NaN };
  trainer.close();
  fs.writeFileSync(out, JSON.stringify(result));
  void rank;
  process.exit(0);
}
void main();
