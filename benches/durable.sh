#!/usr/bin/env bash
# benches/durable.sh — what PostgreSQL (durable conversation metadata) and Kafka (analytics
# events) cost one node. Numbers go to BENCHMARKS.md ("PostgreSQL and Kafka").
#
# Layout on a 2-CPU machine: `livechat serve --executors 1` (all of its threads: the executor,
# the IO pool, librdkafka's) on CPU 0; redis-server, PostgreSQL (the server processes serving
# this benchmark's database), the Kafka-compatible broker (tansu, in memory) and the loadgen on
# CPU 1 — there is no third CPU, so the backends and the loadgen share one; each one's CPU is
# reported. The node and the loadgen run at nice -20 when allowed (as in redis.sh).
# Steps:
#   a. lifecycle: `livechat-loadgen lifecycle` (C workers looping start → queue → accept →
#      close over keep-alive REST, closed loop) against Redis only vs Redis + PostgreSQL
#      (--io-threads 1 and 2), interleaved, each configuration twice; `/metrics` deltas give
#      rows per group commit; then Redis + PostgreSQL at 1, 8 and 128 workers (group commit's
#      curve);
#   b. events: Redis + Kafka, the chat pipeline at fixed rates; events delivered per second
#      (delivery reports, sampled from /metrics) and dropped events (must stay 0);
#   d. cost: the chat pipeline at one fixed rate on Redis / + PostgreSQL / + Kafka / + both
#      (D_CFGS), interleaved, D_ROUNDS times: CPU per stored message of each node thread and each backend;
#   c. chat capacity: the sweep of redis.sh (stored msgs/s with ack p99 ≤ 5 ms), Redis only vs
#      Redis + PostgreSQL + Kafka, interleaved A, B, A, B.
# PostgreSQL: $LIVECHAT_BENCH_DATABASE_URL if set (used as is, table truncated between runs);
# else a fresh database `lcbench_<ts>` on 127.0.0.1:5432 (dropped at the end); else a
# throwaway cluster (scripts/pg-throwaway.sh) started on CPU 1. The PostgreSQL processes that
# serve the node's pool are moved to CPU 1 (`taskset -p`) once connected.
# Usage: benches/durable.sh   (QUICK=1 for a short smoke run; SKIP_BUILD=1 to reuse binaries;
#        PARTS="a b d c" to choose steps; WAIT_IDLE=S waits up to S s for < 10 % CPU busy
#        before each measurement, as compare.sh; the parameters below, e.g. SWEEP_START=1000,
#        can be set from the environment; SUMMARY_ONLY=1 OUT=dir prints the summary of an earlier
#        run; LAYOUT=split puts the node's IO threads on CPU 1, see place_io_threads;
#        PROFILE=1 adds a perf profile of the node to each fixed-rate run, see profile_node).
#        Results: $OUT (target/bench-durable/<date>/), summary.txt at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
PARTS=${PARTS:-a b d c}
LAYOUT=${LAYOUT:-shared}
TS=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/target/bench-durable/$TS}
mkdir -p "$OUT"
LOADGEN=$ROOT/target/release/livechat-loadgen
LIVECHAT_BIN=$ROOT/target/release/livechat
if [[ $QUICK == 1 ]]; then
  defaults=(LC_DURATION=3 LC_ROUNDS=1 LC_CLIENTS=32 LC_CURVE=8 CONV=50 EV_RATES=500 EV_DURATION=3
    SWEEP_START=1000 SWEEP_STEPS=3 DURATION=3 SWEEP_ROUNDS=1 D_RATE=500 D_DURATION=3 D_ROUNDS=1
    "D_CFGS=redis pg kafka all3")
else
  defaults=(LC_DURATION=20 LC_ROUNDS=2 LC_CLIENTS=32 "LC_CURVE=1 8 128" CONV=500 "EV_RATES=5000 8000"
    EV_DURATION=20 SWEEP_START=1500 SWEEP_STEPS=12 DURATION=20 SWEEP_ROUNDS=2 D_RATE=3000 D_DURATION=10
    D_ROUNDS=2 "D_CFGS=redis pg kafka all3")
fi
for kv in "${defaults[@]}"; do # each one can be set from the environment
  name=${kv%%=*}
  [[ -n ${!name:-} ]] || printf -v "$name" '%s' "${kv#*=}"
done

