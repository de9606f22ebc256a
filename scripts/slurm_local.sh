#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests/slurm (root, Debian 12):
#   scripts/slurm_local.sh up     install slurm-wlm + munge if missing, write the config, start
#                                 munged, slurmctld and slurmd, wait until the node is idle
#   scripts/slurm_local.sh down   stop the daemons (jobs are cancelled first)
# The node claims 64 CPUs and 8 GPUs it does not have (SlurmdParameters=config_overrides, fake
# GPU device files under $SQ_SLURM_DIR/dev) so that slurm/quantize.sbatch's own #SBATCH
# defaults (one node, 8 GPUs, 8 CPUs per task) can be submitted as written. No cgroups
# (proctrack/linuxproc, task/none), no accounting. Config and state live in $SQ_SLURM_DIR
# (default /tmp/sq-slurm); /etc/slurm/slurm.conf is written only when it does not exist or was
# written by this script.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt_need.sh
DIR=${SQ_SLURM_DIR:-/tmp/sq-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by shardquant scripts/slurm_local.sh"

down() {
  scancel --full --quiet -u root 2>/dev/null || true
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  for _ in $(seq 50); do pgrep -x 'slurmd|slurmctld' >/dev/null || break; sleep 0.2; done
  pkill -9 -x 'slurmd|slurmctld' 2>/dev/null || true
  echo "slurm_local: daemons stopped"
}

up() {
  apt_need slurm_local slurm-wlm slurm-client munge
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "slurm_local: $CONF exists and was not written by this script; not touching it" >&2
    exit 3
  fi
  down >/dev/null 2>&1 || true
  mkdir -p "$DIR"/{state,spool,log,dev} /etc/slurm /run/munge /var/log/munge
  # Fake GPUs: character devices with /dev/null's numbers (nothing opens them; Slurm only needs
  # a File= per GPU to count and hand out).
  for i in 0 1 2 3 4 5 6 7; do
    [ -e "$DIR/dev/gpu$i" ] || mknod "$DIR/dev/gpu$i" c 1 3
  done
  local host
  host=$(hostname -s)
  cat >"$CONF" <<EOF
$MARK
ClusterName=sqlocal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
KillWait=5
GresTypes=gpu
SlurmdParameters=config_overrides
NodeName=$host CPUs=64 Boards=1 SocketsPerBoard=1 CoresPerSocket=64 ThreadsPerCore=1 RealMemory=16000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
  echo "Name=gpu File=$DIR/dev/gpu[0-7]" >/etc/slurm/gres.conf
  # munge: a key once, then the daemon (it refuses keys readable by others).
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/log/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  slurmctld -i
  slurmd
  for _ in $(seq 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^idle'; then
      echo "slurm_local: up ($host: 64 CPUs, 8 fake GPUs claimed; config $CONF, logs $DIR/log)"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm_local: the node did not become idle in 20 s:" >&2
  sinfo >&2 || true
  tail -20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  exit 3
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: scripts/slurm_local.sh up|down" >&2; exit 2 ;;
esac
