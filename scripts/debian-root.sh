#!/usr/bin/env bash
# Debian 13 (trixie) roots for building and testing olmo-ts against libtorch 2.x from a Debian 12
# host: made once with debootstrap from the host's Debian mirror, cached under
# ${OLMO_TS_CACHE:-~/.cache/olmo-ts}/roots/<name> and shared by every checkout, then entered with a
# private mount namespace (pivot_root, so nested namespaces work inside) with this checkout mounted
# at the same path. Writes inside go to an overlay in a temporary folder: the cached root stays
# as it was made, and /tmp inside starts empty on every run.
#
#   scripts/debian-root.sh ensure <name>             create the root when missing or outdated
#   scripts/debian-root.sh run <name> <command...>   run a bash command inside, in this checkout
#   scripts/debian-root.sh path <name>               print where the root lives
#
# Roots (package lists below): torch2 = libtorch-dev 2.6 + python3-torch 2.6 (CPU);
# cuda = libtorch-cuda-dev 2.6 + CUDA 12.4 + NCCL from contrib/non-free, compile-only (no GPU needed).
# Needs root (or sudo) for debootstrap, mounts and namespaces; installs debootstrap when missing.
# Environment: OLMO_TS_CACHE (cache folder), OLMO_TS_DEBIAN_MIRROR (default: the host's apt mirror).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(cd "$here/.." && pwd)"
suite=trixie

packages_for() {
  case "$1" in
    torch2) echo "libtorch-dev python3-torch libgloo-dev cmake g++ make ninja-build libopenblas0-pthread python3-numpy python3-protobuf python3-crc32c git" ;;
    # nvidia-cudnn is satisfied by a stand-in (see make_cudnn_standin); cuDNN is not needed to compile.
    # libgloo-cuda-dev: libtorch-cuda's Gloo (libgloo-dev's libgloo0 conflicts with it)
    cuda) echo "libtorch-cuda-dev nvidia-cuda-toolkit libgloo-cuda-dev libnccl-dev cmake g++ make ninja-build" ;;
    *) echo "debian-root.sh: unknown root '$1' (torch2 or cuda)" >&2; exit 2 ;;
  esac
}
components_for() { [[ "$1" == cuda ]] && echo main,contrib,non-free || echo main; }

cache_dir() { echo "${OLMO_TS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/olmo-ts}/roots"; }
root_path() { echo "$(cache_dir)/$1"; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -E "$@"; else
    echo "debian-root.sh: needs root (or sudo) for debootstrap and mount namespaces" >&2; exit 1
  fi
}

# The mirror the host's apt already uses (first deb.debian.org-style URI), unless overridden.
mirror() {
  if [[ -n "${OLMO_TS_DEBIAN_MIRROR:-}" ]]; then echo "$OLMO_TS_DEBIAN_MIRROR"; return; fi
  local m
  m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ')
  echo "${m:-http://deb.debian.org/debian}"
}

# Stamp: what the root was made from; a different package list remakes it.
stamp_of() { echo "suite=$suite components=$(components_for "$1") packages=$(packages_for "$1") cudnn-standin=1 v=1"; }

# A stand-in for the nvidia-cudnn package: the real one is an installer that downloads cuDNN from
# NVIDIA while it is configured, which fails offline. libtorch-cuda's CMake config works without
# cuDNN (USE_CUDNN=0), and nothing here runs on a GPU, so an empty package of the same name and a
# high version satisfies the dependency without a download.
make_cudnn_standin() {
  local dir="$1/nvidia-cudnn-standin"
  mkdir -p "$dir/DEBIAN"
  cat > "$dir/DEBIAN/control" <<EOF
Package: nvidia-cudnn
Version: 99:0-olmo-ts-standin
Architecture: amd64
Maintainer: olmo-ts <noreply@localhost>
Description: empty stand-in for the nvidia-cudnn downloader (olmo-ts compile checks only)
 Provides nothing; lets libtorch-cuda-dev install without fetching cuDNN from NVIDIA.
EOF
  dpkg-deb --build --root-owner-group "$dir" "$1/nvidia-cudnn-standin.deb" >/dev/null
}

