#!/usr/bin/env bash
# The whole GPU check in one call, on a machine that has CUDA, CMake, ninja and PyTorch but no Node:
# unpack the bundle (scripts/gpu/bundle.sh, sent along as .gpu-bundle/), build the addon against
# that PyTorch's libtorch, run the CUDA tests (op table, model parity and fused head against
# PyTorch on the same GPU), the GPU training-step benchmark beside Python PyTorch
# (bench/gpu.bench.ts), the trainer's CUDA tests (test/cuda/trainer.test.ts) and the real
# Trainer's GPU benchmark (bench/gpu-train.bench.ts), in that order of priority. Every stage is
# logged to OUTDIR/<stage>.log and timed; a failing stage does not stop the next one; a stage that
# would overrun the budget is cut short or skipped; OUTDIR/summary.md has each stage's exit status,
# the environment and the benchmark table. The whole script ends within OLMO_GPU_BUDGET_S.
# OUTDIR gets at most 8 files.
#
#   bash scripts/gpu/run.sh OUTDIR                from the repo root, with .gpu-bundle/ beside
#
# Environment:
#   OLMO_GPU_BUDGET_S   seconds for everything (default 410: under 7 minutes)
#   OLMO_GPU_STAGES     which stages, comma-separated (default build,test,bench,test-trainer,bench-trainer)
#   OLMO_GPU_BUILD_S / OLMO_GPU_TEST_S / OLMO_GPU_BENCH_S   stage limits in seconds (default 270 / 120 / 150)
#   OLMO_GPU_BENCH      arguments for bench/gpu.bench.ts (default: its own; see --help there)
#   OLMO_TS_PYTHON      the Python with torch (default: python3 on PATH)
#   OLMO_GPU_DRY=1      rehearsal on a machine without a GPU (scripts/gpu/dry-run.sh): the same steps
#                       against that machine's libtorch; the CUDA stages must then fail, saying so.
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash scripts/gpu/run.sh OUTDIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
BUNDLE=$ROOT/.gpu-bundle
BUDGET=${OLMO_GPU_BUDGET_S:-410}
STAGES=",${OLMO_GPU_STAGES:-build,test,bench,test-trainer,bench-trainer},"
DRY=${OLMO_GPU_DRY:-0}
T0=$SECONDS
JOBS=$(nproc 2> /dev/null || echo 4)

declare -a S_NAME S_RC S_SECS S_NOTE
note() { echo "[gpu $(printf '%4d' $((SECONDS - T0)))s] $*"; }
left() { echo $((BUDGET - (SECONDS - T0))); }

# stage NAME LIMIT_S CMD...: runs CMD with its output in $OUT/NAME.log, killed (with its children)
# after LIMIT_S or when the global budget runs out, whichever is first. Records rc and seconds.
stage() {
  local name=$1 limit=$2
  shift 2
  local budget_left
  budget_left=$(($(left) - 15))  # timeout -k 10 may take 10 s more
  ((limit > budget_left)) && limit=$budget_left
  if ((limit < 10)); then
    note "$name: skipped (the time budget of ${BUDGET}s is spent)"
    S_NAME+=("$name"); S_RC+=("skipped"); S_SECS+=(0); S_NOTE+=("no time left")
    return 0
  fi
  note "$name: start (limit ${limit}s) -> $OUT/$name.log"
  local t=$SECONDS rc
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  local secs=$((SECONDS - t)) why=""
  ((rc == 124 || rc == 137)) && why="timed out after ${limit}s"
  S_NAME+=("$name"); S_RC+=("$rc"); S_SECS+=("$secs"); S_NOTE+=("$why")
  if ((rc == 0)); then
    note "$name: ok in ${secs}s"
  else
    note "$name: FAILED rc=$rc in ${secs}s ${why}; from $name.log:"
    # failing tests first (node's test runner marks them ✖), then the end of the log
    grep -a '✖' "$OUT/$name.log" | sort -u | head -n 30 | sed 's/^/    /'
    tail -n 15 "$OUT/$name.log" | sed 's/^/    /'
  fi
  return 0
}