log() { printf '[durable-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Prints (and writes to $OUT/summary.txt) the results found in $OUT.
summary() {
python3 - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, os, sys
out = sys.argv[1]
def jl(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
print("## a. lifecycle (closed loop, REST)")
for r in jl("lifecycle.jsonl"):
    l = r["latency"]
    print(f"{r['label']:<22} clients {r['clients']:>3}: {r['conversations_per_s']:7.0f} conv/s = {r['steps_per_s']:7.0f} steps/s"
          f" | p50/p99 ms start {l['start']['p50_ms']:.2f}/{l['start']['p99_ms']:.2f} queue {l['queue']['p50_ms']:.2f}/{l['queue']['p99_ms']:.2f}"
          f" accept {l['accept']['p50_ms']:.2f}/{l['accept']['p99_ms']:.2f} close {l['close']['p50_ms']:.2f}/{l['close']['p99_ms']:.2f}"
          f" | errors {r['errors']} | CPU node {r['server_cpu_pct'] or 0:.0f}% backends {r['backend_cpu_pct'] or 0:.0f}%"
          f" loadgen {r['loadgen_cpu_pct']:.0f}% other {r['foreign_cpu_pct'] or 0:.0f}%")
p = os.path.join(out, "lifecycle-db.txt")
if os.path.exists(p):
    print(open(p).read().rstrip())
p = os.path.join(out, "chat-fixed.txt")
if os.path.exists(p):
    print("## b, d. chat pipeline at fixed rates")
    print(open(p).read().rstrip())
sw = [r for r in jl("chat-sweep.jsonl") if r.get("scenario") == "chat-sweep"]
if sw:
    print("## c. chat capacity (stored msgs/s, ack p99 ≤ 5 ms)")
    for r in sw:
        steps = [x for x in jl("chat-sweep.jsonl") if x.get("scenario") == "chat" and x["label"] == r["label"]]
        trail = " ".join(f"{x['rate_per_s']:.0f}:{'ok' if x['ok'] else 'FAIL'}({x['ack_p99_ms']:.1f}ms,other {x['foreign_cpu_pct'] or 0:.0f}%)" for x in steps)
        print(f"{r['label']}: {r['capacity_stored_per_s']:.0f} (ack p99 {r['capacity_ack_p99_ms']:.2f} ms; limited by: {r['limited_by']})"
              f" | {len(steps)} step runs: {trail}")
    cap = {}
    for r in sw:
        cap.setdefault(r["label"].split("-")[1], []).append(r["capacity_stored_per_s"])
    if "redis" in cap and "all3" in cap:
        a, b = sum(cap["redis"]) / len(cap["redis"]), sum(cap["all3"]) / len(cap["all3"])
        ratio = f"{b / a:.3f}" if a else "-"
        print(f"mean: Redis only {a:.0f}, Redis + PostgreSQL + Kafka {b:.0f}: {ratio} of Redis only (target ≥ 0.90)")
p = os.path.join(out, "sweep-metrics.txt")
if os.path.exists(p):
    print(open(p).read().rstrip())
EOF
}
if [[ ${SUMMARY_ONLY:-0} == 1 ]]; then summary; exit 0; fi


if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building (release)"
  (cd "$ROOT" && cargo build --release -p livechat-gateway --bin livechat && cargo build --release -p livechat-loadgen)
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NICE=()
if nice -n -20 true 2>/dev/null && [[ $(nice -n -20 nice) == -20 ]]; then NICE=(nice -n -20); fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Our own background processes still running (pids are removed when they are stopped).
REDIS_PID="" NODE_PID="" SAMPLER_PID=""
PG_MODE="" PG_DIR="" BROKER_DIR=""
cleanup() {
  for p in $SAMPLER_PID $NODE_PID $REDIS_PID; do kill "$p" 2>/dev/null || true; done
  [[ -n $BROKER_DIR ]] && "$ROOT/scripts/kafka-broker.sh" stop "$BROKER_DIR" 2>/dev/null || true
  case $PG_MODE in
  database) psql -h 127.0.0.1 -U postgres -d postgres -XAtq -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true ;;
  throwaway) "$ROOT/scripts/pg-throwaway.sh" stop "$PG_DIR" >/dev/null 2>&1 || true ;;
  esac
}
trap cleanup EXIT

