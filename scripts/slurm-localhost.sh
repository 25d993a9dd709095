#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, from Debian packages, to try the SLURM profile
# (workflow/profiles/slurm) for real: CI's SLURM test uses it, and so can a site before it submits
# to its own cluster. Needs root (apt-get, munged, slurmd).
#
#   scripts/slurm-localhost.sh start    # install if needed, configure, start munged, slurmctld, slurmd
#   scripts/slurm-localhost.sh status   # sinfo
#   scripts/slurm-localhost.sh stop     # stop the daemons started here (by their pid files)
#
# The daemons run as plain processes (no systemd), with their stdio detached so that a CI pipe is
# not held open. The configuration is a test cluster's: no cgroups, no accounting database (so the
# profile asks squeue for job states), finished jobs kept for an hour so squeue still knows them.
set -euo pipefail

STATE=${SLURM_LOCALHOST_STATE:-/var/lib/rapidrelease-slurm}
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)

log() { echo "slurm-localhost: $*" >&2; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null; then
    return
  fi
  log "installing slurmctld, slurmd, slurm-client and munge from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
  local cpus mem_mb
  cpus=$(nproc)
  # below the machine's memory, or slurmd refuses to register the node
  mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log" /etc/slurm
  cat >"$CONF" <<EOF
# written by rapidrelease scripts/slurm-localhost.sh: a one-node test cluster
ClusterName=rapidrelease-localhost
SlurmctldHost=$HOST
SlurmUser=root
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemons() {
  mkdir -p /run/munge
  chown munge:munge /run/munge
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- munged </dev/null >/dev/null 2>&1
  fi
  if ! pgrep -x slurmctld >/dev/null; then
    slurmctld </dev/null >/dev/null 2>&1
  fi
  if ! pgrep -x slurmd >/dev/null; then
    slurmd -N "$HOST" </dev/null >/dev/null 2>&1
  fi
  for _ in $(seq 60); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
      log "node $HOST is up: $(sinfo -h -o '%P %a %D %t %c CPUs')"
      return
    fi
    sleep 0.5
  done
  log "the node did not come up; see $STATE/log/"
  tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  exit 1
}

stop_daemons() {
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  pkill -x munged 2>/dev/null || true
  log "stopped"
}

case "${1:-}" in
  start)
    [ "$(id -u)" = 0 ] || { log "needs root (apt-get, munged, slurmd)"; exit 1; }
    install_packages
    write_config
    start_daemons
    ;;
  status) sinfo ;;
  stop) stop_daemons ;;
  *)
    echo "usage: $0 start|status|stop" >&2
    exit 2
    ;;
esac
