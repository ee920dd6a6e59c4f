#!/usr/bin/env bash
# A throwaway Slurm cluster on this one machine, from Debian's packages (slurmctld, slurmd,
# slurm-client, munge): its own munged, one slurmctld and one slurmd per node name, all in one folder
# with ports of the caller's choosing, so it never touches /etc/slurm or another Slurm on the machine.
# The tests of scripts/slurm/*.sbatch start it (test/helpers/local-slurm.ts); you can try the
# sbatch scripts on it too. Needs root (slurmd starts jobs as the submitting user).
#
#   local-cluster.sh start DIR [--nodes A,B] [--ctld-port P] [--slurmd-ports P1,P2] [--cpus N] [--owner PID]
#   local-cluster.sh stop DIR
#   source DIR/env.sh    # then sbatch/squeue/scancel/scontrol talk to this cluster
#
# --nodes     node names; each must resolve to this machine, since jobs reach rank 0 through the
#             first name of their node list (default: the short hostname and localhost, or only one
#             of them when the hostname does not resolve or is localhost). Two names give two
#             slurmd daemons on one machine, i.e. 2-node jobs.
# --cpus      CPUs each node advertises (default 4; more than the machine has is fine, thanks to
#             SlurmdParameters=config_overrides): lets a 2-task job start on a 1- or 2-core machine.
# --owner     stop the cluster by itself when process PID ends (a test runner that was killed).
# Ports default to free ones the OS hands out.
set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