# ---- Redis on CPU 1
RPORT=$(free_port)
taskset -c 1 redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$OUT" --logfile "$OUT/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
R() { redis-cli -p "$RPORT" "$@"; }

# ---- PostgreSQL
if [[ -n ${LIVECHAT_BENCH_DATABASE_URL:-} ]]; then
  PG_MODE=given DB_URL=$LIVECHAT_BENCH_DATABASE_URL
elif pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  PG_MODE=database DB_NAME=lcbench_${TS//-/_}
  psql -h 127.0.0.1 -U postgres -d postgres -XAtq -c "CREATE DATABASE $DB_NAME" >/dev/null
  DB_URL=postgres://postgres@127.0.0.1:5432/$DB_NAME
else
  PG_MODE=throwaway PG_DIR=$(mktemp -d /tmp/lcbench-pg.XXXXXX)
  DB_URL=$(taskset -c 1 "$ROOT/scripts/pg-throwaway.sh" start "$PG_DIR")
fi
Q() { psql "$DB_URL" -XAtq -c "$1"; }
# The schema, once (the node would apply it at start too).
"$LIVECHAT_BIN" migrate --database-url "$DB_URL" 2>"$OUT/migrate.log"
truncate_db() { Q "TRUNCATE conversations" >/dev/null; }
# The PostgreSQL processes serving the node's pool (application_name livechat), moved to CPU 1;
# prints their pids.
pg_backends() {
  local pids
  pids=$(Q "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'livechat'" || true)
  for p in $pids; do
    if [[ -r /proc/$p/comm ]] && grep -q postgres "/proc/$p/comm" 2>/dev/null; then
      taskset -p -c 1 "$p" >/dev/null 2>&1 || log "could not move PostgreSQL backend $p to CPU 1"
      echo "$p"
    fi
  done
}

# ---- The broker (installed once; a fresh one per node that uses it, on CPU 1)
"$ROOT/scripts/kafka-broker.sh" install >/dev/null
start_broker() { # dir: sets BROKER_DIR, BROKER_ADDR (127.0.0.1:port), BROKER_PID
  BROKER_DIR=$1
  BROKER_ADDR=$(taskset -c 1 "$ROOT/scripts/kafka-broker.sh" start "$1")
  BROKER_PID=$(cat "$1/broker.pid")
}
stop_broker() { "$ROOT/scripts/kafka-broker.sh" stop "$BROKER_DIR"; BROKER_DIR=""; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD) ($(cd "$ROOT" && git status --porcelain -- gateway core | wc -l) uncommitted server files)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nproc $(nproc), kernel $(uname -r)"
  echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
  if [[ $(stat -c %Y "$LIVECHAT_BIN") -lt $(cd "$ROOT" && git log -1 --format=%ct -- gateway core migrations) ]]; then
    echo "WARNING: $LIVECHAT_BIN is older than the last commit to gateway/core/migrations (rebuild, or drop SKIP_BUILD)"
  fi
  echo "redis: $(R info server | awk -F: '/redis_version/ {print $2}' | tr -d '\r')"
  echo "postgresql ($PG_MODE): $(Q 'SHOW server_version'), synchronous_commit=$(Q 'SHOW synchronous_commit'), fsync=$(Q 'SHOW fsync'), wal_sync_method=$(Q 'SHOW wal_sync_method'), commit_delay=$(Q 'SHOW commit_delay')"
  echo "broker: $("$("$ROOT/scripts/kafka-broker.sh" install)" --version 2>/dev/null)"
  echo "layout: $LAYOUT; node env: $(env | grep '^LIVECHAT_' | xargs)"
} | tee "$OUT/versions.txt" >&2

