#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379) are running,
# installing them from Debian's packages when they are absent, and that Node.js and npm are
# there for the client SDK checks; `deps.sh browser` also installs Debian's Chromium for the
# console's browser tests (make test does). Idempotent; needs root (or sudo)
# only when something must be installed or started.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "deps: installing PostgreSQL" >&2
    apt_install postgresql postgresql-contrib
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  # Local development and CI connect as postgres over TCP without a password.
  if ! grep -q "phoenix: trust loopback" "$hba"; then
    $SUDO sed -i '1i # phoenix: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "deps: starting PostgreSQL $ver" >&2
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "deps: PostgreSQL did not come up" >&2; exit 1; }
fi

if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "deps: installing Redis" >&2
    apt_install redis-server
  fi
  echo "deps: starting Redis" >&2
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/phoenix.log
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { echo "deps: Redis did not come up" >&2; exit 1; }
fi
# The Redis Cluster tests (make test-cluster) start their own redis-server nodes and join them
# with redis-cli --cluster create.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "deps: installing redis-server and redis-tools" >&2
  apt_install redis-server redis-tools
fi
# The TypeScript client and the OpenAPI linter (scripts/sdk.sh) need Node.js and npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "deps: installing Node.js and npm" >&2
  apt_install nodejs npm
fi
# The console's browser tests drive headless Chromium; without it they are skipped, so a failed
# install is reported, not fatal.
if [ "${1:-}" = browser ] && ! command -v chromium >/dev/null 2>&1; then
  echo "deps: installing Chromium" >&2
  apt_install chromium || echo "deps: Chromium could not be installed; the console's browser tests will be skipped" >&2
fi
echo "deps: PostgreSQL and Redis are up" >&2
