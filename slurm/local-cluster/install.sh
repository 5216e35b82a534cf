#!/usr/bin/env bash
# Install the Debian packages needed for a local single-node SLURM cluster
# (slurmctld, slurmd, slurmdbd + MariaDB accounting, munge).
# Idempotent: returns in about a second when everything is already present.
# Must run as root. Quiet on success; prints apt's output only on failure.
set -euo pipefail

PACKAGES=(
  slurmctld slurmd slurm-client munge slurmdbd slurm-wlm-mysql-plugin
  mariadb-server-core mariadb-client-core
)

die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log=$(mktemp /tmp/slurm-install.XXXXXX.log)
  policy=/usr/sbin/policy-rc.d
  backup=""
  restore_policy() {
    rm -f "$policy"
    if [ -n "$backup" ]; then mv -f "$backup" "$policy"; fi
  }
  trap restore_policy EXIT
  # Keep package scripts from trying to start daemons (there is no init
  # system here); an existing policy-rc.d is put back afterwards.
  if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/.policy-rc.d.XXXXXX)
    cp -p "$policy" "$backup"
  fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh package lists only when the candidates are unknown.
  need_update=0
  for p in "${missing[@]}"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; break; fi
  done
  if [ "$need_update" = 1 ]; then
    apt-get update >>"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed (log: $log)"; }
  fi
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    # Stale package lists can make the download fail: retry once after an update.
    apt-get update >>"$log" 2>&1 || true
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
      || { tail -n 40 "$log" >&2; die "apt-get install failed (log: $log)"; }
  fi
  rm -f "$log"
fi

# mariadb-server-core does not create the mysql system user.
if ! getent passwd mysql >/dev/null; then
  getent group mysql >/dev/null || groupadd --system mysql
  useradd --system --gid mysql --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin mysql
fi

# munge's postinst normally creates the key; make sure one exists.
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key --force >/dev/null
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
