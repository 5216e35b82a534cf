#!/usr/bin/env bash
# Start a single-node SLURM cluster with real accounting on this machine:
#   munged -> private MariaDB (127.0.0.1) -> slurmdbd -> slurmctld -> slurmd
# Usage: start.sh [STATE_DIR]        (default: /var/lib/isda-bench/slurm)
# Idempotent: does nothing when the cluster is already up and healthy, and
# starts only what is missing otherwise. Run install.sh first. Needs root.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "${1:-}"

# fd 3: the caller's stderr, so fail() is heard even inside redirected checks.
exec 3>&2
fail() {
  local msg=$1; shift
  {
    echo "start.sh: ERROR: $msg"
    local f
    for f in "$@"; do
      if [ -f "$f" ]; then
        echo "----- last lines of $f -----"
        tail -n 25 "$f" || true
      fi
    done
  } >&3
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root"
for cmd in munged mariadbd mariadb mariadb-install-db slurmdbd slurmctld slurmd sinfo sacctmgr; do
  command -v "$cmd" >/dev/null || fail "$cmd not found: run slurm/local-cluster/install.sh"
done

HOST=$(hostname -s)

# --- health checks -----------------------------------------------------------
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
node_state() { timeout 15 sinfo -h -o %T 2>/dev/null | head -n 1; }
node_ready() { case "$(node_state)" in idle | mixed | allocated | alloc | completing) return 0 ;; esac; return 1; }
node_idle() { [ "$(node_state)" = idle ]; }
cluster_registered() {
  timeout 15 sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER_NAME"
}
mysql_ok() {
  # mariadb-admin is not in the -core packages; a trivial query does the job.
  timeout 10 mariadb --defaults-file="$MYSQL_DIR/my.cnf" -N -e 'SELECT 1' >/dev/null 2>&1
}

healthy() {
  munge_ok && pid_alive "$MYSQL_PID" && pid_alive "$DBD_PID" && pid_alive "$CTLD_PID" \
    && pid_alive "$SLURMD_PID" && node_ready && cluster_registered
}

if [ -f "$SLURM_ETC/slurm.conf" ] && healthy; then
  echo "slurm: cluster $CLUSTER_NAME already up (state dir $STATE_DIR)"
  exit 0
fi

mkdir -p "$LOG_DIR" "$STATE_DIR/ctld" "$STATE_DIR/slurmd" "$SLURM_ETC"
chmod 755 "$STATE_DIR"

# --- 1. munge ----------------------------------------------------------------
if ! munge_ok; then
  [ -s /etc/munge/munge.key ] || fail "/etc/munge/munge.key missing: run install.sh"
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 "$MUNGE_DIR"
  # -f: take over a stale socket left by a daemon that did not exit cleanly.
  runuser -u munge -- munged -f --pid-file="$MUNGE_PID" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
    </dev/null >>"$MUNGE_DIR/munged.out" 2>&1 3>&- \
    || fail "munged did not start" "$MUNGE_DIR/munged.out" "$MUNGE_DIR/munged.log"
  wait_for 15 munge_ok || fail "munge does not answer" "$MUNGE_DIR/munged.log"
fi

# --- 2. private MariaDB ------------------------------------------------------
install -d -o mysql -g mysql -m 750 "$MYSQL_DIR"
cat >"$MYSQL_DIR/my.cnf" <<EOF
[mysqld]
datadir=$MYSQL_DIR/data
socket=$MYSQL_SOCK
pid-file=$MYSQL_PID
log-error=$MYSQL_DIR/mariadbd.log
user=mysql
bind-address=127.0.0.1
port=$DB_PORT
skip-name-resolve
innodb_buffer_pool_size=512M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900

[client]
socket=$MYSQL_SOCK
user=root
EOF
chmod 644 "$MYSQL_DIR/my.cnf"

if [ ! -d "$MYSQL_DIR/data/mysql" ]; then
  rm -rf "$MYSQL_DIR/data"
  install -d -o mysql -g mysql -m 750 "$MYSQL_DIR/data"
  mariadb-install-db --defaults-file="$MYSQL_DIR/my.cnf" --user=mysql \
    --skip-test-db --auth-root-authentication-method=socket \
    >"$MYSQL_DIR/install-db.log" 2>&1 \
    || fail "mariadb-install-db failed" "$MYSQL_DIR/install-db.log"
fi

if ! pid_alive "$MYSQL_PID"; then
  rm -f "$MYSQL_PID"
  if [ -S "$MYSQL_SOCK" ]; then rm -f "$MYSQL_SOCK"; fi
  setsid mariadbd --defaults-file="$MYSQL_DIR/my.cnf" \
    </dev/null >>"$MYSQL_DIR/mariadbd.out" 2>&1 3>&- &
  mysql_launch_pid=$!
  # Up, or stop waiting as soon as the server process has exited.
  mysql_up_or_dead() { mysql_ok || ! kill -0 "$mysql_launch_pid" 2>/dev/null; }
  wait_for "$WAIT_S" mysql_up_or_dead && mysql_ok \
    || fail "MariaDB did not come up on 127.0.0.1:$DB_PORT" "$MYSQL_DIR/mariadbd.log" "$MYSQL_DIR/mariadbd.out"