say() { printf 'local-slurm: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# alive PIDFILE NAME: the pid in PIDFILE is a running (not zombie) process whose name starts with NAME
alive() {
  local p comm
  [[ -s $1 ]] || return 1
  p=$(<"$1")
  [[ $p =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$p/comm" 2>/dev/null) || return 1
  [[ $comm == "$2"* ]] || return 1
  [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]]
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s
wait_until() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.1
  done
}

# stop_pidfile PIDFILE NAME: SIGTERM, then SIGKILL after 15 s
stop_pidfile() {
  local f=$1 name=$2 p
  if alive "$f" "$name"; then
    p=$(<"$f")
    kill -TERM "$p" 2>/dev/null || true
    wait_until 15 eval "! alive '$f' '$name'" || kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$f"
}

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

resolves() { getent hosts "$1" >/dev/null 2>&1; }

cmd_stop() {
  local dir=$1
  [[ -f $dir/slurm.conf ]] || { say "nothing to stop in $dir"; return 0; }
  export SLURM_CONF=$dir/slurm.conf
  # Jobs first, so that no job's processes outlive the daemons.
  if alive "$dir/slurmctld.pid" slurmctld; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
      say "cancelling jobs $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      wait_until 30 eval '[[ -z $(squeue -h -o %A 2>/dev/null) ]]' || say "jobs still listed after 30 s: $(squeue -h 2>/dev/null | tr '\n' ';')"
    fi
  fi
  local f
  for f in "$dir"/slurmd-*.pid; do [[ -e $f ]] && stop_pidfile "$f" slurmd; done
  stop_pidfile "$dir/slurmctld.pid" slurmctld
  stop_pidfile "$dir/munge/munged.pid" munged
  # The owner watcher, unless it is the one stopping the cluster.
  if [[ -z ${LOCAL_SLURM_FROM_WATCH:-} ]] && alive "$dir/watch.pid" bash && grep -qa 'local-cluster' "/proc/$(<"$dir/watch.pid")/cmdline"; then
    kill -TERM "$(<"$dir/watch.pid")" 2>/dev/null || true
  fi
  rm -f "$dir/watch.pid"
  say "stopped ($dir)"
}

cmd_start() {
  local dir=$1; shift
  local nodes='' ctld_port='' slurmd_ports='' cpus=4 owner=''
  while (($#)); do
    case $1 in
      --nodes) nodes=$2; shift 2 ;;
      --ctld-port) ctld_port=$2; shift 2 ;;
      --slurmd-ports) slurmd_ports=$2; shift 2 ;;
      --cpus) cpus=$2; shift 2 ;;
      --owner) owner=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $(id -u) == 0 ]] || die "needs root (slurmd runs jobs as the user who submits them)"
  local b missing=()
  for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/bin/sbatch /usr/bin/srun; do [[ -x $b ]] || missing+=("$b"); done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: install Debian's slurmctld slurmd slurm-client munge (bash scripts/setup.sh --test does)"

  local host
  host=$(hostname -s)
  if [[ -z $nodes ]]; then
    if [[ $host != localhost ]] && resolves "$host"; then nodes="$host,localhost"; else nodes=localhost; fi
  fi
  local -a names ports
  IFS=, read -r -a names <<<"$nodes"
  local n
  for n in "${names[@]}"; do resolves "$n" || die "node name '$n' does not resolve to an address (jobs find rank 0 by it)"; done
  [[ -n $ctld_port ]] || ctld_port=$(free_port)
  if [[ -n $slurmd_ports ]]; then IFS=, read -r -a ports <<<"$slurmd_ports"; else
    ports=(); for n in "${names[@]}"; do ports+=("$(free_port)"); done
  fi
  ((${#ports[@]} == ${#names[@]})) || die "--slurmd-ports needs one port per node (${#names[@]})"

  mkdir -p "$dir"/{state,log,munge,munge-key}
  chmod 755 "$dir" "$dir/munge"   # munged wants its socket reachable by every user
  chmod 700 "$dir/munge-key"
  for n in "${names[@]}"; do mkdir -p "$dir/spool-$n"; chmod 755 "$dir/spool-$n"; done
  dir=$(cd "$dir" && pwd)
  [[ -e $dir/slurmctld.pid ]] && alive "$dir/slurmctld.pid" slurmctld && die "a cluster is already running in $dir (stop it first)"

  # munge with a key of its own: only root can read it, so only root can forge credentials.
  [[ -s $dir/munge-key/munge.key ]] || { head -c 1024 /dev/urandom >"$dir/munge-key/munge.key"; chmod 400 "$dir/munge-key/munge.key"; }
  local sock=$dir/munge/munge.socket
  munged --socket="$sock" --key-file="$dir/munge-key/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge-key/munged.seed" \
    || die "munged did not start; see $dir/log/munged.log"
  wait_until 20 eval "munge -S '$sock' -n | unmunge -S '$sock'" || die "munged does not answer on $sock"

  local mem
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  {
    echo "# Written by scripts/slurm/local-cluster.sh: a one-machine cluster for tests and try-outs."
    echo "ClusterName=olmots"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmctldPort=$ctld_port"
    echo "SlurmdPort=${ports[0]}"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    # cred_expire is also how long a requeued job waits before it may start again (default 120 s).
    echo "AuthInfo=socket=$sock,cred_expire=5"
    echo "StateSaveLocation=$dir/state"
    echo "SlurmdSpoolDir=$dir/spool-%n"
    echo "SlurmctldPidFile=$dir/slurmctld.pid"
    echo "SlurmdPidFile=$dir/slurmd-%n.pid"
    echo "SlurmctldLogFile=$dir/log/slurmctld.log"
    echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
    # No cgroups here: processes are tracked through /proc, tasks are not bound to CPUs.
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "SwitchType=switch/none"
    echo "MpiDefault=none"
    echo "MailProg=/bin/true"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "SlurmdParameters=config_overrides"
    # Look at pending jobs every second (a requeued job becomes eligible cred_expire seconds later).
    echo "SchedulerParameters=sched_interval=1,bf_interval=1"
    echo "ReturnToService=2"
    echo "KillWait=5"
    echo "InactiveLimit=0"
    local i
    for i in "${!names[@]}"; do
      echo "NodeName=${names[$i]} NodeAddr=127.0.0.1 NodeHostname=${names[$i]} Port=${ports[$i]} CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=local Nodes=$(IFS=,; echo "${names[*]}") Default=YES MaxTime=INFINITE State=UP"
  } >"$dir/slurm.conf"
  export SLURM_CONF=$dir/slurm.conf
  printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" >"$dir/env.sh"
  printf '%s\n' "${names[@]}" >"$dir/nodes"

  # -c: a clean state, no jobs from an earlier run in this folder
  slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start; see $dir/log/slurmctld.log"
  wait_until 30 eval 'scontrol ping | grep -q "is UP"' || { tail -n 20 "$dir/log/slurmctld.log" >&2; die "slurmctld does not answer"; }
  for n in "${names[@]}"; do
    slurmd -N "$n" -f "$SLURM_CONF" || die "slurmd $n did not start; see $dir/log/slurmd-$n.log"
  done
  local want=${#names[@]}
  idle() { [[ $(sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l) -ge $want ]]; }
  if ! wait_until 60 idle; then
    sinfo -N >&2 || true
    tail -n 20 "$dir"/log/slurmd-*.log >&2 || true
    die "the nodes did not become idle within 60 s"
  fi
  if [[ -n $owner ]]; then
    # A watcher in a session of its own stops the cluster when the owner is gone, however it ended.
    setsid bash "${BASH_SOURCE[0]}" watch "$dir" "$owner" </dev/null >>"$dir/log/watch.log" 2>&1 &
  fi
  say "up: nodes ${names[*]} (slurmctld port $ctld_port, slurmd ports ${ports[*]}); source $dir/env.sh"
}

cmd_watch() {
  echo $$ >"$1/watch.pid"
  while kill -0 "$2" 2>/dev/null; do sleep 1; done
  say "owner $2 is gone"
  LOCAL_SLURM_FROM_WATCH=1 cmd_stop "$1"
}

case ${1:-} in
  watch) cmd_watch "$2" "$3" ;;
  start) [[ $# -ge 2 ]] || die "usage: $0 start DIR [options]"; cmd_start "${@:2}" ;;
  stop) [[ $# -ge 2 ]] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
