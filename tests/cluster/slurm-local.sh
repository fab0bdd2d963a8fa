#!/usr/bin/env bash
# A real single-node SLURM 22.05 cluster on 127.0.0.1, with accounting (slurmdbd + MariaDB).
#
#   tests/cluster/slurm-local.sh start    # idempotent: returns 0 at once when the cluster is up
#   tests/cluster/slurm-local.sh status   # exit 0 when up (prints sinfo), 1 when not
#   tests/cluster/slurm-local.sh stop     # cancels every job, then stops all daemons
#
# Used by the test fixture `slurm_cluster` (tests/conftest.py) and usable by anyone who
# wants a local cluster to try `robustbench-vit study run NAME --executor slurm`:
#
#   sudo apt-get install -y slurm-wlm slurmdbd munge mariadb-server
#   sudo tests/cluster/slurm-local.sh start
#   robustbench-vit study run lr_sensitivity --executor slurm
#
# Needs root on a Debian 12 machine or container without systemd (it starts every daemon
# by hand). It OWNS /etc/slurm/slurm.conf, /etc/slurm/slurmdbd.conf, the slurm_acct_db
# MariaDB database and /var/spool/slurm{ctld,d}: every start from "down" builds a fresh
# cluster (job ids restart at 1), so do not run it on a machine with a real SLURM.
# Start order and settings follow the facts measured on Debian 12: munge ->
# slurm.conf -> MariaDB -> slurmdbd -> slurmctld -> slurmd -> warm-up job; each step polls
# until ready. Accounting is required: without it sacct fails and submitit waits forever
# for jobs that die without a result. Logs: /var/log/slurm/*.log. Start-up takes ~5 s.
# Environment: SLURM_LOCAL_TIMEOUT (seconds per readiness wait, default 60).
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # the daemons live there; some root shells lack it

ETC=/etc/slurm
RUN=/run/slurm
LOG=/var/log/slurm
CLUSTER=localcluster
DB=slurm_acct_db
DB_USER=slurm
DB_PASS=slurm-local
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
NODE=$(hostname -s)

log() { echo "slurm-local: $*" >&2; }

die() { log "error: $*"; exit 1; }

wait_for() {  # wait_for DESCRIPTION LOGFILE COMMAND...: poll COMMAND until it succeeds
  local what=$1 logfile=$2; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "$what not ready after ${TIMEOUT}s; last lines of $logfile:"
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {  # stop_pidfile NAME PIDFILE: SIGTERM, wait up to 20 s, then SIGKILL
  local name=$1 pidfile=$2 pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name ($pid) ignored SIGTERM; killing"; kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

is_up() {  # controller answers and the node is usable
  scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  sinfo -h -n "$NODE" -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

node_cpus() {  # GNU nproc obeys OMP_NUM_THREADS, which the tests set to 1: count without it
  env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc
}

write_slurm_conf() {
  local cpus mem_mb
  cpus=$(node_cpus)
  # RealMemory must not exceed what slurmd detects; 85% of the total leaves room (nothing enforces it).
  mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.85}' /proc/meminfo)
  cat >"$ETC/slurm.conf" <<EOF
# Written by tests/cluster/slurm-local.sh: a single-node cluster on loopback.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# Short credential lifetime: requeued jobs restart after ~11 s instead of 60-150 s.
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=5
ReturnToService=2
MpiDefault=none
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$ETC/slurmdbd.conf" <<EOF
# Written by tests/cluster/slurm-local.sh: accounting in the local MariaDB.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB
EOF
  chmod 600 "$ETC/slurmdbd.conf"
}

start_munge() {
  local key=/etc/munge/munge.key
  if [[ ! -s $key ]]; then
    mkdir -p /etc/munge
    mungekey -c -k "$key" 2>/dev/null || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge "$key" && chmod 700 /etc/munge && chmod 400 "$key"
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 755 /run/munge
  pid_alive /run/munge/munged.pid || runuser -u munge -- munged
  wait_for munge /var/log/munge/munged.log bash -c 'munge -n | unmunge'
}

start_mariadb() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$LOG/mariadb-install.log" 2>&1
  fi
  if ! mariadb-admin ping >/dev/null 2>&1; then
    nohup mariadbd --user=mysql --bind-address=127.0.0.1 >"$LOG/mariadb.log" 2>&1 &
  fi
  wait_for MariaDB "$LOG/mariadb.log" mariadb-admin ping
  # A fresh accounting database per cluster: job ids restart at 1, old records would collide.
  mariadb <<EOF
DROP DATABASE IF EXISTS $DB;
CREATE DATABASE $DB;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

cmd_start() {
  local t0=$SECONDS
  ((EUID == 0)) || die "needs root (it writes $ETC and starts system daemons)"
  for bin in munged mariadbd slurmdbd slurmctld slurmd sacctmgr; do
    command -v "$bin" >/dev/null || die "$bin not found; install: apt-get install -y slurm-wlm slurmdbd munge mariadb-server"
  done
  if is_up; then log "already up"; return 0; fi
  cmd_stop >/dev/null 2>&1 || true  # half-started leftovers: start from a clean state
  mkdir -p "$ETC" "$RUN" "$LOG"
  rm -rf /var/spool/slurmctld /var/spool/slurmd
  mkdir -p /var/spool/slurmctld /var/spool/slurmd
  start_munge
  write_slurm_conf  # before slurmdbd: sacctmgr reads slurm.conf
  start_mariadb
  slurmdbd
  wait_for slurmdbd "$LOG/slurmdbd.log" sacctmgr -n show cluster
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  slurmctld
  wait_for slurmctld "$LOG/slurmctld.log" bash -c 'scontrol ping | grep -q "is UP"'
  slurmd
  wait_for slurmd "$LOG/slurmd.log" is_up
  # Warm-up: the first seconds after start, accounting lags; wait for one job to be recorded.
  local job
  job=$(sbatch --parsable --output=/dev/null --wrap true)
  wait_for "warm-up job $job" "$LOG/slurmctld.log" \
    bash -c "sacct -n -X -j $job -o State | grep -q COMPLETED"
  log "up in $((SECONDS - t0)) s: cluster $CLUSTER, node $NODE, partition debug ($(node_cpus) CPUs)"
}

cmd_stop() {
  ((EUID == 0)) || die "needs root"
  if pid_alive "$RUN/slurmctld.pid"; then
    # Cancel queued/running jobs first, else a zombie job survives into the next cluster.
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    for _ in $(seq 50); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.2; done
  fi
  stop_pidfile slurmd "$RUN/slurmd.pid"
  stop_pidfile slurmctld "$RUN/slurmctld.pid"
  stop_pidfile slurmdbd "$RUN/slurmdbd.pid"
  stop_pidfile mariadbd /run/mysqld/mysqld.pid
  stop_pidfile munged /run/munge/munged.pid
  log "stopped"
}

cmd_status() {
  if is_up; then sinfo; return 0; fi
  echo "slurm-local: down"
  return 1
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
