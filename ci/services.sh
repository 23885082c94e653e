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

# A three-master Redis Cluster on 127.0.0.1:7000-7002, for the cluster tests.
CLUSTER_PORTS="7000 7001 7002"
CLUSTER_DIR=${SESSION_CLUSTER_DIR:-/tmp/session-redis-cluster}
cluster_ok() { redis-cli -p 7000 cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
node_up() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }

if cluster_ok; then
  log "Redis Cluster answers"
else
  log "starting the Redis Cluster"
  for port in $CLUSTER_PORTS; do
    if ! node_up "$port"; then
      rm -rf "$CLUSTER_DIR/$port" && mkdir -p "$CLUSTER_DIR/$port"
      redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$CLUSTER_DIR/$port/nodes.conf" --cluster-node-timeout 5000 \
        --save "" --appendonly no --dir "$CLUSTER_DIR/$port" --daemonize yes \
        --logfile "$CLUSTER_DIR/$port/redis.log" || true
    fi
  done
  for port in $CLUSTER_PORTS; do wait_for "cluster node $port" 40 node_up "$port" || status=1; done
  if ! cluster_ok; then
    # Nodes that answer but form no healthy cluster: reset them and create it anew.
    for port in $CLUSTER_PORTS; do
      redis-cli -p "$port" flushall >/dev/null 2>&1
      redis-cli -p "$port" cluster reset hard >/dev/null 2>&1
    done
    redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 \
      --cluster-replicas 0 --cluster-yes >/dev/null || status=1
    wait_for "Redis Cluster state ok" 60 cluster_ok || status=1
  fi
fi

exit $status
