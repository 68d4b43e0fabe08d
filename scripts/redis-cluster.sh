#!/usr/bin/env bash
# scripts/redis-cluster.sh — a throwaway Redis Cluster of three masters on loopback, for the
# tests and for trying livechat against a cluster.
#
#   scripts/redis-cluster.sh start DIR   starts 3 masters (free ports, AOF fsynced on every
#                                        write) in DIR and prints redis+cluster://h:p,h:p,h:p
#   scripts/redis-cluster.sh stop DIR    stops them
#
# Needs redis-server and redis-cli (Debian's redis-server package, Redis >= 7 for sharded
# Pub/Sub).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# A free port below 55536 whose cluster bus port (port + 10000) is free too.
free_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 45000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
PY
}

case $cmd in
start)
  mkdir -p "$dir"
  ports=()
  for i in 1 2 3; do
    port=$(free_port)
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/$port" --cluster-enabled yes \
      --cluster-node-timeout 2000 --appendonly yes --appendfsync always --save "" \
      --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
    ports+=("$port")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  hosts=()
  for p in "${ports[@]}"; do hosts+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1
  for p in "${ports[@]}"; do
    for _ in $(seq 1 300); do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
  done
  printf '%s\n' "${ports[@]}" >"$dir/ports"
  (IFS=,; echo "redis+cluster://${hosts[*]}")
  ;;
stop)
  for pid in "$dir"/*/redis.pid; do
    [[ -f $pid ]] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