create() {
  local name="$1" dest new
  dest="$(root_path "$name")"
  new="$dest.new.$$"
  command -v debootstrap >/dev/null || {
    echo "debian-root.sh: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  local t0=$SECONDS mir
  mir="$(mirror)"
  echo "debian-root.sh: creating the $name root ($suite from $mir) in $dest"
  as_root rm -rf "$dest".new.*  # what an interrupted creation left (we hold the lock: no one else creates)
  local include
  include="$(packages_for "$name" | tr ' ' ',')"
  if [[ "$name" == cuda ]]; then
    # debootstrap cannot use a local package, so the base goes first and apt adds the rest.
    as_root debootstrap --variant=minbase --components="$(components_for "$name")" "$suite" "$new" "$mir" >"$new.log" 2>&1 ||
      { tail -20 "$new.log" >&2; as_root rm -rf "$new"; exit 1; }
    make_cudnn_standin "$new/tmp"
    as_root chroot "$new" dpkg -i /tmp/nvidia-cudnn-standin.deb >>"$new.log" 2>&1 ||
      { tail -20 "$new.log" >&2; as_root rm -rf "$new"; exit 1; }
    as_root chroot "$new" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(packages_for "$name")" >>"$new.log" 2>&1 ||
      { tail -20 "$new.log" >&2; as_root rm -rf "$new"; exit 1; }
  else
    as_root debootstrap --variant=minbase --components="$(components_for "$name")" --include="$include" "$suite" "$new" "$mir" >"$new.log" 2>&1 ||
      { tail -20 "$new.log" >&2; as_root rm -rf "$new"; exit 1; }
  fi
  as_root chroot "$new" apt-get clean
  as_root rm -rf "$new/tmp/"* "$new/var/lib/apt/lists/"*_Packages
  stamp_of "$name" | as_root tee "$new/.olmo-ts-root" >/dev/null
  as_root rm -f "$new.log"
  as_root rm -rf "$dest.old"
  [[ -e "$dest" ]] && as_root mv "$dest" "$dest.old"
  as_root mv "$new" "$dest"
  as_root rm -rf "$dest.old"
  echo "debian-root.sh: $name root ready in $((SECONDS - t0)) s ($(du -sh "$dest" 2>/dev/null | cut -f1))"
}

ensure() {
  local name="$1" dest
  packages_for "$name" >/dev/null
  dest="$(root_path "$name")"
  mkdir -p "$(dirname "$dest")"
  # one creator at a time across checkouts; a creator also waits for runs that use the old root
  # (they hold the lock shared, see run)
  exec 9>"$dest.lock"
  flock -x 9
  if [[ ! -f "$dest/.olmo-ts-root" || "$(cat "$dest/.olmo-ts-root")" != "$(stamp_of "$name")" ]]; then
    create "$name"
  fi
  flock -u 9
}

# run <name> <bash command>: inside the root, in this checkout (mounted at the same path).
run() {
  local name="$1"; shift
  local dest
  dest="$(root_path "$name")"
  [[ -f "$dest/.olmo-ts-root" ]] || { echo "debian-root.sh: no $name root; run: scripts/debian-root.sh ensure $name" >&2; exit 1; }
  # shared: several runs at once are fine, but the root is not replaced under them
  exec 8>"$dest.lock"
  flock -s 8
  run_tmp="$(mktemp -d "${TMPDIR:-/tmp}/olmo-ts-$name.XXXXXX")"  # global: the EXIT trap reads it
  trap 'as_root rm -rf "$run_tmp"' EXIT
  # pass OLMo-ts settings and CPU-dispatch knobs through; everything else starts clean
  local envs=(PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp/home LANG=C.UTF-8 TMPDIR=/tmp)
  while IFS='=' read -r k v; do
    case "$k" in OLMO_TS_*|CI|ONEDNN_*|DNNL_*|ATEN_CPU_CAPABILITY|OPENBLAS_*|OMP_NUM_THREADS) envs+=("$k=$v") ;; esac
  done < <(env)
  local node_bin rc=0 gitdir=""
  node_bin="$(readlink -f "$(command -v node)")"
  # a worktree's git folder lives outside it (tests run `git ls-files`): mount it too, read-only
  gitdir="$(git -C "$checkout" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
  [[ -n "$gitdir" && "$gitdir" != "$checkout"/* ]] || gitdir=""
  as_root unshare --mount --propagation private bash -c '
    set -e
    R=$1 W=$2 T=$3 N=$4 G=$5; shift 5
    # a writable overlay over the cached root: writes (mount points, /tmp, caches) land in $T and
    # vanish afterwards, the shared root stays as it was made
    mkdir -p "$T/upper" "$T/work" "$T/merged"
    if ! mount -t overlay overlay -o "lowerdir=$R,upperdir=$T/upper,workdir=$T/work" "$T/merged" 2>/dev/null; then
      mount --bind "$R" "$T/merged"  # no overlayfs here: use the root itself
    fi
    M="$T/merged"
    mount -t proc proc "$M/proc"
    mount --rbind /dev "$M/dev"
    mount --rbind /sys "$M/sys"
    mkdir -p "$M$W" "$M/tmp/home" "$M/usr/local/bin" "$M/.host"
    chmod 1777 "$M/tmp"
    mount --bind "$W" "$M$W"
    if [ -n "$G" ]; then mkdir -p "$M$G"; mount --bind "$G" "$M$G"; mount -o remount,bind,ro "$M$G"; fi
    touch "$M/usr/local/bin/node"
    mount --bind "$N" "$M/usr/local/bin/node"
    cd "$M"
    pivot_root . .host
    umount -l /.host
    cd "$W"
    exec env -i "$@"
  ' _ "$dest" "$checkout" "$run_tmp" "$node_bin" "$gitdir" "${envs[@]}" bash -c "$*" || rc=$?
  return $rc
}

case "${1:-}" in
  ensure) ensure "${2:?root name}" ;;
  run) name="${2:?root name}"; shift 2; ensure "$name"; run "$name" "$@" ;;
  path) root_path "${2:?root name}" ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