# ---- The node on CPU 0: start_node NAME [serve flags...] -> sets NODE_PID, NODE_PORT
# (per-address limits and the per-socket event rate limit lifted: every client is on one
# loopback address, and above 10,000 msgs/s 500 customers send more than 20 events/s each)
start_node() {
  local name=$1
  shift
  NODE_PORT=$(free_port)
  LIVECHAT_CHAT_QUEUE_MAX_CONCURRENT_BY_AGENT=1000000 LIVECHAT_CHAT_SECURITY_RATE_EVENTS_PER_SECOND=1000000 LIVECHAT_CHAT_SECURITY_RATE_BURST=1000000 LIVECHAT_CHAT_REDIS_KEY_PREFIX=lc \
    "${NICE[@]}" taskset -c 0 "$LIVECHAT_BIN" serve --listen "127.0.0.1:$NODE_PORT" --max-connections-per-ip 0 --rest-rate 0 --drain-delay 0ms --executors 1 --no-pin \
    --redis-url "redis://127.0.0.1:$RPORT" "$@" >"$OUT/node-$name.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 400); do grep -q "listening on" "$OUT/node-$name.log" && return 0; sleep 0.05; done
  log "node $name did not start:"; tail -20 "$OUT/node-$name.log" >&2; return 1
}
# LAYOUT=split: the node's IO threads (the tokio IO pool, librdkafka's threads, the producer's
# poller — everything but the executor threads `livechat-<n>-<m>`) move to CPU 1, beside the
# backends, leaving CPU 0 to the executor: the deployment the IO pool exists for (IO threads
# off the executors' cores). LAYOUT=shared (default): every node thread stays on CPU 0.
place_io_threads() {
  [[ $LAYOUT == split ]] || return 0
  local t comm
  for t in /proc/"$NODE_PID"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    [[ $comm =~ ^livechat-[0-9]+-[0-9]+$ ]] && continue
    taskset -p -c 1 "${t##*/}" >/dev/null 2>&1 || log "could not move thread $comm to CPU 1"
  done
}
stop_node() { kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; NODE_PID=""; }
# A short unmeasured lifecycle run: opens the node's PostgreSQL connections (then moved to
# CPU 1 by pg_backends) and warms Redis.
warm_node() { # clients
  "${NICE[@]}" taskset -c 1 "$LOADGEN" lifecycle --url "http://127.0.0.1:$NODE_PORT" --clients "$1" \
    --duration 2 --warmup 1 --label warm >/dev/null 2>>"$OUT/warm.log" || true
}
# /metrics as `name value` lines (counters only)
metrics() { curl -sf "http://127.0.0.1:$NODE_PORT/metrics" | awk '/^livechat_/ {print $1, $2}'; }
# Server-log lines at WARN or ERROR, to a summary file
log_problems() { # name
  sed 's/\x1b\[[0-9;]*m//g' "$OUT/node-$1.log" | grep -E ' (WARN|ERROR) ' |
    grep -v 'DEVELOPMENT MODE' >"$OUT/node-$1.problems" || true
  local n; n=$(wc -l <"$OUT/node-$1.problems")
  [[ $n == 0 ]] || log "node $1: $n WARN/ERROR lines (first: $(head -1 "$OUT/node-$1.problems" | cut -c1-200))"
}
# CPU seconds (user + system) used so far by the given pids together.
cpu_s() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done |
  awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.2f", s / hz}'; }
