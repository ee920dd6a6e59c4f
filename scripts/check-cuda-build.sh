#!/usr/bin/env bash
# Compile check of the addon against a CUDA + NCCL libtorch, on a machine without a GPU: Debian 13's
# libtorch-cuda-dev 2.6 (CUDA 12.4, libnccl-dev 2.22, from contrib/non-free) in a cached Debian 13
# root (scripts/debian-root.sh). Every CUDA-only line is compiled (OLMO_TORCH_CUDA: memory stats,
# streams; OLMO_C10D_NCCL: the NCCL process group headers) and the addon is linked; nothing runs.
# Run it before every change to native/, CMakeLists.txt or cmake/:
#
#   bash scripts/check-cuda-build.sh
#
# The first run creates the root (~6 GB download-and-unpack, several minutes) in
# ~/.cache/olmo-ts/roots/cuda; later runs reuse it. The build goes to build-cuda/. nvidia-cudnn, a
# package that downloads cuDNN from NVIDIA while it installs, is replaced by an empty stand-in
# (libtorch-cuda's CMake config builds without cuDNN). Needs root or sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d node_modules ]] || { echo "check-cuda-build: run 'bash scripts/setup.sh' first (node_modules)" >&2; exit 1; }

t0=$SECONDS
bash scripts/debian-root.sh ensure cuda
t_root=$((SECONDS - t0))

rc=0
bash scripts/debian-root.sh run cuda '
  set -e
  export OLMO_TS_BUILD_DIR=build-cuda
  node scripts/build-native.js > /tmp/build.log 2>&1 || { grep -E "error|Error" /tmp/build.log | head -40; tail -20 /tmp/build.log; exit 1; }
  grep -E "^(olmo-ts|-- olmo-ts|-- Found CUDA|-- Caffe2: CUDA|.*USE_CUDNN)" /tmp/build.log || true
  # the build must really be the CUDA one, with NCCL: otherwise this check proves nothing
  # (read from the build files: an incremental build does not print the configure messages)
  flags="$(cat build-cuda/build.ninja build-cuda/CMakeFiles/olmo_native.dir/flags.make 2>/dev/null || true)"
  grep -q "OLMO_TORCH_CUDA=1" <<<"$flags" || { echo "check-cuda-build: libtorch was not found as a CUDA build (no OLMO_TORCH_CUDA)" >&2; exit 1; }
  grep -q "OLMO_C10D_NCCL=1" <<<"$flags" || { echo "check-cuda-build: nccl.h not found: the NCCL process group was not compiled" >&2; exit 1; }
  cmake --build build-cuda --target olmo_header_probe > /tmp/probe.log 2>&1 || { tail -40 /tmp/probe.log; exit 1; }
  echo "check-cuda-build: CUDA addon linked: $(ls -la build-cuda/Release/olmo_native.node | awk "{print \$5}") bytes; CUDA/NCCL header probe compiled"
' || rc=$?
echo "check-cuda-build: exit $rc after $((SECONDS - t0)) s (root ready after $t_root s)"
exit $rc
