#!/usr/bin/env bash
# Makes this checkout ready to run: Debian packages (when missing), npm dependencies, the native
# addon and the compiled TypeScript. Idempotent and quick when everything is already there.
# Used by `npm run demo` and `npm test` (as their pre-scripts), so both work on a fresh Debian 12.
#   bash scripts/setup.sh          runtime needs (libtorch, BLAS, cmake, compiler)
#   bash scripts/setup.sh --test   plus what the tests need (PyTorch/numpy references, chromium, Slurm)
#   bash scripts/setup.sh --torch2 plus debootstrap, for the libtorch 2.x roots (scripts/debian-root.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(cmake g++ libtorch-dev libgloo-dev libopenblas0-pthread)
if [[ " $* " == *" --test "* || "${npm_lifecycle_event:-}" == "pretest" ]]; then
  want+=(python3-torch python3-numpy python3-protobuf python3-crc32c chromium slurmctld slurmd slurm-client munge)
fi
if [[ " $* " == *" --torch2 "* ]]; then
  want+=(debootstrap)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "olmo-ts setup: installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "olmo-ts setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies (this also builds the addon through the package's install script)
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "olmo-ts setup: installing npm dependencies"
  npm ci --no-audit --no-fund
fi
node scripts/build-native.js
# compiled TypeScript for the CLI (incremental)
npx tsc -p tsconfig.json
