#!/usr/bin/env bash
# Stop the local SLURM cluster started by start.sh, using the PID files in the
# state dir (slurmd, slurmctld, slurmdbd, MariaDB, munged, in that order).
# Usage: stop.sh [STATE_DIR]        (default: /var/lib/isda-bench/slurm)
# A process in zombie state counts as stopped. Waits are bounded: TERM, then
# KILL after STOP_WAIT_S seconds (default 20).
set -uo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "${1:-}"

STOP_WAIT_S=${STOP_WAIT_S:-20}
rc=0

# stop_pidfile NAME PIDFILE
stop_pidfile() {
  local name=$1 f=$2 pid
  if ! pid_alive "$f"; then
    rm -f "$f"
    return 0
  fi
  pid=$(pid_of "$f")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_WAIT_S))
  while pid_alive "$f"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "stop.sh: $name (pid $pid) ignored TERM for ${STOP_WAIT_S}s, sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      if pid_alive "$f"; then
        echo "stop.sh: ERROR: $name (pid $pid) still running" >&2
        rc=1
        return 1
      fi
      break
    fi
    sleep 0.2
  done
  # Daemons remove their own pid file on a clean exit; clear what is left.
  rm -f "$f"
}

stop_pidfile slurmd "$SLURMD_PID"
stop_pidfile slurmctld "$CTLD_PID"
stop_pidfile slurmdbd "$DBD_PID"
stop_pidfile mariadbd "$MYSQL_PID"
stop_pidfile munged "$MUNGE_PID"

if [ "$rc" = 0 ]; then
  echo "slurm: cluster stopped (state dir $STATE_DIR)"
fi
exit "$rc"