fi
mysql_ok || fail "MariaDB does not answer" "$MYSQL_DIR/mariadbd.log"

# Database and user for slurmdbd (password generated once per state dir).
DB_PASS_FILE=$STATE_DIR/db.pass
if [ ! -s "$DB_PASS_FILE" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$DB_PASS_FILE")
fi
DB_PASS=$(cat "$DB_PASS_FILE")
timeout 30 mariadb --defaults-file="$MYSQL_DIR/my.cnf" >"$LOG_DIR/db-setup.log" 2>&1 <<EOF \
  || fail "could not create the slurmdbd database/user" "$LOG_DIR/db-setup.log"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF

# --- configuration files -----------------------------------------------------
# Node shape from slurmd -C (CPUs, boards, sockets, cores, threads).
NODE_SHAPE=$(slurmd -C | head -n 1 | tr ' ' '\n' \
  | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
[ -n "$NODE_SHAPE" ] || fail "could not read the node shape from 'slurmd -C'"
MEM_MB=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)

# write_if_changed FILE MODE: install stdin as FILE when its content differs.
write_if_changed() {
  local dest=$1 mode=$2 tmp
  tmp=$(mktemp "$dest.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then rm -f "$tmp"; else mv -f "$tmp" "$dest"; fi
}

write_if_changed "$SLURM_ETC/slurmdbd.conf" 600 <<EOF
# Generated by slurm/local-cluster/start.sh (state dir $STATE_DIR)
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
PidFile=$DBD_PID
LogFile=$LOG_DIR/slurmdbd.log
EOF

write_if_changed "$SLURM_ETC/slurm.conf" 644 <<EOF
# Generated by slurm/local-cluster/start.sh (state dir $STATE_DIR)
ClusterName=$CLUSTER_NAME
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
JobRequeue=1
ReturnToService=2
MinJobAge=600
KillWait=5
MailProg=/bin/true
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 ${NODE_SHAPE}RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# --- 3. slurmdbd -------------------------------------------------------------
if ! pid_alive "$DBD_PID"; then
  rm -f "$DBD_PID"
  slurmdbd </dev/null >>"$LOG_DIR/slurmdbd.out" 2>&1 3>&- \
    || fail "slurmdbd did not start" "$LOG_DIR/slurmdbd.log" "$LOG_DIR/slurmdbd.out"
fi
# sacctmgr answers once slurmdbd is connected to the database; registering the
# cluster up front makes slurmctld's own registration predictable.
dbd_since=$SECONDS
register_cluster() {
  # Give the daemon a few seconds to write its pid file, then stop waiting on a dead one.
  if [ $((SECONDS - dbd_since)) -ge 5 ] && ! pid_alive "$DBD_PID"; then
    fail "slurmdbd exited" "$LOG_DIR/slurmdbd.log" "$LOG_DIR/slurmdbd.out"
  fi
  cluster_registered || timeout 15 sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null 2>&1
  cluster_registered
}
wait_for "$WAIT_S" register_cluster \
  || fail "slurmdbd does not answer / cluster $CLUSTER_NAME not registered" "$LOG_DIR/slurmdbd.log" "$MYSQL_DIR/mariadbd.log"

# --- 4. slurmctld, slurmd ----------------------------------------------------
if ! pid_alive "$CTLD_PID"; then
  rm -f "$CTLD_PID"
  slurmctld </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 3>&- \
    || fail "slurmctld did not start" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmctld.out"
fi
if ! pid_alive "$SLURMD_PID"; then
  rm -f "$SLURMD_PID"
  slurmd </dev/null >>"$LOG_DIR/slurmd.out" 2>&1 3>&- \
    || fail "slurmd did not start" "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmd.out"
fi

# Wait for the node to report idle; a node left down/drained by an earlier
# unclean stop is resumed once.
deadline=$((SECONDS + WAIT_S))
resumed=0
wait_start=$SECONDS
while ! node_idle; do
  if [ $((SECONDS - wait_start)) -ge 5 ]; then
    pid_alive "$CTLD_PID" || fail "slurmctld exited" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmctld.out"
    pid_alive "$SLURMD_PID" || fail "slurmd exited" "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmd.out"
  fi
  state=$(node_state)
  if node_ready; then break; fi
  if [ "$resumed" = 0 ] && [ $((deadline - SECONDS)) -lt $((WAIT_S - 5)) ]; then
    case "$state" in
      down* | drain* | fail*)
        timeout 15 scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
        resumed=1 ;;
    esac
  fi
  [ "$SECONDS" -lt "$deadline" ] \
    || fail "node $HOST not idle after ${WAIT_S}s (state: ${state:-no answer})" \
      "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"
  sleep 0.25
done
wait_for "$WAIT_S" cluster_registered \
  || fail "cluster $CLUSTER_NAME not listed by sacctmgr" "$LOG_DIR/slurmdbd.log" "$LOG_DIR/slurmctld.log"

echo "slurm: cluster $CLUSTER_NAME up (state dir $STATE_DIR)"
