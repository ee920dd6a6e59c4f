// The training loop (OLMo's olmo/train.py Trainer): micro-batched forward/backward under autocast,
// OLMo's loss normalisation and z-loss, clipping, schedule, optimizer step, metrics, checkpoints,
// exact resume, and the ways a run stops (max_duration, stop_at, time_limit, signals, NaN).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../config/errors';
import { embeddingSize } from '../config/model';
import { checkUnsupportedKeys } from '../config/unsupported';
import { parseDuration, maxEpochs, maxSteps, Progress } from '../config/duration';
import { trainConfigToYaml } from '../config/schema';
import type { TrainConfig } from '../config/train';
import { deriveBatchSizes } from '../config/train';
import { BatchSizeSchedule } from '../data/batch-schedule';
import { totalSize } from '../data/global-indices';
import type { LoaderBatch } from '../data/loader';
import { DataLoader } from '../data/loader';
import type { MemMapDataset } from '../data/memmap-dataset';
import { checkBatchTokenIds, checkDataAgainstModel } from '../data/token-ids';
import type { FolderLock } from '../util/folder-lock';
import type { OLMo } from '../model/olmo';
import type { Optimizer } from '../optim/optimizer';
import { Scheduler, boltOnWarmup, buildScheduler, scheduleAt, schedulerPosition } from '../optim/scheduler';
import { noGrad } from '../tensor/autograd';
import { scalar, tensor } from '../tensor/creation';
import { getRngState, manualSeed, setRngState } from '../tensor/random';
import { cuda, setNumThreads } from '../tensor/runtime';
import type { Device } from '../tensor/dtype';
import { deviceIndex, knownPeakFlops, trainingDevice } from './device';
import { keep, tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { collectiveFromProcessGroup } from '../eval/collective';
import { InLoopEvaluation } from '../eval/in-loop';
import { CheckpointError, Checkpointer, TrainerState, disposeCheckpoint, loadCheckpoint } from './checkpoint';
import { microBatchLoss, usesFusedLoss } from './loss';
import { cpuCacheMetrics, headAndCacheBannerLines } from './head-and-cache';
import { MemoryCheckMode, MemoryPreflight, memoryBannerEntries, memoryCheckModeFromEnv, preflightMemoryCheck } from './memory-check';
import { shardedCheckpointingProblem } from '../model/activation-checkpointing';
import { logsSystemMetrics, memoryMetrics } from './memory-stats';
import { buildDataset, buildModel, buildOptimizer, dataFingerprint, epochIndices } from './build';
import { METRIC, RunSinks, SpeedMonitor, createMetricsSinks, trainStepMetrics } from './logging';
import { StartupBanner } from './logging/banner';
import { StartPlan, checkLaterCheckpoints, lockRunFolder, makeRunFolder, moveEarlierRunAside, planStart, removeIfCreatedAndEmpty, writeRunConfig } from './run-folder';
import { DataParallel } from '../dist/data-parallel';
import { ProcessGroup } from '../dist/process-group';
import { DataIndicesLog } from './data-indices';
import { readLaunchEnv } from '../dist/env';
import { Fsdp } from '../dist/fsdp';
import type { NamedParameter } from '../nn/module';
import { CheckpointFolder } from './checkpoint-files';
import { ShardedMetadata, saveSharded } from './sharded-checkpoint';
import { readShardedCheckpoint, shardingFor } from './sharding';

/** Why fit() returned. */
export type StopReason = 'max_duration' | 'stop_at' | 'time_limit' | 'signal' | 'aborted' | 'data_exhausted' | 'dry_run';

/** Raised when the loss or gradients stop being finite. */
export class NonFiniteError extends Error {
  readonly code = 'ERR_NON_FINITE';
  constructor(readonly step: number, readonly quantity: string, value: number) {
    super(`step ${step}: ${quantity} is ${value} (not finite); stopping before the optimizer step so the weights stay intact`);
    this.name = 'NonFiniteError';
  }
}

/** Options of a Trainer beyond its TrainConfig. */
export interface TrainerOptions {
  /** The device to train on (default: model.init_device's choice, src/train/device.ts). */
  device?: Device;
  /** Save a checkpoint at the end of fit() (default true, as OLMo); benchmarks turn it off. */
  finalCheckpoint?: boolean;
  /** Intra-op threads for libtorch (default: every core). */
  numThreads?: number;
  /** Install SIGTERM/SIGINT/SIGHUP handlers that checkpoint and stop (default false; the CLI sets it). */
  handleSignals?: boolean;
  /** Print progress to the console (default true). */
  console?: boolean;
  /** On a non-finite loss/gradient: throw NonFiniteError (default) or skip the step. */
  onNonFinite?: 'error' | 'skip';
  /** Stops the run (with a checkpoint) when aborted. */
  signal?: AbortSignal;
  /**
   * Resume from the run folder's own checkpoint (what `latest` names) when there is one (default
   * true). false (--no-resume): start fresh; a folder holding an earlier run is refused unless
   * save_overwrite, which moves that run aside to `<save_folder>.previous-<time>`.
   */
  autoResume?: boolean;
  /**
   * The process group of a data-parallel run. Default: joined from the launch environment
   * (RANK/WORLD_SIZE/MASTER_ADDR/... as torchrun or `olmo-ts launch` set them, or Slurm's), which is a
   * group of one process when none is set. The trainer closes a group it joined itself.
   */
  processGroup?: ProcessGroup;
  /** Overlap the gradient all-reduce with backward (default false: measured slower on Gloo/CPU, see bench/RESULTS.md). */
  overlapGradReduce?: boolean;
  /**
   * Shard the model as `fsdp:` says even in a single process (FSDP at world size 1; memory
   * benchmarks, CUDA checks). Several processes are sharded anyway, unless NO_SHARD.
   */
  fsdp?: boolean;
  /** FSDP: gather the next unit during the current one's forward (default true; benchmarks turn it off). */
  fsdpForwardPrefetch?: boolean;
  /**
   * Before building: estimate the run's memory and refuse when it does not fit what is available
   * (default 'refuse', or OLMO_TS_MEMORY_CHECK), only warn, or skip the check ('off').
   */
  memoryCheck?: MemoryCheckMode;
}

/** What fit() returns. */
export interface FitResult {
  stoppedBy: StopReason;
  /** Steps taken by this call (not counting steps restored from a checkpoint). */
  stepsRun: number;
  globalStep: number;
  /** Cross-entropy of the last step. */
  lastLoss: number;
  /** Cross-entropy of every step this call ran, in order. */
  losses: number[];
  /** Folder of the last checkpoint written, if any. */
  checkpoint: string | null;
  /** Steps skipped for a non-finite loss/gradient over the whole run (onNonFinite: 'skip'), resumes included. */
  skippedSteps: number;
  runDir: string;
}

/** Per-step metrics, with OLMo's names (emitted as 'step' events and written to the sinks). */
export type StepMetrics = Record<string, number>;

/**
 * Trains an OLMo model as a TrainConfig describes. Events: 'banner' (StartupBanner, before it is
 * printed: add lines with banner.set), 'step' (step, metrics), 'eval' (step, metrics), 'checkpoint'
 * (dir), 'resume' (dir, step), 'notice' (message). `await new Trainer(cfg).fit()`.
 */
export class Trainer extends EventEmitter {
  readonly cfg: TrainConfig;
  readonly runDir: string;
  model!: OLMo;
  optimizer!: Optimizer;
  private dataset!: MemMapDataset;
  private scheduler!: Scheduler;
  /** The global batch size of each step (global_train_batch_size, or batch_size_warmup's growth). */
  private batchSchedule!: BatchSizeSchedule;
  private checkpointer!: Checkpointer;
  private sinks: RunSinks | null = null;
  /** The config's evaluators (null without any): run every eval_interval steps. */
  private evaluation: InLoopEvaluation | null = null;
  private readonly o: TrainerOptions;
  private state: TrainerState = { global_step: 0, global_train_examples_seen_this_epoch: 0, global_train_tokens_seen: 0, epoch: 0, rng: {} };
  private stopSignal: NodeJS.Signals | null = null;
  /** Whether this process itself got a signal (a stop agreed because of another rank's leaves it false). */
  private ownSignal = false;
  /** Set once the run's last checkpoint is on disk on every rank: a signal then has nothing left to stop. */
  private endSaved = false;
  private lastCheckpoint: string | null = null;
  /** Step of the newest checkpoint requested (or restored), so one step is never saved twice. */
  private savedStep = -1;
  /** The background checkpoint write in flight, and the first error of one (rethrown at the next step). */
  private saveInFlight: Promise<unknown> | null = null;
  private saveError: unknown = null;
  private fingerprint = '';
  /** global_step when this fit() started (after a resume). */
  private firstStepOfRun = 0;
  /** The run folder's lock (global rank 0 only), held from setup to the end of fit(). */
  private lock: FolderLock | null = null;
  /** Warnings about config keys olmo-ts does not honour (src/config/unsupported.ts), printed at start. */
  private readonly configWarnings: string[];
  /** The start-up banner (printed before the first step; add lines on the 'banner' event). */
  readonly banner = new StartupBanner();
  /** The data-parallel group (a group of one process for a single-process run). */
  pg!: ProcessGroup;
  private ownsPg = false;
  private dp!: DataParallel;
  /** The sharded model (FSDP), or null when every rank holds all of it. */
  fsdp: Fsdp | null = null;
  private shardedFolder: CheckpointFolder | null = null;
  private unshardedCheckpointer: Checkpointer | null = null;
  /** Names the temporary folder of a sharded save (rank 0's pid, known to every rank). */
  private saveTag = 0;
  private lastUnshardedStep = -1;
  private indicesLog: DataIndicesLog | null = null;
  /** The start-up memory estimate and its check against the memory available (in the banner). */
  memory: MemoryPreflight | null = null;
  /** Where this rank trains: 'cpu' or cuda:LOCAL_RANK (src/train/device.ts). */
  readonly device: Device;

  constructor(cfg: TrainConfig, opts: TrainerOptions = {}) {
    super();
    this.cfg = cfg;
    this.o = opts;
    this.runDir = path.resolve(cfg.save_folder);
    this.configWarnings = checkUnsupportedKeys(cfg);
    // One rank per GPU (cuda:LOCAL_RANK) where there are GPUs, as OLMo; checked before anything is written.
    this.device = opts.device ?? trainingDevice(cfg, readLaunchEnv().localRank);
    if (cfg.precision === 'amp_fp16') {
      throw new ConfigError('precision', this.device === 'cpu'
        ? 'amp_fp16 needs CUDA (fp16 autocast); use amp_bf16 or fp32 on CPU'
        : 'amp_fp16 needs a gradient scaler, which olmo-ts does not have yet; use amp_bf16 (what OLMo trains in)');
    }
  }

  /** Whether this process writes the run's shared outputs (rank 0). */
  get isMain(): boolean {
    return !this.pg || this.pg.rank === 0;
  }

  /** Instances in the global batch of the next step (all ranks). */
  private get globalBatchSize(): number {
    return this.batchSchedule.sizeAt(this.state.global_train_tokens_seen);
  }
  private progress(): Progress {
    const sched = this.batchSchedule;
    return {
      globalStep: this.state.global_step,
      tokensSeen: this.state.global_train_tokens_seen,
      tokensPerBatch: this.globalBatchSize * this.cfg.model.max_sequence_length,
      batchesPerEpoch: Math.floor(this.dataset.length / this.cfg.global_train_batch_size),
      // An epoch's order holds the dataset padded (or cut, drop_last) to a multiple of the world size.
      ...(sched.isConstant ? {} : { batchSizes: sched, stepsForEpochs: (n: number) => sched.stepsForEpochs(totalSize(this.dataset.length, this.pg.size, this.cfg.data.drop_last), n) }),
    };
  }

  /**
   * Locks and checks the run folder, builds data, model and optimizer, restores a checkpoint when
   * the folder has one (or load_path), and only then writes: config.yaml, the metrics sinks.
   */
  private async setup(): Promise<void> {
    const cfg = this.cfg;
    this.ownsPg = !this.o.processGroup;
    // Each rank claims its GPU before anything touches CUDA; NCCL between GPUs, Gloo between CPUs.
    if (this.device !== 'cpu') cuda.setDevice(deviceIndex(this.device));
    this.pg = this.o.processGroup ?? (await ProcessGroup.init({ backend: this.device === 'cpu' ? 'gloo' : 'nccl' }));
    deriveBatchSizes(cfg, this.pg.size); // the global batch must split evenly over the ranks
    setNumThreads(this.o.numThreads ?? defaultThreads());
    if (this.isMain) for (const w of this.configWarnings) this.notice(`warning: ${w}`);
    let created = false;
    try {
      // One process writes a run folder, rank 0, and holds its lock; the other ranks only read it.
      if (this.isMain) {
        created = makeRunFolder(this.runDir).created;
        this.lock = lockRunFolder(this.runDir);
      }
      await this.pg.barrier(); // the other ranks read the folder rank 0 has just made
      const plan = planStart(this.runDir, { autoResume: this.o.autoResume ?? true, loadPath: cfg.load_path, saveOverwrite: cfg.save_overwrite });
      if (this.isMain) for (const n of plan.notes) this.notice(n);
      // Data first: a bad path fails in milliseconds, before a large model is built.
      this.dataset = buildDataset(cfg);
      // Every global batch size must split evenly over the ranks (each takes batch[rank::world_size]).
      this.batchSchedule = BatchSizeSchedule.fromConfig(cfg, { divisor: this.pg.size });
      if (this.dataset.length < this.batchSchedule.maxSize) {
        throw new ConfigError('global_train_batch_size', `the dataset has ${this.dataset.length} instances of ${cfg.model.max_sequence_length} tokens, fewer than one batch of ${this.batchSchedule.maxSize}`);
      }
      const dataWarnings = checkDataAgainstModel(this.dataset, { embeddingSize: embeddingSize(cfg.model), vocabSize: cfg.model.vocab_size, eosTokenId: cfg.model.eos_token_id, tokenizer: cfg.tokenizer.identifier });
      if (this.isMain) for (const w of dataWarnings) this.notice(`warning: ${w}`);
      // A model too large for memory would be killed by the kernel with no message: check first.
      // (ranks of one CPU machine share its memory: the check counts them all)
      const env = readLaunchEnv();
      this.memory = preflightMemoryCheck(cfg, {
        mode: this.o.memoryCheck ?? memoryCheckModeFromEnv(),
        warn: (m) => { if (this.isMain) this.notice(`warning: ${m}`); },
        ranks: { worldSize: this.pg.size, localWorldSize: this.pg.size > 1 ? env.localWorldSize : 1, fsdp: this.o.fsdp },
        sharing: this.pg.size > 1 && this.device === 'cpu' ? env.localWorldSize : 1,
        device: this.device,
      });
      manualSeed(cfg.seed);
      this.model = buildModel(cfg, this.device);
      // Every rank starts from rank 0's weights (as DDP does; the same seed makes them equal anyway).
      if (this.pg.size > 1) await this.pg.broadcast(this.model.parameters(), 0).wait();
      const sharding = shardingFor(cfg, this.pg.size, this.o.fsdp, this.isMain ? (m) => this.notice(`warning: ${m}`) : undefined);
      if (sharding) {
        const problem = shardedCheckpointingProblem(cfg.activation_checkpointing, cfg.model.n_layers, blockIsUnit(cfg.fsdp.wrapping_strategy));
        if (problem) throw new ConfigError('activation_checkpointing', `got ${JSON.stringify(cfg.activation_checkpointing)} with fsdp.sharding_strategy ${cfg.fsdp.sharding_strategy} and wrapping_strategy ${JSON.stringify(cfg.fsdp.wrapping_strategy)}: ${problem}`);
        this.fsdp = await Fsdp.create(this.model, this.pg, readLaunchEnv(), { ...sharding, forwardPrefetch: this.o.fsdpForwardPrefetch });
      }
      this.optimizer = buildOptimizer(cfg, this.trainables());
      this.scheduler = buildScheduler(cfg.scheduler);
      this.fingerprint = dataFingerprint(cfg, this.dataset);
      // Eval data is read now (a bad path fails before training); each rank evaluates its slice.
      this.evaluation = await InLoopEvaluation.create(cfg, { collective: collectiveFromProcessGroup(this.pg) });
      this.checkpointer = new Checkpointer(this.runDir, {
        keep: cfg.save_num_checkpoints_to_keep,
        overwrite: cfg.save_overwrite,
        unshardedInterval: cfg.save_interval_unsharded,
        keepUnsharded: cfg.save_num_unsharded_checkpoints_to_keep,
      });
      if (this.fsdp && this.isMain) {
        // A sharded run: step{N}/ holds every rank's pieces; OLMo's unsharded ones are step{N}-unsharded/.
        this.shardedFolder = new CheckpointFolder(this.runDir, { keep: cfg.save_num_checkpoints_to_keep, overwrite: cfg.save_overwrite });
        this.unshardedCheckpointer = new Checkpointer(this.runDir, { keep: cfg.save_num_unsharded_checkpoints_to_keep, overwrite: cfg.save_overwrite, suffix: '-unsharded' });
      }
      // Only rank 0 writes checkpoints; every rank reads the one to resume from once rank 0 has
      // cleaned up what a killed writer left behind.
      if (this.isMain) this.checkpointer.removeStale();
      await this.pg.barrier();
      if (plan.resumeFrom) await this.restore(plan.resumeFrom, plan.resumeKind === 'own' ? 'own' : 'load_path');
      if (typeof this.state.run_id !== 'string') this.state.run_id = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
      if (this.isMain) for (const n of checkLaterCheckpoints(this.runDir, this.state.global_step, cfg.save_overwrite)) this.notice(n);
      // Replicated: gradients are averaged by DataParallel; sharded: by the FSDP units.
      // DataParallel's overlap hooks count one gradient per parameter per backward; with activation
      // checkpointing a tied wte receives two (head, then embedding, in separate engine calls), so
      // it reduces after backward then.
      this.dp = new DataParallel(this.pg, this.fsdp ? [] : this.model.parameters(), { overlap: this.o.overlapGradReduce && !cfg.activation_checkpointing });
      if (this.fsdp) this.saveTag = await this.dp.max(this.isMain ? process.pid : 0);
      // Everything is validated: from here on the folder is written (by rank 0; then every rank's
      // data-indices file, once an earlier run has been moved aside).
      if (this.isMain && !cfg.dry_run) {
        if (plan.moveAside.length) this.notice(`--no-resume: moved the earlier run in ${this.runDir} aside to ${moveEarlierRunAside(this.runDir, plan.moveAside)}`);
        writeRunConfig(this.runDir, trainConfigToYaml(cfg));
      }
      await this.pg.barrier();
      if (cfg.save_data_indices && !cfg.dry_run) this.indicesLog = new DataIndicesLog(this.runDir, this.pg.rank);
      if (!this.isMain) return; // metrics are rank 0's to write
      this.sinks = createMetricsSinks({
        runDir: this.runDir,
        console: this.o.console === false ? false : { totalSteps: maxSteps(parseDuration(cfg.max_duration), this.progress()), interval: cfg.console_log_interval },
      });
      this.showBanner(plan);
    } catch (e) {
      this.lock?.release();
      this.lock = null;
      if (this.isMain) removeIfCreatedAndEmpty(this.runDir, created);
      throw e;
    }
  }

  /** Fills and prints the start-up banner (after listeners of 'banner' added their lines). */
  private showBanner(plan: StartPlan): void {
    const cfg = this.cfg;
    const b = this.banner;
    const B = this.globalBatchSize;
    const tokens = B * cfg.model.max_sequence_length;
    b.set('run folder', this.runDir);
    b.set('model', `${this.model.numParams().toLocaleString('en-US')} parameters, ${cfg.model.n_layers} layers, d_model ${cfg.model.d_model}, ${cfg.precision ?? 'fp32'}`);
    const threads = this.o.numThreads ?? defaultThreads();
    const parallel = this.fsdp ? `FSDP ${cfg.fsdp.sharding_strategy}, wrapping ${cfg.fsdp.wrapping_strategy ?? 'null'}` : 'data parallel';
    const where = this.device === 'cpu' ? `cpu, ${threads} thread${threads === 1 ? '' : 's'}` : `${this.device} (${cuda.deviceName(deviceIndex(this.device))}), ${cfg.precision ?? 'fp32'}`;
    b.set('device', `${where}${this.pg.size > 1 || this.fsdp ? `; rank ${this.pg.rank} of ${this.pg.size} (${parallel})` : ''}`);
    b.set('data', `${this.dataset.length.toLocaleString('en-US')} instances (${this.dataset.paths.length} file${this.dataset.paths.length === 1 ? '' : 's'}, ${this.dataset.dtype})`);
    const growing = this.batchSchedule.isConstant ? '' : `, growing to ${cfg.global_train_batch_size} with batch_size_warmup`;
    b.set('batch', `${B} x ${cfg.model.max_sequence_length} = ${tokens.toLocaleString('en-US')} tokens per step (micro-batch ${cfg.device_train_microbatch_size}${growing})`);
    if (this.memory) for (const [label, value] of memoryBannerEntries(this.memory)) b.set(label, value);
    b.set('duration', `${cfg.max_duration} (${maxSteps(parseDuration(cfg.max_duration), this.progress())} steps)`);
    b.set('start', this.lastCheckpoint
      ? `resuming from ${this.lastCheckpoint} at step ${this.state.global_step}${plan.resumeKind === 'load_path' ? ' (load_path)' : ''}`
      : 'fresh (no checkpoint to resume)');
    for (const [k, v] of headAndCacheBannerLines(cfg)) b.set(k, v);
    this.emit('banner', b);
    if (this.o.console !== false) this.notice(b.render());
  }

  /**
   * Loads weights (and optimizer/trainer state unless reset_*), checking shapes and the data.
   * reset_* and restore_dataloader: false apply to a start from load_path (as in OLMo, where a run
   * is started from load_path); a run resuming its own checkpoint continues it whole (a crash
   * restart must not reset the optimizer again), keeping the bolt-on warmup that start set up,
   * and restarts the data order only when the data changed.
   */
  private async restore(where: string, kind: 'own' | 'load_path'): Promise<void> {
    const ck = this.fsdp
      ? await readShardedCheckpoint(where, this.fsdp, this.pg.rank, this.pg.size, new Map(this.model.namedParameters().map((p) => [p.name, p.tensor.shape])))
      : await loadCheckpoint(where);
    const own = kind === 'own';
    const resetOptimizer = !own && this.cfg.reset_optimizer_state;
    const resetTrainer = !own && this.cfg.reset_trainer_state;
    try {
      const params = new Map(this.trainables().map((p) => [p.name, p.tensor]));
      for (const [name, p] of params) {
        const t = ck.model.get(name);
        if (!t) throw new CheckpointError(`${ck.dir}: the checkpoint has no weights for parameter '${name}' (a different model config?)`);
        if (t.shape.join() !== p.shape.join()) throw new CheckpointError(`${ck.dir}: '${name}' has shape [${t.shape}] in the checkpoint but [${p.shape}] in the model`);
        if (t.dtype !== p.dtype) throw new CheckpointError(`${ck.dir}: '${name}' is ${t.dtype} in the checkpoint but ${p.dtype} in the model`);
      }
      const extra = [...ck.model.keys()].filter((n) => !params.has(n));
      if (extra.length) throw new CheckpointError(`${ck.dir}: unexpected weights in the checkpoint: ${extra.slice(0, 3).join(', ')}`);
      // Everything is checked before anything is copied, so a bad checkpoint never loads in part.
      if (!resetOptimizer) {
        const mineAll = this.optimizer.stateDict().tensors;
        for (const [kind, byName] of Object.entries(mineAll)) {
          for (const [name, mine] of Object.entries(byName)) {
            const t = ck.optimizer.tensors[kind]?.[name];
            if (!t) throw new CheckpointError(`${ck.dir}: the optimizer state has no ${kind} for '${name}' (another optimizer? set reset_optimizer_state: true to start it afresh)`);
            if (t.shape.join() !== mine.shape.join()) throw new CheckpointError(`${ck.dir}: optimizer ${kind} of '${name}' has shape [${t.shape}] in the checkpoint but the parameter is [${mine.shape}]`);
            if (t.dtype !== mine.dtype) throw new CheckpointError(`${ck.dir}: optimizer ${kind} of '${name}' is ${t.dtype} in the checkpoint but ${mine.dtype} here`);
          }
        }
      }
      const st = ck.trainer;
      const dataChanged = !!st.data_fingerprint && st.data_fingerprint !== this.fingerprint;
      if (!resetTrainer && this.cfg.restore_dataloader && dataChanged) {
        throw new CheckpointError(`${ck.dir} was trained on different data (files, sizes, seed or batch shape changed); set restore_dataloader: false to continue on the new data`);
      }
      noGrad(() => { for (const [name, p] of params) p.copy_(ck.model.get(name)!); });
      if (!resetOptimizer) this.optimizer.loadStateDict(ck.optimizer);
      if (!resetTrainer) {
        this.state = { ...st };
        if (!this.cfg.restore_dataloader && (!own || dataChanged)) this.state.global_train_examples_seen_this_epoch = 0;
        if (st.rng.cpu) setRngState(Uint8Array.from(Buffer.from(st.rng.cpu, 'base64')));
        const clip = st.clip as { max_grad_norm: number | null; max_grad_norm_ratio: number | null }[] | undefined;
        clip?.forEach((c, i) => {
          const g = this.optimizer.groups[i];
          if (g) { g.maxGradNorm = c.max_grad_norm; g.maxGradNormRatio = c.max_grad_norm_ratio; }
        });
      }
      // OLMo (scripts/train.py): a fresh optimizer on a trained model warms up again, from where
      // the schedule is to t_warmup later (in the schedule's units); kept in the trainer state so
      // the run's own restarts keep it.
      if (resetOptimizer && !resetTrainer) {
        const at = schedulerPosition(this.cfg, this.progress()).current;
        this.state.bolt_on_warmup = [at, Math.trunc(at + this.cfg.scheduler.t_warmup)];
      }
      const bolt = this.state.bolt_on_warmup as [number, number] | undefined;
      if (Array.isArray(bolt) && bolt.length === 2) this.scheduler = boltOnWarmup(buildScheduler(this.cfg.scheduler), bolt[0], bolt[1]);
      this.lastCheckpoint = ck.dir;
      this.savedStep = this.state.global_step;
      this.emit('resume', ck.dir, this.state.global_step);
    } finally {
      disposeCheckpoint(ck);
    }
  }

  /** What the optimizer updates: the model's parameters, or this rank's pieces of them under FSDP. */
  private trainables(): NamedParameter[] {
    return this.fsdp ? this.fsdp.namedSegments() : this.model.namedParameters();
  }

  private trainerState(): TrainerState {
    return {
      ...this.state,
      rng: { cpu: Buffer.from(getRngState()).toString('base64') },
      data_fingerprint: this.fingerprint,
      world_size: this.pg.size,
      clip: this.optimizer.groups.map((g) => ({ max_grad_norm: g.maxGradNorm, max_grad_norm_ratio: g.maxGradNormRatio })),
    };
  }

  /**
   * Writes a checkpoint of the current state (in the background; returns its promise). Sharded
   * (FSDP): every rank writes its pieces and the promise settles once rank 0 has published the
   * folder — a collective, so every rank must call it at the same step.
   */
  saveCheckpoint(opts: { ephemeral?: boolean } = {}): Promise<string> {
    if (this.fsdp) return this.saveShardedCheckpoint(opts);
    if (!this.isMain) {
      // Every rank holds the same model: rank 0 alone writes it.
      this.savedStep = this.state.global_step;
      this.lastCheckpoint = path.join(this.runDir, `step${this.state.global_step}`);
      return Promise.resolve(this.lastCheckpoint);
    }
    const trainer = this.trainerState();
    const model = new Map(this.model.namedParameters().map((p) => [p.name, p.tensor]));
    this.savedStep = this.state.global_step;
    const job = this.checkpointer.save(this.state.global_step, { model, optimizer: this.optimizer.stateDict(), trainer, configYaml: trainConfigToYaml(this.cfg) }, opts);
    return job.then((dir) => {
      this.lastCheckpoint = dir;
      this.emit('checkpoint', dir);
      return dir;
    });
  }

  private async saveShardedCheckpoint(opts: { ephemeral?: boolean }): Promise<string> {
    const fsdp = this.fsdp!;
    const step = this.state.global_step;
    this.savedStep = step;
    const meta: ShardedMetadata = {
      sharded: true,
      world_size: this.pg.size,
      sharding_strategy: this.cfg.fsdp.sharding_strategy,
      params: Object.fromEntries(this.model.namedParameters().map((p) => [p.name, p.tensor.shape])),
    };
    const dir = await saveSharded({
      folder: this.shardedFolder, runDir: this.runDir, step, pg: this.pg, tag: this.saveTag, meta, ephemeral: opts.ephemeral ?? false,
      payload: { model: new Map(fsdp.namedSegments().map((p) => [p.name, p.tensor])), optimizer: this.optimizer.stateDict(), trainer: this.trainerState() },
      configYaml: trainConfigToYaml(this.cfg),
    });
    this.lastCheckpoint = dir;
    this.emit('checkpoint', dir);
    return dir;
  }

  /**
   * OLMo's unsharded checkpoint of a sharded run (save_interval_unsharded): the fp32 weights and
   * optimizer state gathered to rank 0, written as step{N}-unsharded/ in the regular format (what
   * `convert`, `generate` and any world size load). A collective.
   */
  private async saveUnshardedCheckpoint(): Promise<void> {
    const fsdp = this.fsdp!;
    this.lastUnshardedStep = this.state.global_step;
    const segs = new Map(fsdp.namedSegments().map((p) => [p.name, p.tensor]));
    const st = this.optimizer.stateDict();
    const model = await fsdp.gatherFull((n) => segs.get(n)!);
    const tensors: Record<string, Record<string, Tensor>> = {};
    for (const [kind, byName] of Object.entries(st.tensors)) tensors[kind] = Object.fromEntries(await fsdp.gatherFull((n) => byName[n]!));
    try {
      if (this.isMain) {
        // save() copies to host memory before returning; the file writes go on in the background.
        void this.unshardedCheckpointer!.save(this.state.global_step, { model, optimizer: { tensors, values: st.values }, trainer: this.trainerState(), configYaml: trainConfigToYaml(this.cfg) })
          .catch((e: unknown) => { this.saveError ??= e; });
      }
    } finally {
      for (const t of model.values()) t.dispose();
      for (const byName of Object.values(tensors)) for (const t of Object.values(byName)) t.dispose();
    }
  }

  /**
   * Starts a checkpoint write without waiting for it: the state is copied to host memory now and the
   * files are written while training goes on. At most one write is in flight (a second save waits for
   * the first, so serialized copies never pile up); a failed write stops the run at the next step.
   */
  private async saveInBackground(opts: { ephemeral?: boolean } = {}): Promise<void> {
    if (this.fsdp) {
      // Sharded saves are collectives: every rank takes part in step with the others.
      await this.saveCheckpoint(opts);
      return;
    }
    if (this.saveInFlight) await this.saveInFlight;
    this.throwSaveError();
    this.saveInFlight = this.saveCheckpoint(opts).then(() => undefined, (e: unknown) => { this.saveError ??= e; });
  }

  private throwSaveError(): void {
    if (this.saveError) throw this.saveError;
  }

  /** One optimizer step over a global batch; returns the step's metrics (OLMo names). // SYNC */
  private async trainStep(batch: LoaderBatch): Promise<StepMetrics | null> {
    const cfg = this.cfg;
    const [B, T] = batch.shape;
    // OLMo's split_batch: chunks of device_train_microbatch_size rows (the last may be smaller);
    // each micro-batch loss is divided by the number of chunks.
    const rowsPer = Math.min(cfg.device_train_microbatch_size, B);
    const microBatches = Math.ceil(B / rowsPer);
    const amp = cfg.precision === 'amp_bf16';
    this.optimizer.zeroGrad();
    this.fsdp?.zeroGrad();
    // The step's CE and Z sums stay tensors (no host sync per micro-batch) until the end.
    let local: { ce: number; z: number | null };
    const device = this.device;
    let ceSum: Tensor = keep(scalar(0, { device }));
    let zSum: Tensor | null = cfg.softmax_auxiliary_loss ? keep(scalar(0, { device })) : null;
    try {
      for (let r0 = 0; r0 < B; r0 += rowsPer) {
        const rows = Math.min(rowsPer, B - r0);
        tidy(() => {
          const ids = tensor(batch.inputIds.subarray(r0 * T, (r0 + rows) * T), { shape: [rows, T], dtype: 'int64', device }); // (b, T)
          const attn = batch.attentionMask ? tensor(batch.attentionMask.subarray(r0 * T, (r0 + rows) * T), { shape: [rows, T], device }) : null;
          // OLMo's get_labels: input ids (shifted by nextTokenLoss), -100 where label_mask is false or attention is 0.
          let labels = ids;
          if (batch.labelMask) labels = labels.maskedFill(tensor(batch.labelMask.subarray(r0 * T, (r0 + rows) * T), { shape: [rows, T], dtype: 'bool', device }).logicalNot(), -100);
          if (attn) labels = labels.maskedFill(attn.eq(0), -100);
          const m = tidy(() => microBatchLoss(this.model, ids, labels, { attentionMask: attn, amp, fused: usesFusedLoss(cfg), zLoss: zSum !== null, divisor: microBatches }));
          this.dp.beforeBackward(r0 + rows >= B);
          this.model.backward(m.loss, { sumTiedGradients: !this.fsdp }); // recomputes checkpointed activations, if any
          const ce = keep(ceSum.add(m.ce));
          ceSum.dispose();
          ceSum = ce;
          if (zSum) {
            const z = keep(zSum.add(m.z!));
            zSum.dispose();
            zSum = z;
          }
        });
        // FSDP reduce-scatters every micro-batch's gradients into the shards, as OLMo's does.
        if (this.fsdp) await this.fsdp.finishBackward();
      }
      local = { ce: ceSum.item(), z: zSum ? zSum.item() : null };
    } finally {
      ceSum.dispose();
      zSum?.dispose();
    }
    // Data parallel: average the gradients (replicated model), and the loss metrics as OLMo reduces
    // them, across ranks.
    await this.dp.syncGradients();
    const [ce, zMean] = await this.dp.mean([local.ce, local.z ?? 0]);
    const z = local.z === null ? null : zMean!;
    const step = this.state.global_step;
    const clip = this.optimizer.clipGradsAndCollectMetrics(step, await this.shardedGradNorms());
    const bad: [string, number] | null = !Number.isFinite(ce) ? ['train/CrossEntropyLoss', ce]
      : z !== null && !Number.isFinite(z) ? ['train/ZLoss', z]
      : !Number.isFinite(clip.total_grad_norm) ? firstNonFinite(clip.perParam) : null;
    if (bad) {
      if ((this.o.onNonFinite ?? 'error') === 'error') throw new NonFiniteError(step, bad[0], bad[1]);
      this.optimizer.zeroGrad();
      return null;
    }
    const sched = scheduleAt(cfg, this.progress(), this.scheduler);
    for (const g of this.optimizer.groups) {
      g.lr = sched.lr;
      g.maxGradNorm = sched.maxGradNorm;
      g.maxGradNormRatio = sched.maxGradNormRatio;
    }
    const post = this.optimizer.step();
    const m = trainStepMetrics({
      crossEntropyLoss: ce,
      zLoss: z ?? undefined,
      totalGradNorm: clip.total_grad_norm,
      clippingRate: clip.clipping_rate,
      learningRates: this.optimizer.groups.map((g) => g.lr),
    });
    for (const [k, v] of Object.entries(post)) m[`optim/${k}`] = v;
    return m;
  }

  /** Runs training until max_duration (or another stop). */
  async fit(): Promise<FitResult> {
    await this.setup();
    const cfg = this.cfg;
    if (cfg.dry_run) {
      // OLMo's dry_run: everything is built (and restored), nothing is trained.
      this.sinks?.close();
      this.lock?.release();
      return { stoppedBy: 'dry_run', stepsRun: 0, globalStep: this.state.global_step, lastLoss: NaN, losses: [], checkpoint: this.lastCheckpoint, runDir: this.runDir, skippedSteps: this.skippedSteps };
    }
    deriveBatchSizes(cfg, 1); // validates the batch sizes
    const duration = parseDuration(cfg.max_duration);
    const epochs = maxEpochs(duration);
    const speed = new SpeedMonitor({ windowSize: cfg.speed_monitor.window_size, flopsPerToken: this.model.flopsPerToken(), peakFlopsPerDevice: cfg.speed_monitor.gpu_flops_available ?? (this.device === 'cpu' ? undefined : knownPeakFlops(cuda.deviceName(deviceIndex(this.device)), cfg.precision)) });
    const t0 = Date.now();
    this.firstStepOfRun = this.state.global_step;
    const losses: number[] = [];
    let stoppedBy: StopReason = 'max_duration';
    const detach = this.o.handleSignals ? this.installSignalHandlers() : () => undefined;
    try {
      // OLMo's eval_on_load: evaluate the restored checkpoint before training on.
      if (cfg.eval_on_load && this.lastCheckpoint && this.state.global_step > 0) await this.evaluate();
      epochs: for (; this.state.epoch < epochs; this.state.epoch++, this.state.global_train_examples_seen_this_epoch = 0) {
        const globalIndices = epochIndices(cfg, this.dataset, (cfg.epoch ?? 0) + this.state.epoch, this.runDir, { worldSize: this.pg.size, write: this.isMain });
        const startIndex = this.state.global_train_examples_seen_this_epoch;
        const loader = new DataLoader({
          dataset: this.dataset,
          globalIndices,
          rank: this.pg.rank,
          worldSize: this.pg.size,
          globalBatchSize: this.batchSchedule.maxSize,
          // With batch_size_warmup: the sizes from here on, as the tokens trained on decide them.
          plan: this.batchSchedule.isConstant ? undefined : this.batchSchedule.epochPlan(globalIndices.length, startIndex, this.state.global_train_tokens_seen),
          startIndex,
          dropLast: true,
          padTokenId: cfg.model.pad_token_id,
          numWorkers: cfg.data.num_workers,
          prefetchFactor: cfg.data.prefetch_factor ?? undefined,
        });
        try {
          for await (const batch of loader) {
            // One event-loop turn per step: the background checkpoint write and signal handlers run
            // in these turns (awaiting an already-prefetched batch alone does not yield to libuv).
            await new Promise<void>((resolve) => setImmediate(resolve));
            this.throwSaveError();
            const stop = await this.agreeToStop(this.shouldStop(t0));
            if (stop) { stoppedBy = stop; break epochs; }
            checkBatchTokenIds(batch, this.dataset, embeddingSize(cfg.model));
            const [B, T] = batch.shape; // this rank's device batch
            const W = this.pg.size;
            const tStep = Date.now();
            this.state.global_step += 1;
            this.state.global_train_examples_seen_this_epoch += B * W;
            this.state.global_train_tokens_seen += B * T * W;
            this.indicesLog?.record(this.state.global_step, batch.index);
            const metrics = await this.trainStep(batch);
            const stepSeconds = (Date.now() - tStep) / 1000;
            speed.record({ deviceTokens: B * T, globalTotalTokens: this.state.global_train_tokens_seen, stepSeconds, dataSeconds: loader.lastWaitMs / 1000 });
            if (!metrics) {
              // Kept in the trainer state so the count survives a resume; logged on the skipped step too.
              const skipped = (this.state.skipped_steps = this.skippedSteps + 1);
              this.notice(`step ${this.state.global_step}: non-finite loss or gradient, step skipped (${skipped} so far)`);
              this.sinks?.log(this.state.global_step, { 'train/skipped_steps': skipped, 'throughput/total_tokens': this.state.global_train_tokens_seen });
            } else {
              Object.assign(metrics, speed.check(), { 'throughput/total_tokens': this.state.global_train_tokens_seen, [METRIC.globalBatchSize]: B * W });
              if (this.skippedSteps) metrics['train/skipped_steps'] = this.skippedSteps;
              if (logsSystemMetrics(this.state.global_step)) Object.assign(metrics, memoryMetrics(this.trainables().map((p) => p.tensor), this.optimizer, this.model.device), cpuCacheMetrics());
              losses.push(metrics['train/CrossEntropyLoss']!);
              this.sinks?.log(this.state.global_step, metrics);
              this.emit('step', this.state.global_step, metrics);
            }
            const s = this.state.global_step;
            // One process: every checkpoint is unsharded; save_interval_unsharded adds to the schedule.
            const unshardedDue = !!cfg.save_interval_unsharded && s % cfg.save_interval_unsharded === 0;
            if (s % cfg.save_interval === 0 || (unshardedDue && !this.fsdp)) await this.saveInBackground();
            else if (cfg.save_interval_ephemeral && s % cfg.save_interval_ephemeral === 0) await this.saveInBackground({ ephemeral: true });
            if (this.fsdp && unshardedDue) await this.saveUnshardedCheckpoint();
            // A signal skips the eval (OLMo: not after a cancel) in one process; ranks must agree, so with
            // several they evaluate and stop at the next agreed check.
            if (this.evaluation?.due(s) && !(this.stopSignal && this.pg.size === 1)) await this.evaluate();
          }
        } finally {
          await loader.close();
        }
        if (this.state.global_step >= maxSteps(duration, this.progress())) break;
      }
      if (stoppedBy === 'max_duration' && this.state.global_step < maxSteps(duration, this.progress())) stoppedBy = 'data_exhausted';
      if (this.saveInFlight) await this.saveInFlight;
      this.throwSaveError();
      if (this.o.finalCheckpoint !== false && this.state.global_step > 0 && this.savedStep !== this.state.global_step) await this.saveCheckpoint();
      if (this.fsdp && cfg.save_interval_unsharded && this.state.global_step > 0 && this.lastUnshardedStep !== this.state.global_step) await this.saveUnshardedCheckpoint();
      await this.checkpointer.flush();
      await this.unshardedCheckpointer?.flush();
      this.throwSaveError();
      // Every rank returns only once rank 0's final checkpoint is on disk.
      await this.pg.barrier();
      this.endSaved = true;
    } finally {
      // On an error (NaN, a failed save) still let a write in flight finish: the checkpoint it holds is
      // good, and the process must not exit with a half-written temp folder when it need not.
      await this.checkpointer.flush().catch(() => undefined);
      detach();
      this.sinks?.close();
      this.indicesLog?.close();
      this.lock?.release();
    }
    return {
      stoppedBy,
      stepsRun: losses.length,
      globalStep: this.state.global_step,
      lastLoss: losses.length ? losses[losses.length - 1]! : NaN,
      losses,
      checkpoint: this.lastCheckpoint,
      skippedSteps: this.skippedSteps,
      runDir: this.runDir,
    };
  }

  /** Runs the evaluators at the current step (OLMo's Trainer.eval); training resumes unchanged. */
  private async evaluate(): Promise<void> {
    this.optimizer.zeroGrad();
    const r = await this.evaluation!.run(this.model, this.state.global_step, this.sinks);
    this.emit('eval', this.state.global_step, r.metrics);
  }

  private get skippedSteps(): number {
    return (this.state.skipped_steps as number | undefined) ?? 0;
  }

  /** A line for the operator: the console progress when there is one, else stderr. */
  private notice(message: string): void {
    this.emit('notice', message);
    if (this.sinks?.console) this.sinks.console.info(message);
    else process.stderr.write(`olmo-ts: ${message}\n`);
  }

  /** Under FSDP, each parameter's gradient norm over every rank's piece; else undefined (local = global). */
  private async shardedGradNorms(): Promise<Float64Array | undefined> {
    if (!this.fsdp) return undefined;
    const local = this.optimizer.localGradNorms();
    const sq = await this.fsdp.reduceNormSquares(local.map((n) => n * n));
    return sq.map((x) => Math.fround(Math.sqrt(x)));
  }

  /**
   * Every rank must stop before the same step: a signal or the time limit may reach ranks at
   * different steps, so the decision is the most urgent reason any rank has. // SYNC
   */
  private async agreeToStop(local: StopReason | null): Promise<StopReason | null> {
    if (this.pg.size === 1) return local;
    const order: (StopReason | null)[] = [null, 'max_duration', 'stop_at', 'time_limit', 'aborted', 'signal'];
    const agreed = order[await this.dp.max(order.indexOf(local))] ?? null;
    if (agreed === 'signal' && !this.stopSignal) this.stopSignal = 'SIGTERM'; // stopped by another rank's signal
    return agreed;
  }

  /** Checked before each step: the reasons to stop now. */
  private shouldStop(t0: number): StopReason | null {
    const cfg = this.cfg;
    if (this.stopSignal) return 'signal';
    if (this.o.signal?.aborted) return 'aborted';
    if (cfg.stop_at !== null && this.state.global_step >= cfg.stop_at) return 'stop_at';
    if (this.state.global_step >= maxSteps(parseDuration(cfg.max_duration), this.progress())) return 'max_duration';
    // As in OLMo, the time limit is checked between steps: every start trains at least one step.
    if (cfg.time_limit !== null && this.state.global_step > this.firstStepOfRun && (Date.now() - t0) / 1000 >= cfg.time_limit) return 'time_limit';
    return null;
  }

  /**
   * First SIGTERM/SIGINT/SIGHUP (a closed terminal or ssh session is a SIGHUP): finish the step,
   * checkpoint, stop. A second one exits at once. A stop that ranks agreed on because another rank
   * was signalled does not count as this process's first: its own copy of the same preemption often
   * arrives a moment later. A signal after the run's end is saved (another rank exited first and
   * Slurm stops the step) changes nothing.
   */
  private installSignalHandlers(): () => void {
    const handler = (sig: NodeJS.Signals) => {
      if (this.endSaved) return;
      if (this.ownSignal) {
        process.stderr.write(`\nolmo-ts: second ${sig}, exiting now without a checkpoint\n`);
        process.exit(128 + (os.constants.signals[sig] ?? 15));
      }
      this.ownSignal = true;
      if (this.stopSignal) return; // already stopping for another rank's signal
      this.stopSignal = sig;
      this.notice(`${sig} received: finishing this step, then saving a checkpoint (send it again to exit at once)`);
    };
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
    for (const s of signals) process.on(s, handler);
    return () => {
      for (const s of signals) process.off(s, handler);
    };
  }

  /** The signal that stopped the run, if any. */
  get receivedSignal(): NodeJS.Signals | null {
    return this.stopSignal;
  }

  /** Frees the model and optimizer state. */
  close(): void {
    this.lock?.release();
    this.indicesLog?.close();
    this.dp?.close();
    this.fsdp?.close();
    void this.unshardedCheckpointer?.close();
    if (this.ownsPg) this.pg?.close();
    void this.checkpointer?.close();
    this.evaluation?.close();
    this.optimizer?.close();
    this.model?.dispose();
    this.dataset?.close();
  }
}

function firstNonFinite(perParam: Record<string, number>): [string, number] {
  for (const [k, v] of Object.entries(perParam)) if (!Number.isFinite(v)) return [k.replace(/\.norm$/, ' norm'), v];
  return ['optim/total_grad_norm', NaN];
}

/**
 * Intra-op threads when not given: OMP_NUM_THREADS when set (torchrun and Slurm scripts set it),
 * else the cores shared out among this node's ranks.
 */
function defaultThreads(): number {
  const omp = Number(process.env.OMP_NUM_THREADS);
  if (Number.isInteger(omp) && omp > 0) return omp;
  const perNode = Number(process.env.LOCAL_WORLD_SIZE) || 1;
  return Math.max(1, Math.floor(os.cpus().length / perNode));
}

/** Which blocks OLMo's FSDP wrapping makes units of their own (by_block*: all; one_in_N: every Nth). */
function blockIsUnit(wrapping: TrainConfig['fsdp']['wrapping_strategy']): (i: number) => boolean {
  const n = { one_in_two: 2, one_in_three: 3, one_in_four: 4, one_in_five: 5 }[wrapping as string];
  if (n) return (i) => i % n === 0;
  return () => wrapping === 'by_block' || wrapping === 'by_block_and_size';
}
