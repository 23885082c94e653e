#!/usr/bin/env bash
# Starts the test services that do not answer: PostgreSQL, MariaDB, Redis. Idempotent.
# Uses the servers installed on the machine (Debian packages); no Docker needed.
set -uo pipefail

log() { printf 'services: %s\n' "$*"; }

wait_for() { # name, attempts, command...
  local name=$1 attempts=$2
  shift 2
  for _ in $(seq "$attempts"); do
    if "$@" >/dev/null 2>&1; then log "$name answers"; return 0; fi
    sleep 0.5
  done
  log "$name does not answer"; return 1
}

postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
mariadb_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

status=0

if ! postgres_up; then
  log "starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_for PostgreSQL 60 postgres_up || status=1
else
  log "PostgreSQL answers"
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true

if ! mariadb_up; then
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_for MariaDB 60 mariadb_up || status=1
else
  log "MariaDB answers"
fi
mariadb -h 127.0.0.1 -P 3306 -u root -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true

if ! redis_up; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_for Redis 40 redis_up || status=1
else
  log "Redis answers"
fi

exit $status