# ---------------------------------------------------------------- environment
PY=${OLMO_TS_PYTHON:-$(command -v python3 || true)}
if [[ $DRY == 1 && -z ${OLMO_TS_PYTHON:-} && -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; fi
export OLMO_TS_PYTHON=$PY
[[ -d /usr/local/cuda/bin && ":$PATH:" != *":/usr/local/cuda/bin:"* ]] && export PATH=$PATH:/usr/local/cuda/bin
{
  echo "# olmo-ts GPU run"
  echo
  echo "- started: $(date -u +%Y-%m-%dT%H:%M:%SZ)$([[ $DRY == 1 ]] && echo ' (DRY RUN: no GPU expected)')"
  echo "- host: $(uname -m), $JOBS cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo 2> /dev/null)"
  echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2> /dev/null | head -1 || true)"
  echo "- python: $PY; $("$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1 | tail -1)"
  echo "- nvcc: $(nvcc --version 2> /dev/null | grep -o 'release [0-9.]*' || echo none); cmake: $(cmake --version 2> /dev/null | head -1); ninja: $(ninja --version 2> /dev/null || echo none); c++: $(c++ --version 2> /dev/null | head -1)"
  echo "- bundle: $(tr '\n' ';' < "$BUNDLE/MANIFEST" 2> /dev/null || echo 'MISSING (.gpu-bundle: run scripts/gpu/bundle.sh here and carry .gpu-bundle)')"
} > "$OUT/env.md"
cat "$OUT/env.md"

# ---------------------------------------------------------------- unpack Node, packages, dist
unpack() {
  set -e
  [[ -f $BUNDLE/node.tar.xz ]] || { echo "no $BUNDLE/node.tar.xz: run 'bash scripts/gpu/bundle.sh' where Node is and carry .gpu-bundle"; exit 1; }
  # untar DEST FILE.tar.xz: tar needs the xz program; Python's tarfile (lzma) does it without
  untar() {
    if command -v xz > /dev/null; then tar -C "$1" -xJf "$2"; else
      "$PY" -c 'import sys, tarfile; t = tarfile.open(sys.argv[2], "r:xz"); t.extractall(sys.argv[1], **({"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}))' "$1" "$2"
    fi
  }
  mkdir -p "$NODE_DIR"
  untar "$NODE_DIR" "$BUNDLE/node.tar.xz"
  if [[ ! -d node_modules/tsx ]]; then untar . "$BUNDLE/node_modules.tar.xz"; fi
  if [[ ! -f dist/index.js ]]; then untar . "$BUNDLE/dist.tar.xz"; fi
  "$NODE_DIR/bin/node" --version
  "$NODE_DIR/bin/node" -e "require('tsx/package.json'); console.log('node_api include:', require('node-addon-api').include_dir)"
}
NODE_DIR=$(mktemp -d /tmp/olmo-gpu-node.XXXXXX)
export BUNDLE NODE_DIR PY
stage unpack 60 bash -c "$(declare -f unpack); unpack"
export PATH=$NODE_DIR/bin:$PATH

# ---------------------------------------------------------------- build the addon
# Plain cmake + ninja (what cmake-js would run), against the libtorch of $PY's PyTorch, into the
# folder the addon is loaded from (build/Release/olmo_native.node).
build() {
  set -e
  command -v node > /dev/null || { echo "no node on PATH (the unpack stage failed)"; exit 1; }
  local prefix nvtx="" d
  prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  local args=(-S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$ROOT/build/Release"
    "-DCMAKE_JS_INC=$ROOT/node_modules/node-api-headers/include;$ROOT/node_modules/node-addon-api"
    "-DCMAKE_CXX_FLAGS=-DBUILDING_NODE_EXTENSION" "-DPYTHON_EXECUTABLE=$PY")
  [[ -d $prefix/Torch ]] && args+=("-DCMAKE_PREFIX_PATH=$prefix")
  # CUDA 12.9+ ships NVTX only as the header-only nvtx3; PyTorch's CMake config looks for it in its
  # own source tree and otherwise falls back to the removed libnvToolsExt (a configure error). Point
  # it at the toolkit's (or the nvidia-nvtx wheel's) headers.
  for d in "${CUDA_HOME:-/nonexistent}/include" /usr/local/cuda/include \
    "$(dirname "$(dirname "$(command -v nvcc 2> /dev/null || echo /x/x)")")/include" \
    "$("$PY" -c 'import nvidia.nvtx, os; print(os.path.join(list(nvidia.nvtx.__path__)[0], "include"))' 2> /dev/null)"; do
    if [[ -n $d && -d $d/nvtx3 ]]; then nvtx=$d; break; fi
  done
  [[ -n $nvtx ]] && args+=("-Dnvtx3_dir=$nvtx")
  [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]] && command -v nvidia-smi > /dev/null && export TORCH_CUDA_ARCH_LIST=9.0
  echo "+ cmake ${args[*]}"
  cmake "${args[@]}"
  echo "+ cmake --build build -j $JOBS -- -k 0"
  # -k 0: every translation unit's errors in one log, not only the first one's
  cmake --build "$ROOT/build" -j "$JOBS" -- -k 0
  ls -la "$ROOT/build/Release/olmo_native.node"
  if ldd "$ROOT/build/Release/olmo_native.node" | grep 'not found'; then echo "the addon's libraries are not all found (above)"; exit 1; fi
  grep -o 'OLMO_TORCH_CUDA=1\|OLMO_C10D_NCCL=[01]\|OLMO_C10D_GLOO=[01]' "$ROOT/build/build.ninja" | sort -u || true
  node -e "const {buildInfo, cuda} = require('./dist'); console.log('addon:', JSON.stringify(buildInfo()), 'cuda available:', cuda.isAvailable(), 'devices:', cuda.deviceCount())"
}
export ROOT PY JOBS
if [[ $STAGES == *,build,* ]]; then stage build "${OLMO_GPU_BUILD_S:-270}" bash -c "$(declare -f build); build"; fi

