# Shared settings and helpers for start.sh / stop.sh (sourced, not run).
# shellcheck shell=bash

LC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LC_DIR/../.." && pwd)

# Outside the checkout by default: munged and mariadbd run as their own users and must be able to
# reach their folders, which a checkout under a private directory (mktemp -d, a home) would forbid.
# The cluster is one per machine anyway (/etc/slurm, the database port).
STATE_DIR=${1:-${ISDA_BENCH_SLURM_STATE:-/var/lib/isda-bench/slurm}}
mkdir -p "$STATE_DIR"
chmod 755 "$STATE_DIR" "$(dirname "$STATE_DIR")" 2>/dev/null || true
STATE_DIR=$(cd "$STATE_DIR" && pwd)

CLUSTER_NAME=${SLURM_LOCAL_CLUSTER_NAME:-isdabench}
DB_PORT=${SLURM_LOCAL_DB_PORT:-3306}
DB_NAME=slurm_acct_db
DB_USER=slurm
WAIT_S=${SLURM_LOCAL_WAIT_S:-60}

SLURM_ETC=/etc/slurm
LOG_DIR=$STATE_DIR/log
MUNGE_DIR=$STATE_DIR/munge
MYSQL_DIR=$STATE_DIR/mysql

MUNGE_PID=$MUNGE_DIR/munged.pid
MYSQL_PID=$MYSQL_DIR/mariadbd.pid
MYSQL_SOCK=$MYSQL_DIR/mariadbd.sock
DBD_PID=$STATE_DIR/slurmdbd.pid
CTLD_PID=$STATE_DIR/slurmctld.pid
SLURMD_PID=$STATE_DIR/slurmd.pid

# pid_alive PIDFILE: true when the file names a running process that is not
# a zombie (daemonised processes may linger as zombies without a reaper).
pid_alive() {
  local f=$1 pid state
  [ -s "$f" ] || return 1
  # The daemon may remove its pid file at any moment while it exits.
  pid=$( { tr -dc '0-9' <"$f"; } 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  [ -r "/proc/$pid/stat" ] || return 1
  # Field 3 of /proc/PID/stat is the state; the command name may hold spaces.
  state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

pid_of() { { tr -dc '0-9' <"$1"; } 2>/dev/null || true; }

# wait_for SECONDS CMD...: run CMD every 0.25 s until it succeeds.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}
