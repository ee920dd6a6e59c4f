# shellcheck shell=bash
# Sourced by the sbatch scripts in this folder (not run on its own): the olmo-ts command, the run's
# name and folder, node-local scratch, and olmo_ts_run, which starts the training step with srun and
# requeues the job when the ranks stopped with a checkpoint (exit 75). Every setting says why.
# Knobs, all optional, from the environment that sbatch passes on:
#   OLMO_TS_HOME         the built checkout (default: the folder sbatch was run from)
#   OLMO_TS_NODE         the Node.js 20+ binary (default: node on PATH)
#   CHECKPOINTS_PATH     where run folders go (default: $OLMO_TS_HOME/runs)
#   RUN_NAME             the run's name (default: olmo-ts-<job id>)
#   OLMO_TS_NODE_TMP     node-local scratch (default: /tmp/olmo-ts-<user>-<job id>)
#   OLMO_TS_MAX_REQUEUES how many times a job may requeue itself (default 50)

# The checkout on shared storage, built once on a login node (README: "Running on a Slurm cluster").
# sbatch runs a copy of the job script from its spool folder, so the script's own path does not
# point there; the folder sbatch was called from does, when it is called from the checkout.
OLMO_TS_HOME=${OLMO_TS_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
# Compute nodes have no internet: Node.js comes from shared storage or the site's modules.
OLMO_TS_NODE=${OLMO_TS_NODE:-node}
olmo_ts=("$OLMO_TS_NODE" "$OLMO_TS_HOME/dist/cli/main.js")
if [[ ! -f $OLMO_TS_HOME/dist/cli/main.js || ! -f $OLMO_TS_HOME/build/Release/olmo_native.node ]]; then
  echo "olmo-ts job: no built olmo-ts in OLMO_TS_HOME=$OLMO_TS_HOME (dist/cli/main.js, build/Release/olmo_native.node): run 'npm ci' there on a login node, or set OLMO_TS_HOME" >&2
  exit 1
fi

# One run folder per job: a requeued job keeps its job id, so it finds its own checkpoints and resumes.
RUN_NAME=${RUN_NAME:-olmo-ts-${SLURM_JOB_ID:?not inside a Slurm job}}
# On shared storage: rank 0 writes checkpoints and metrics there, every rank reads them on resume.
CHECKPOINTS_PATH=${CHECKPOINTS_PATH:-$OLMO_TS_HOME/runs}
SAVE_FOLDER=$CHECKPOINTS_PATH/$RUN_NAME
mkdir -p "$CHECKPOINTS_PATH"

# Scratch on each node's own storage (a local disk, or RAM where there is none, as on LUMI-G):
# temporary files and compiled-kernel caches stay off the shared file system, where many ranks
# writing small files at once is slow (and some caches' file locks fail).
export OLMO_TS_NODE_TMP=${OLMO_TS_NODE_TMP:-/tmp/olmo-ts-${USER:-$(id -un)}-$SLURM_JOB_ID}
export TMPDIR=$OLMO_TS_NODE_TMP
mkdir -p "$TMPDIR"
# Prefix for the per-task command: creates the scratch folder on every node, then becomes the
# command itself (exec), so Slurm's signals reach olmo-ts directly.
olmo_ts_task=(bash -c 'mkdir -p "$OLMO_TS_NODE_TMP" && exec "$@"' olmo-ts-task)

# libtorch's CPU threads per rank: the CPUs Slurm gave the task (olmo-ts reads OMP_NUM_THREADS);
# otherwise every rank would start one thread per core of the whole node.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

# GPUs per node that the job asked for (0 or none: a CPU run on Gloo, e.g. sbatch --gpus-per-node=0).
olmo_ts_gpus=${SLURM_GPUS_PER_NODE:-0}
olmo_ts_gpus=${olmo_ts_gpus##*:} # "a100:8" -> 8

# A run that stops at once on every start (say a time_limit shorter than start-up) must not
# requeue forever.
OLMO_TS_MAX_REQUEUES=${OLMO_TS_MAX_REQUEUES:-50}

# olmo_ts_run SRUN_ARGS...: runs the training step (srun SRUN_ARGS...) and ends the job by its status:
#   0   the run is done;
#   75  the ranks stopped with a checkpoint (a preemption warning, scancel --signal=TERM, or the
#       config's time_limit): the job is requeued and its next start resumes from that checkpoint;
#   else the step failed (srun --kill-on-bad-exit names the task and its status above).
olmo_ts_run() {
  echo "olmo-ts job $SLURM_JOB_ID, start $((${SLURM_RESTART_COUNT:-0} + 1)): ${SLURM_JOB_NUM_NODES:-1} node(s) ${SLURM_JOB_NODELIST:-}, run $RUN_NAME in $SAVE_FOLDER"
  srun "$@" &
  local srun_pid=$! status
  # --signal=B:TERM@N warns this shell only, and srun answers SIGTERM by killing its tasks: pass the
  # signal to the job's steps instead, so that every rank gets it, checkpoints, and exits 75.
  trap 'echo "olmo-ts job: SIGTERM (preemption or time-limit warning): signalling the ranks"; scancel --signal=TERM "$SLURM_JOB_ID"' TERM
  while :; do
    wait "$srun_pid" && status=0 || status=$?
    kill -0 "$srun_pid" 2>/dev/null || break # else the trap interrupted the wait: srun still runs
  done
  trap - TERM
  if [[ $status != 75 ]]; then
    # Done or failed: free the node-local scratch on every node (it may be RAM); a requeued start keeps it.
    srun --ntasks="${SLURM_JOB_NUM_NODES:-1}" --ntasks-per-node=1 --cpus-per-task=1 rm -rf "$OLMO_TS_NODE_TMP" || true
  fi
  case $status in
    0) echo "olmo-ts job: the run is done" ;;
    75)
      if ((${SLURM_RESTART_COUNT:-0} < OLMO_TS_MAX_REQUEUES)); then
        echo "olmo-ts job: the ranks stopped with a checkpoint (exit 75): requeueing job $SLURM_JOB_ID to resume"
        # ends this start; the next one begins at the top of the script
        scontrol requeue "$SLURM_JOB_ID" || echo "olmo-ts job: scontrol requeue failed: submit the job again with RUN_NAME=$RUN_NAME to resume" >&2
      else
        echo "olmo-ts job: stopped with a checkpoint, but already requeued $SLURM_RESTART_COUNT times (OLMO_TS_MAX_REQUEUES): not requeueing" >&2
      fi
      ;;
    *) echo "olmo-ts job: the training step failed with status $status" >&2 ;;
  esac
  return "$status"
}
