#!/usr/bin/env bash
# benches/cpu-split.sh — where each server's CPU goes at one fixed fan-out load: user space vs
# kernel (utime / stime of the server process from /proc/<pid>/stat over 8 s in the middle of
# a 16 s run), next to the loadgen's delivered rate and latency. This is the measurement behind
# "fan-out is bound by the kernel's send path" in BENCHMARKS.md.
#
#   benches/cpu-split.sh [RATE]        # publishes/s over 100 rooms × 50 members (default 1400
#                                      # = 70,000 msgs/s, below every server's knee)
#
# Needs the binaries `benches/compare.sh` builds (it does not build). Server on CPU 0, loadgen
# on CPU 1, like compare.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${1:-1400}
PORT=${PORT_BASE:-24300}
SERVERS=${SERVERS:-"livechat socketioxide node"}
LOADGEN=$ROOT/target/release/livechat-loadgen
TCK=$(getconf CLK_TCK)

cpu_ticks() { # pid -> "utime stime"
  cut -d' ' -f14,15 "/proc/$1/stat"
}

for s in $SERVERS; do
  PORT=$((PORT + 1))
  case $s in
    livechat) taskset -c 0 "$ROOT/target/release/examples/fanout" --listen "127.0.0.1:$PORT" --executors 1 >/dev/null 2>&1 & ;;
    socketioxide) taskset -c 0 "$ROOT/benches/peers/socketioxide/target/release/livechat-peer-socketioxide" --port "$PORT" --workers 1 >/dev/null 2>&1 & ;;
    node) taskset -c 0 node "$ROOT/benches/peers/node/server.mjs" --port "$PORT" >/dev/null 2>&1 & ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
  pid=$!
  for _ in $(seq 50); do ss -Hltn "sport = :$PORT" | grep -q . && break; sleep 0.1; done
  taskset -a -p -c 0 "$pid" >/dev/null
  log=$(mktemp)
  taskset -c 1 "$LOADGEN" --max-seconds 120 fanout --url "http://127.0.0.1:$PORT" --rooms 100 \
    --members 50 --publishers 100 --rate "$RATE" --duration 16 --payload-bytes 64 \
    --server-pid "$pid" --label "$s" >/dev/null 2>"$log" &
  lg=$!
  sleep 8
  read -r u0 k0 < <(cpu_ticks "$pid")
  sleep 8
  read -r u1 k1 < <(cpu_ticks "$pid")
  wait "$lg" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  result=$(grep -o 'delivered [0-9]*/s, p50 [0-9.]* / p99 [0-9.]*' "$log" | tail -1)
  rm -f "$log"
  awk -v s="$s" -v r="$RATE" -v u=$((u1 - u0)) -v k=$((k1 - k0)) -v t="$TCK" -v res="$result" \
    'BEGIN { printf "%-12s %d pub/s: user %5.1f %%  kernel %5.1f %%  of one core; %s ms\n", s, r, 100*u/t/8, 100*k/t/8, res }'
  sleep 1
done