# test counts of the last stage's log into its note
counts() {
  local c
  c=$(grep -aE '^ℹ (pass|fail|skipped) ' "$OUT/$1.log" 2> /dev/null | sed 's/^ℹ //' | tr '\n' ' ')
  [[ -n $c ]] && S_NOTE[${#S_NOTE[@]} - 1]="${S_NOTE[${#S_NOTE[@]} - 1]} $c"
  return 0
}

# ---------------------------------------------------------------- CUDA tests (numerics)
if [[ $STAGES == *,test,* ]]; then
  stage test-cuda "${OLMO_GPU_TEST_S:-120}" env OLMO_TS_TEST_CUDA=1 node scripts/run-tests.js test/cuda --exclude test/cuda/trainer.test.ts
  counts test-cuda
fi

# ---------------------------------------------------------------- GPU training-step benchmark vs PyTorch
if [[ $STAGES == *,bench,* ]]; then
  blimit=${OLMO_GPU_BENCH_S:-150}
  ((blimit > $(left) - 10)) && blimit=$(($(left) - 10))
  # shellcheck disable=SC2086
  stage bench "$blimit" node --import tsx bench/gpu.bench.ts --out "$OUT" --budget-s $((blimit - 10)) ${OLMO_GPU_BENCH:-}
fi

# ---------------------------------------------------------------- the Trainer on CUDA: tests, then its benchmark
if [[ $STAGES == *,test-trainer,* ]]; then
  stage test-trainer "${OLMO_GPU_TEST_S:-120}" env OLMO_TS_TEST_CUDA=1 node scripts/run-tests.js test/cuda/trainer.test.ts
  counts test-trainer
fi
if [[ $STAGES == *,bench-trainer,* ]]; then
  stage bench-trainer $(($(left) - 8)) node --import tsx bench/gpu-train.bench.ts --out "$OUT/bench-trainer.md"
fi

# ---------------------------------------------------------------- summary
{
  cat "$OUT/env.md"
  echo
  echo "| stage | exit | seconds | note |"
  echo "| --- | --- | --- | --- |"
  for i in "${!S_NAME[@]}"; do echo "| ${S_NAME[$i]} | ${S_RC[$i]} | ${S_SECS[$i]} | ${S_NOTE[$i]} |"; done
  echo
  echo "total: $((SECONDS - T0)) s of a ${BUDGET} s budget"
  for f in bench.md bench-trainer.md; do if [[ -f $OUT/$f ]]; then echo; cat "$OUT/$f"; fi; done
  echo
  echo "## unpack"
  echo
  sed 's/^/    /' "$OUT/unpack.log" 2> /dev/null
} > "$OUT/summary.md"
rm -f "$OUT/env.md" "$OUT/bench.md" "$OUT/unpack.log"
rm -rf "$NODE_DIR"
echo
cat "$OUT/summary.md"
fail=0
for rc in "${S_RC[@]}"; do [[ $rc == 0 ]] || fail=1; done
exit $fail
