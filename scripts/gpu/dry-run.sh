#!/usr/bin/env bash
# Rehearses scripts/gpu/run.sh on this machine (no GPU needed), as the GPU machine will see it: copies
# what travels (tracked and untracked-not-ignored files, plus .gpu-bundle/) into a temporary folder
# without node_modules, dist or build, and runs run.sh there with OLMO_GPU_DRY=1: Node from the
# bundle, the addon built by plain cmake + ninja against this machine's libtorch, the CUDA tests
# (which must fail, saying there is no CUDA device) and the benchmark's CPU-only message.
#
#   bash scripts/gpu/dry-run.sh [OUTDIR]          (default OUTDIR: /tmp/olmo-gpu-dry/out)
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -f .gpu-bundle/MANIFEST ]] || { echo "dry-run: no .gpu-bundle: run 'bash scripts/gpu/bundle.sh' first" >&2; exit 1; }
out=${1:-/tmp/olmo-gpu-dry/out}
copy=$(mktemp -d /tmp/olmo-gpu-dry.XXXXXX)
trap 'rm -rf "$copy"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$copy" -xf -
cp -r .gpu-bundle "$copy/"
rm -rf "$out" && mkdir -p "$out"
echo "dry-run: copy in $copy ($(du -sm "$copy" | cut -f1) MiB), output in $out"
rc=0
# this machine builds on fewer cores than the GPU machine's 16: longer limits (override as there)
OLMO_GPU_DRY=1 OLMO_GPU_BUDGET_S=${OLMO_GPU_BUDGET_S:-1500} OLMO_GPU_BUILD_S=${OLMO_GPU_BUILD_S:-1000} \
  bash "$copy/scripts/gpu/run.sh" "$out" || rc=$?
echo "dry-run: run.sh exited $rc; files: $(ls "$out" | tr '\n' ' ')"
exit $rc
