#!/usr/bin/env bash
# benches/compare.sh — livechat vs. socketioxide vs. Node socket.io, same scenarios, same load.
#
# Builds everything in release (livechat's fan-out example and `livechat`, the loadgen, the
# socketioxide peer; `npm ci` for the Node peer), then, server by server:
#   idle     N idle WebSocket Socket.IO connections → server RSS delta per connection
#   fanout   the same fixed offered load on every server → delivery latency p50/p99/p999
#   sweep    rising offered load → capacity = delivered msgs/s at p99 ≤ 50 ms
# and, against `livechat serve` only: the chat pipeline (fixed rate + ack-p99 ≤ 5 ms sweep) and
# accept contention. Prints one table (absolute numbers, livechat/peer ratios).
#
# CPU placement (2-core machine): the server runs on CPU 0 with 1 executor / 1 tokio worker /
# Node's single thread; the loadgen (one thread) runs on CPU 1. livechat pins executor i to
# online CPU i itself, so the server side must be CPU 0. Override with SERVER_CPU/LOADGEN_CPU.
# Both run at `nice -n $NICE` (default -20; needs root or CAP_SYS_NICE, else ignored) so that
# background jobs on a shared machine disturb them less; WAIT_IDLE=S waits up to S seconds for
# the machine to be idle (< 10 % CPU busy) before each server run.
#
#   benches/compare.sh                 # full run (~15-20 min)
#   QUICK=1 benches/compare.sh         # smoke run (~3 min)
#   SERVERS="livechat node" SKIP_CHAT=1 SKIP_BUILD=1 benches/compare.sh
#
# Results: $OUT (default target/bench-compare/<date>/): *.jsonl (loadgen JSON lines), *.log,
# table.md. Network traffic is loopback only; every run is bounded by --duration/--hold and
# --max-seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
SERVERS=${SERVERS:-"livechat socketioxide node"}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
EXECUTORS=${EXECUTORS:-1}
NICE=${NICE:--20}
WAIT_IDLE=${WAIT_IDLE:-0}
PORT_BASE=${PORT_BASE:-24000} # below the ephemeral range (32768-60999): no clash with client ports
OUT=${OUT:-$ROOT/target/bench-compare/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

if [[ $QUICK == 1 ]]; then
  IDLE_COUNTS=${IDLE_COUNTS:-"500 2000"}
  IDLE_HOLD=3
  FAN_ROOMS=20 FAN_MEMBERS=20 FAN_PUBS=20 FAN_SPREAD=0
  FAN_RATE=${FAN_RATE:-200}            # publishes/s at the equal-load point (× members = msgs/s)
  FAN_DURATION=3
  SWEEP_START=200 SWEEP_FACTOR=2 SWEEP_DURATION=3 SWEEP_STEPS=4 SWEEP_REFINE=0 SWEEP_RETRIES=0
  CHAT_CONV=50 CHAT_RATE=500 CHAT_DURATION=3
  CHAT_SWEEP_START=500 CHAT_SWEEP_STEPS=3
  ACCEPT_CONV=100 ACCEPT_AGENTS=8
else
  IDLE_COUNTS=${IDLE_COUNTS:-"2000 10000"}
  IDLE_HOLD=5
  # 5,000 connections; connecting them over 25 s (the pingInterval of all three servers)
  # spreads the heartbeats instead of pinging all 5,000 sockets at the same instant.
  FAN_ROOMS=100 FAN_MEMBERS=50 FAN_PUBS=100 FAN_SPREAD=25
  FAN_RATE=${FAN_RATE:-600}            # 600 pub/s × 50 = 30,000 msgs/s (~½ of Node's capacity)
  FAN_DURATION=20
  SWEEP_START=600 SWEEP_FACTOR=1.3 SWEEP_DURATION=10 SWEEP_STEPS=10 SWEEP_REFINE=2 SWEEP_RETRIES=1
  CHAT_CONV=500 CHAT_RATE=5000 CHAT_DURATION=20
  CHAT_SWEEP_START=5000 CHAT_SWEEP_STEPS=10
  ACCEPT_CONV=500 ACCEPT_AGENTS=16
fi

LOADGEN=$ROOT/target/release/livechat-loadgen
FANOUT_BIN=$ROOT/target/release/examples/fanout
LIVECHAT_BIN=$ROOT/target/release/livechat
SX_DIR=$ROOT/benches/peers/socketioxide
SX_BIN=$SX_DIR/target/release/livechat-peer-socketioxide
NODE_DIR=$ROOT/benches/peers/node

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building (release)"
  (cd "$ROOT" && cargo build --release -p livechat-gateway --example fanout --bin livechat)
  (cd "$ROOT" && cargo build --release -p livechat-loadgen)
  (cd "$SX_DIR" && cargo build --release --locked)
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# As many descriptors as we may have (10,000 idle connections need > 10,000 on both sides).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PIN_S=(taskset -c "$SERVER_CPU")
PIN_L=(taskset -c "$LOADGEN_CPU")
if nice -n "$NICE" true 2>/dev/null && [[ $(nice -n "$NICE" nice) == "$NICE" ]]; then
  PIN_S=(nice -n "$NICE" "${PIN_S[@]}")
  PIN_L=(nice -n "$NICE" "${PIN_L[@]}")
else
  log "cannot renice to $NICE; running at the default priority"
fi

cpu_busy_pct() { # CPU busy over 2 s, all CPUs, from /proc/stat
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

wait_idle() {
  [[ $WAIT_IDLE -gt 0 ]] || return 0
  local until=$(( $(date +%s) + WAIT_IDLE )) busy
  while :; do
    busy=$(cpu_busy_pct)
    [[ $busy -lt 10 ]] && return 0
    if [[ $(date +%s) -ge $until ]]; then
      log "WARNING: machine still ${busy}% busy after waiting ${WAIT_IDLE}s; going on"
      return 0
    fi
    log "machine ${busy}% busy (other jobs); waiting"
    sleep 8
  done
}

log "RLIMIT_NOFILE $(ulimit -n); loadavg $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  log "WARNING: the machine is not idle (loadavg above); numbers will be noisy"
fi

# ---------------------------------------------------------------------------------------------
# Servers
SERVER_PID=
PORT=$PORT_BASE

start_server() { # name -> SERVER_PID, PORT
  local name=$1
  PORT=$((PORT + 1))
  if ss -Hltn "sport = :$PORT" | grep -q .; then
    log "port $PORT is busy (a stale server? livechat uses SO_REUSEPORT, a second one would share it)"
    exit 1
  fi
  local slog=$OUT/server-$name-$PORT.log
  wait_idle
  case $name in
    livechat)
      "${PIN_S[@]}" "$FANOUT_BIN" --listen "127.0.0.1:$PORT" --executors "$EXECUTORS" >"$slog" 2>&1 &
      ;;
    livechat-serve)
      LIVECHAT_CHAT_QUEUE_MAX_CONCURRENT_BY_AGENT=1000000 LIVECHAT_CHAT_SECURITY_RATE_EVENTS_PER_SECOND=1000000 LIVECHAT_CHAT_SECURITY_RATE_BURST=1000000 \
        "${PIN_S[@]}" "$LIVECHAT_BIN" serve --listen "127.0.0.1:$PORT" --max-connections-per-ip 0 --rest-rate 0 --drain-delay 0ms --executors "$EXECUTORS" >"$slog" 2>&1 &
      ;;
    socketioxide)
      "${PIN_S[@]}" "$SX_BIN" --port "$PORT" --workers "$EXECUTORS" >"$slog" 2>&1 &
      ;;
    node)
      "${PIN_S[@]}" node "$NODE_DIR/server.mjs" --port "$PORT" >"$slog" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 200); do
    if grep -q "listening on http://" "$slog"; then
      # livechat pins executor i to the i-th CPU of glommio's CpuSet::online(), a HashSet whose
      # order changes from run to run, and ignores taskset: re-pin every thread here.
      taskset -a -p -c "$SERVER_CPU" "$SERVER_PID" >/dev/null
      local t
      for t in /proc/"$SERVER_PID"/task/*; do
        if [[ $(awk '/^Cpus_allowed_list/ {print $2}' "$t/status") != "$SERVER_CPU" ]]; then
          log "could not pin $name thread $t to CPU $SERVER_CPU"; exit 1
        fi
      done
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  log "$name did not start:"; cat "$slog" >&2; exit 1
}

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop_server EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

loadgen() { # name scenario args...   (JSON lines → $OUT/name.jsonl; progress → stderr + name.log)
  local name=$1; shift
  if ! "${PIN_L[@]}" "$LOADGEN" --max-seconds 900 "$@" 2>&1 >>"$OUT/$name.jsonl" |
    grep --line-buffered -v RLIMIT_NOFILE | tee -a "$OUT/$name.log" >&2; then
    log "loadgen failed ($name)"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Scenarios

run_idle() { # server count
  local s=$1 n=$2 ready=$OUT/ready-$1-$2
  start_server "$s"
  sleep 1
  local before; before=$(rss_kib "$SERVER_PID")
  rm -f "$ready"
  "${PIN_L[@]}" "$LOADGEN" --max-seconds 600 idle --url "http://127.0.0.1:$PORT" \
    --connections "$n" --hold "$IDLE_HOLD" --ready-file "$ready" --label "$s" \
    >>"$OUT/idle-$s-$n.jsonl" 2>>"$OUT/idle-$s-$n.log" &
  local lg=$!
  for _ in $(seq 1200); do [[ -f $ready ]] && break; kill -0 $lg 2>/dev/null || break; sleep 0.1; done
  sleep 2 # let the last handshakes settle
  local after; after=$(rss_kib "$SERVER_PID")
  local connected; connected=$(cat "$ready" 2>/dev/null || echo 0)
  wait $lg || log "idle loadgen failed ($s $n)"
  local alive=0; kill -0 "$SERVER_PID" 2>/dev/null && alive=1
  stop_server
  local per; per=$(awk -v a="$after" -v b="$before" -v c="${connected:-0}" 'BEGIN { if (c > 0) printf "%.2f", (a - b) / c; else print "null" }')
  printf '{"scenario":"idle-rss","label":"%s","connections":%d,"connected":%d,"rss_before_kib":%d,"rss_after_kib":%d,"kib_per_conn":%s,"server_alive":%d}\n' \
    "$s" "$n" "${connected:-0}" "$before" "$after" "$per" "$alive" >>"$OUT/results.jsonl"
  log "idle $s $n: connected ${connected:-0}, RSS $before → $after KiB ($per KiB/conn)"
}

fan_args() {
  echo --url "http://127.0.0.1:$PORT" --rooms "$FAN_ROOMS" --members "$FAN_MEMBERS" \
    --publishers "$FAN_PUBS" --connect-spread "$FAN_SPREAD" --server-pid "$SERVER_PID"
}

run_fanout() { # server
  local s=$1
  start_server "$s"
  # shellcheck disable=SC2046
  loadgen "fanout-$s" fanout $(fan_args) --rate "$FAN_RATE" --duration "$FAN_DURATION" --label "$s" || true
  stop_server
  start_server "$s"
  # shellcheck disable=SC2046
  loadgen "sweep-$s" fanout $(fan_args) --sweep --rate "$SWEEP_START" --factor "$SWEEP_FACTOR" \
    --duration "$SWEEP_DURATION" --max-steps "$SWEEP_STEPS" --refine "$SWEEP_REFINE" \
    --retries "$SWEEP_RETRIES" --label "$s" || true
  stop_server
}

run_chat() {
  start_server livechat-serve
  loadgen chat chat --url "http://127.0.0.1:$PORT" --conversations "$CHAT_CONV" \
    --rate "$CHAT_RATE" --duration "$CHAT_DURATION" --server-pid "$SERVER_PID" --label livechat || true
  stop_server
  start_server livechat-serve
  loadgen chat-sweep chat --url "http://127.0.0.1:$PORT" --conversations "$CHAT_CONV" --sweep \
    --rate "$CHAT_SWEEP_START" --factor "$SWEEP_FACTOR" --duration "$SWEEP_DURATION" \
    --max-steps "$CHAT_SWEEP_STEPS" --refine "$SWEEP_REFINE" --retries "$SWEEP_RETRIES" \
    --p99-limit-ms 5 --server-pid "$SERVER_PID" --label livechat || true
  stop_server
  start_server livechat-serve
  loadgen accept accept --url "http://127.0.0.1:$PORT" --conversations "$ACCEPT_CONV" \
    --agents "$ACCEPT_AGENTS" --label livechat || true
  stop_server
}

START=$(date +%s)
for s in $SERVERS; do
  for n in $IDLE_COUNTS; do run_idle "$s" "$n"; done
done
for s in $SERVERS; do run_fanout "$s"; done
[[ ${SKIP_CHAT:-0} == 1 ]] || run_chat
log "scenarios took $(( $(date +%s) - START )) s"

# ---------------------------------------------------------------------------------------------
# Table
find "$OUT" -maxdepth 1 -name '*.jsonl' ! -name all.jsonl -print0 | sort -z | xargs -0 cat >"$OUT/all.jsonl"
{
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- gateway core shard-router 2>/dev/null || echo ' (+ uncommitted server changes)'), QUICK=$QUICK;"
  echo "$(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r); server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU."
  echo
} | tee "$OUT/table.md"
python3 "$ROOT/benches/loadgen/table.py" "$OUT/all.jsonl" $SERVERS | tee -a "$OUT/table.md"