# CPU ticks of each thread of a process, summed by thread name (`name ticks` lines).
thread_ticks() { # pid
  for t in /proc/"$1"/task/*; do
    [[ -r $t/stat ]] && sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (.*)$/\1|\2/' "$t/stat"
  done | awk -F'|' '{split($2, f, " "); if ($1 ~ /^rdk:/) gsub(/[0-9-]+$/, "", $1); n[$1] += f[11] + f[12]} END {for (k in n) print k "|" n[k]}'
}
# Per-thread CPU of the node between two thread_ticks files, % of one core over S seconds.
thread_split() { # before after seconds
  awk -F'|' -v s="$3" -v hz="$(getconf CLK_TCK)" 'NR == FNR {a[$1] = $2; next}
    {d = ($2 - a[$1]) / hz / s * 100; if (d >= 0.5) printf "%s%s %.0f%%", sep, $1, d; sep = ", "} END {print ""}' "$1" "$2"
}
cpu_busy_pct() { # CPU busy over 2 s, all CPUs, from /proc/stat (as compare.sh)
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
WAIT_IDLE=${WAIT_IDLE:-0}
wait_idle() { # waits up to WAIT_IDLE s for < 10 % busy (both CPUs) before a measurement
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
fresh_state() { R flushall >/dev/null; [[ $1 == 1 ]] && truncate_db; true; }

# ================================================================================ a. lifecycle
lifecycle_run() { # name clients duration pg(0/1) [serve flags...]
  local name=$1 clients=$2 dur=$3 pg=$4
  shift 4
  fresh_state "$pg"
  local flags=("$@") backends=(--backend-pid "$REDIS_PID") pgpids=()
  [[ $pg == 1 ]] && flags+=(--database-url "$DB_URL")
  start_node "$name" "${flags[@]}"
  warm_node "$clients"
  if [[ $pg == 1 ]]; then
    read -r -a pgpids <<<"$(pg_backends | xargs)"
    for p in "${pgpids[@]}"; do backends+=(--backend-pid "$p"); done
  fi
  wait_idle
  metrics >"$OUT/lc-$name.before"
  thread_ticks "$NODE_PID" >"$OUT/lc-$name.threads0"
  local t0 r0 p0 t1 r1 p1
  t0=$(date +%s.%N) r0=$(cpu_s "$REDIS_PID") p0=$(cpu_s "${pgpids[@]}")
  "${NICE[@]}" taskset -c 1 "$LOADGEN" --max-seconds 300 lifecycle --url "http://127.0.0.1:$NODE_PORT" \
    --clients "$clients" --duration "$dur" --warmup 1 --server-pid "$NODE_PID" "${backends[@]}" \
    --label "$name" >>"$OUT/lifecycle.jsonl" 2> >(tee -a "$OUT/lifecycle.log" >&2) || log "lifecycle $name FAILED"
  t1=$(date +%s.%N) r1=$(cpu_s "$REDIS_PID") p1=$(cpu_s "${pgpids[@]}")
  thread_ticks "$NODE_PID" >"$OUT/lc-$name.threads1"
  metrics >"$OUT/lc-$name.after"
  stop_node
  log_problems "$name"
  python3 - "$OUT" "lc-$name" "$name" "$t0" "$t1" "$r0" "$r1" "$p0" "$p1" "$(getconf CLK_TCK)" <<'EOF' | tee -a "$OUT/lifecycle-db.txt" >&2
import sys
out, f, name = sys.argv[1:4]
t0, t1, r0, r1, p0, p1, hz = map(float, sys.argv[4:11])
secs = t1 - t0
def load(p):
    return {k: float(v) for k, v in (l.split() for l in open(p))}
def ticks(p):
    return {k: float(v) for k, v in (l.rstrip("\n").split("|") for l in open(p))}
a, b = load(f"{out}/{f}.before"), load(f"{out}/{f}.after")
d = {k: b[k] - a.get(k, 0) for k in b}
h0, h1 = ticks(f"{out}/{f}.threads0"), ticks(f"{out}/{f}.threads1")
threads = sorted(((k, (h1[k] - h0.get(k, 0)) / hz / secs * 100) for k in h1), key=lambda kv: -kv[1])
cpu = (f"CPU over the run ({secs:.0f} s incl. 1 s warm-up): Redis {(r1 - r0) / secs * 100:.0f}%,"
       f" PostgreSQL backends {(p1 - p0) / secs * 100:.0f}%; node threads: "
       + ", ".join(f"{k} {v:.0f}%" for k, v in threads if v >= 0.5))
c, r = d.get("livechat_database_commits_total"), d.get("livechat_database_rows_total")
if c is None:
    print(f"{name}: no database | {cpu}")
else:
    print(f"{name}: commits {c:.0f}, rows {r:.0f}, rows/commit {r / max(c, 1):.2f}, commits/s {c / secs:.0f},"
          f" errors {d.get('livechat_database_errors_total', 0):.0f}, stale {d.get('livechat_database_stale_total', 0):.0f},"
          f" queue_full {d.get('livechat_database_queue_full_total', 0):.0f}, reverts {d.get('livechat_database_reverts_total', 0):.0f} | {cpu}")
EOF
}

if [[ " $PARTS " == *" a "* ]]; then
  log "a. lifecycle: $LC_CLIENTS workers, ${LC_DURATION}s, Redis only vs Redis + PostgreSQL (io-threads 1, 2), $LC_ROUNDS rounds"
  for round in $(seq "$LC_ROUNDS"); do
    lifecycle_run "redis-r$round" "$LC_CLIENTS" "$LC_DURATION" 0
    lifecycle_run "redis-pg-io1-r$round" "$LC_CLIENTS" "$LC_DURATION" 1 --io-threads 1
    lifecycle_run "redis-pg-io2-r$round" "$LC_CLIENTS" "$LC_DURATION" 1 --io-threads 2
  done
  for c in $LC_CURVE; do
    lifecycle_run "redis-pg-io1-c$c" "$c" $((LC_DURATION / 2 > 3 ? LC_DURATION / 2 : 3)) 1 --io-threads 1
    lifecycle_run "redis-c$c" "$c" $((LC_DURATION / 2 > 3 ? LC_DURATION / 2 : 3)) 0
  done
fi

# ================================================================================ b, d. chat at fixed rates
# Samples the event counters of /metrics every 0.25 s into a file until killed.
sample_metrics() { # file
  python3 - "http://127.0.0.1:$NODE_PORT/metrics" "$1" <<'EOF' &
import sys, time, urllib.request
url, out = sys.argv[1], open(sys.argv[2], "w")
while True:
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
        v = {l.split()[0]: l.split()[1] for l in text.splitlines() if l.startswith("livechat_events_")}
        out.write(f"{time.time():.3f} {v.get('livechat_events_published_total', 0)} "
                  f"{v.get('livechat_events_delivered_total', 0)} {v.get('livechat_events_dropped_total', 0)}\n")
        out.flush()
    except Exception:
        pass
    time.sleep(0.25)
EOF
  SAMPLER_PID=$!
  for _ in $(seq 100); do [[ -s $1 ]] && break; sleep 0.05; done
}

# PROFILE=1: `perf record -g` of the node (every thread) for PROFILE_SECONDS (default 5) of a
# fixed run's steady part; the report, by thread and by symbol, goes to profile-NAME.txt.
profile_node() { # name
  local name=$1 secs=${PROFILE_SECONDS:-5}
  sleep 3 # the loadgen's connections are open and the rate is reached
  perf record -q -F 1999 -g -p "$NODE_PID" -o "$OUT/perf-$name.data" -- sleep "$secs" >/dev/null 2>&1 || true
  {
    perf report -i "$OUT/perf-$name.data" --no-children --sort comm --stdio -g none 2>/dev/null
    perf report -i "$OUT/perf-$name.data" --no-children --sort comm,dso,sym --percent-limit 0.5 \
      --stdio -g none 2>/dev/null
  } | grep -v '^#' | grep -v '^$' >"$OUT/profile-$name.txt" || true
  log "$name: profile in $OUT/profile-$name.txt"
}

# The chat pipeline at a fixed rate (the loadgen repeats a run that other processes disturbed,
# up to 4 attempts) on one configuration: redis | pg | kafka | all3. Appends to
# chat-fixed.jsonl, and a summary line to chat-fixed.txt: node CPU per stored message by
# thread, the backends' CPU, /metrics deltas, and with Kafka the records/s of each attempt.
chat_fixed_run() { # name cfg rate duration
  local name=$1 cfg=$2 rate=$3 dur=$4 flags=() pgpids=()
  fresh_state 1
  if [[ $cfg == kafka || $cfg == all3 ]]; then
    start_broker "$OUT/broker-$name"
    flags+=(--kafka-brokers "$BROKER_ADDR")
  fi
  [[ $cfg == pg || $cfg == all3 ]] && flags+=(--database-url "$DB_URL")
  start_node "$name" "${flags[@]}"
  warm_node 8
  place_io_threads
  [[ $cfg == pg || $cfg == all3 ]] && read -r -a pgpids <<<"$(pg_backends | xargs)"
  wait_idle
  metrics >"$OUT/$name.before"
  sample_metrics "$OUT/$name.samples"
  thread_ticks "$NODE_PID" >"$OUT/$name.threads0"
  local r0 p0 b0=0 r1 p1 b1=0
  r0=$(cpu_s "$REDIS_PID") p0=$(cpu_s "${pgpids[@]}")
  [[ -n $BROKER_DIR ]] && b0=$(cpu_s "$BROKER_PID")
  local backend_flags=() p
  for p in "${pgpids[@]}" ${BROKER_DIR:+"$BROKER_PID"}; do backend_flags+=(--backend-pid "$p"); done
  log "chat $name: $cfg, $CONV conversations at $rate msgs/s for ${dur}s"
  local prof=
  if [[ ${PROFILE:-0} == 1 ]]; then profile_node "$name" & prof=$!; fi
  "${NICE[@]}" taskset -c 1 "$LOADGEN" --max-seconds 900 chat --url "http://127.0.0.1:$NODE_PORT" \
    --conversations "$CONV" --rate "$rate" --duration "$dur" --server-pid "$NODE_PID" \
    --backend-pid "$REDIS_PID" "${backend_flags[@]}" --label "$name" \
    >>"$OUT/chat-fixed.jsonl" 2> >(tee -a "$OUT/chat-fixed.log" >&2) || log "chat $name FAILED"
  if [[ -n $prof ]]; then wait "$prof" || true; fi
  sleep 3 # the producer's last batches and delivery reports
  r1=$(cpu_s "$REDIS_PID") p1=$(cpu_s "${pgpids[@]}")
  [[ -n $BROKER_DIR ]] && b1=$(cpu_s "$BROKER_PID")
  thread_ticks "$NODE_PID" >"$OUT/$name.threads1"
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
  metrics >"$OUT/$name.after"
  stop_node
  [[ -n $BROKER_DIR ]] && stop_broker
  log_problems "$name"
  python3 - "$OUT" "$name" "$r0" "$r1" "$p0" "$p1" "$b0" "$b1" "$(getconf CLK_TCK)" <<'EOF' | tee -a "$OUT/chat-fixed.txt" >&2
import json, sys
out, name = sys.argv[1], sys.argv[2]
r0, r1, p0, p1, b0, b1, hz = map(float, sys.argv[3:10])
runs = [r for r in map(json.loads, open(f"{out}/chat-fixed.jsonl")) if r.get("label") == name]
acked = sum(r["acked"] for r in runs)
def ticks(p):
    return {k: float(v) for k, v in (l.rstrip("\n").split("|") for l in open(p))}
h0, h1 = ticks(f"{out}/{name}.threads0"), ticks(f"{out}/{name}.threads1")
us = lambda s: s / max(acked, 1) * 1e6
threads = {k: (h1[k] - h0.get(k, 0)) / hz for k in h1}
node = sum(threads.values())
split = ", ".join(f"{k} {us(v):.0f}" for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if us(v) >= 1)
def load(p):
    return {k.removeprefix("livechat_").removesuffix("_total"): float(v) for k, v in (l.split() for l in open(p))}
a, b = load(f"{out}/{name}.before"), load(f"{out}/{name}.after")
d = {k: b[k] - a.get(k, 0) for k in b}
att = "; ".join(f"stored {r['stored_per_s']:.0f}/s ack p50/p99 {r['ack_p50_ms']:.2f}/{r['ack_p99_ms']:.2f} ms"
                f" node {r['server_cpu_pct'] or 0:.0f}% other {r['foreign_cpu_pct'] or 0:.0f}%" for r in runs)
line = (f"{name}: {len(runs)} attempt(s) [{att}] | CPU µs per stored message ({acked} stored, set-up and pauses"
        f" included): node {us(node):.0f} ({split}); Redis {us(r1 - r0):.0f}, PostgreSQL backends {us(p1 - p0):.0f},"
        f" broker {us(b1 - b0):.0f} | /metrics: " + ", ".join(f"{k} {v:.0f}" for k, v in d.items() if v))
# Kafka: delivered records/s of each attempt (stretches ≥ 1 s at ≥ half the peak rate, 1 s windows).
try:
    rows = [tuple(map(float, l.split())) for l in open(f"{out}/{name}.samples") if len(l.split()) == 4]
except FileNotFoundError:
    rows = []
if len(rows) > 8 and rows[-1][2] > rows[0][2]:
    rate = [(rows[i + 4][2] - rows[i][2]) / (rows[i + 4][0] - rows[i][0]) for i in range(len(rows) - 4)]
    peak = max(rate)
    segs, cur = [], []
    for i, r in enumerate(rate):
        if r >= peak / 2:
            cur.append(i)
        elif cur:
            segs.append(cur)
            cur = []
    if cur:
        segs.append(cur)
    parts = []
    for sgm in segs:
        i, j = sgm[0], sgm[-1] + 4
        if rows[j][0] - rows[i][0] >= 1.0:
            dt = rows[j][0] - rows[i][0]
            parts.append(f"{(rows[j][2] - rows[i][2]) / dt:.0f} records/s ({(rows[j][1] - rows[i][1]) / dt:.0f} events/s) for {dt:.0f} s")
    line += (f" | events: {'; '.join(parts)}; whole run: published {rows[-1][1] - rows[0][1]:.0f} events,"
             f" delivered {rows[-1][2] - rows[0][2]:.0f} records, dropped {rows[-1][3]:.0f} (since start)")
print(line)
EOF
}

if [[ " $PARTS " == *" b "* ]]; then
  for rate in $EV_RATES; do
    for round in 1 2; do
      chat_fixed_run "events-kafka-$rate-r$round" kafka "$rate" "$EV_DURATION"
    done
  done
fi

if [[ " $PARTS " == *" d "* ]]; then
  for round in $(seq "$D_ROUNDS"); do
    for cfg in $D_CFGS; do
      chat_fixed_run "cost-$cfg-$D_RATE-r$round" "$cfg" "$D_RATE" "$D_DURATION"
    done
  done
fi

# ================================================================================ c. chat capacity
if [[ " $PARTS " == *" c "* ]]; then
  for round in $(seq "$SWEEP_ROUNDS"); do
    for cfg in redis all3; do
      name=sweep-$cfg-r$round
      fresh_state 1
      flags=()
      if [[ $cfg == all3 ]]; then
        start_broker "$OUT/broker-$name"
        flags=(--database-url "$DB_URL" --kafka-brokers "$BROKER_ADDR")
      fi
      start_node "$name" "${flags[@]}"
      warm_node 8
      place_io_threads
      [[ $cfg == all3 ]] && pg_backends >"$OUT/$name.pg-pids"
      wait_idle
      metrics >"$OUT/$name.before"
      extra=()
      [[ $cfg == all3 ]] && extra=($BROKER_PID $(cat "$OUT/$name.pg-pids"))
      # The broker and PostgreSQL are part of the configuration, not a disturbance: the loadgen
      # must not re-run steps because of their CPU.
      extra_flags=()
      for p in "${extra[@]}"; do extra_flags+=(--backend-pid "$p"); done
      c0=$(date +%s.%N) cpu0_node=$(cpu_s "$NODE_PID") cpu0_redis=$(cpu_s "$REDIS_PID") cpu0_extra=$(cpu_s "${extra[@]}")
      log "c. chat sweep (ack p99 ≤ 5 ms): $cfg, round $round"
      "${NICE[@]}" taskset -c 1 "$LOADGEN" --max-seconds 1800 chat --url "http://127.0.0.1:$NODE_PORT" \
        --conversations "$CONV" --sweep --rate "$SWEEP_START" --factor 1.3 --duration "$DURATION" \
        --max-steps "$SWEEP_STEPS" --refine 2 --retries 1 --p99-limit-ms 5 --server-pid "$NODE_PID" \
        --backend-pid "$REDIS_PID" "${extra_flags[@]}" --label "$name" \
        >>"$OUT/chat-sweep.jsonl" 2> >(tee -a "$OUT/chat-sweep.log" >&2) || log "sweep $name FAILED"
      c1=$(date +%s.%N) cpu1_node=$(cpu_s "$NODE_PID") cpu1_redis=$(cpu_s "$REDIS_PID") cpu1_extra=$(cpu_s "${extra[@]}")
      sleep 2
      metrics >"$OUT/$name.after"
      stop_node
      [[ $cfg == all3 ]] && stop_broker
      log_problems "$name"
      python3 - "$OUT/$name.before" "$OUT/$name.after" "$name" "$c0" "$c1" \
        "$cpu0_node" "$cpu1_node" "$cpu0_redis" "$cpu1_redis" "$cpu0_extra" "$cpu1_extra" <<'EOF' | tee -a "$OUT/sweep-metrics.txt" >&2
import sys
def load(p):
    return {k: float(v) for k, v in (l.split() for l in open(p))}
a, b = load(sys.argv[1]), load(sys.argv[2])
t0, t1, n0, n1, r0, r1, x0, x1 = map(float, sys.argv[4:12])
d = {k.removeprefix("livechat_").removesuffix("_total"): b[k] - a.get(k, 0) for k in b}
print(sys.argv[3] + ": " + ", ".join(f"{k} {v:.0f}" for k, v in d.items() if v)
      + f" | CPU s over the sweep ({t1 - t0:.0f} s, pauses included): node {n1 - n0:.1f}, Redis {r1 - r0:.1f},"
        f" broker + PostgreSQL backends {x1 - x0:.1f}")
EOF
    done
  done
fi

# ================================================================================ summary
summary
log "results in $OUT"
