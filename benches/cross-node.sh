#!/usr/bin/env bash
# benches/cross-node.sh — cross-node fan-out: livechat vs. socketioxide vs. Node socket.io, each
# as a cluster of two nodes sharing one Redis through its standard Redis adapter:
#   livechat      gateway/examples/fanout.rs --redis-url (room channels over the crate's own
#                 Redis client: a `pub` goes to the publishing executor's members at once and
#                 is PUBLISHed; every executor with members of the room is subscribed and
#                 delivers to its local members, skipping its own publications)
#   socketioxide  benches/peers/socketioxide --redis-url (socketioxide-redis)
#   node          benches/peers/node/server.mjs --redis-url (@socket.io/redis-adapter)
# Same scenario as the single-node fan-out of benches/compare.sh ("publisher on node A, room
# members spread over nodes A and B"): R rooms × M members, every room's members split evenly
# over the two nodes (member m on node m mod 2), the publishers (one per room, member 0)
# connected to node A only; a `pub` reaches the room's members on A and on B. Per server:
#   fixed   the same fixed offered load on every server → delivered msgs/s, latency
#           p50/p99/p99.9/max, server CPU (both nodes summed, user and kernel apart) and Redis
#           CPU, each per delivery
#   sweep   rising offered load → capacity = delivered msgs/s at p99 ≤ 50 ms
# Every run gets a fresh redis-server (no persistence) and two fresh nodes. Latency is what the
# single-node benchmark measures: the publisher's send time, stamped in the payload by the
# loadgen's clock, against the receive time, whichever node delivered it.
#
# CPU placement (2-CPU machine): both nodes on CPU 0 (one executor / one tokio worker / Node's
# one thread each), redis-server and the loadgen on CPU 1. The two nodes together get the one
# core a single node gets in compare.sh, so capacity and CPU per delivery compare directly with
# the single-node numbers: what crossing Redis costs, not how a cluster scales out (it cannot on
# two CPUs — giving each node its own core would leave Redis and the loadgen sharing the nodes'
# cores). Caveats: the two nodes contend for CPU 0 (at saturation one node's backlog delays
# the other's deliveries); Redis shares CPU 1 with the loadgen, and loopback softirq work for
# both lands there too, so at high rates the loadgen may fall behind or measure time spent
# waiting for the CPU — the loadgen's and Redis's CPU are reported next to every step. The
# nodes and the loadgen run at `nice -n $NICE` (default -20; ignored without the privilege), so
# the loadgen preempts Redis when a frame arrives; Redis runs at the default priority. Override
# with NODE_CPU / AUX_CPU. The adapters differ in what crosses Redis: socket.io's and
# socketioxide's adapters and livechat's example deliver to the publishing node's own members
# directly and publish each broadcast for the other nodes. The table gives Redis's CPU and
# commands per publish for each.
#
#   benches/cross-node.sh                     # full run (~15 min)
#   QUICK=1 benches/cross-node.sh             # smoke run (~3 min)
#   SERVERS="livechat node" SKIP_BUILD=1 OUT=/tmp/xn benches/cross-node.sh
#   PROFILE=1 SKIP_SWEEP=1 benches/cross-node.sh  # + perf profiles of the fixed run (below)
#
# PROFILE=1: during the fixed run's steady part (after the connections are open), `perf
# record -g` samples both nodes and redis-server for PROFILE_SECONDS (default 10), and `perf
# report` writes where their CPU goes, user and kernel symbols together, to
# profile-<server>-{nodes,redis}.txt (needs perf and the privilege to profile other processes).
#
# Results: $OUT (default target/bench-cross-node/<date>/; made absolute): *.jsonl (loadgen JSON
# lines), *.log (loadgen progress, server and Redis logs), redis-commands-*.txt, table.md.
# Loopback only; every loadgen run is bounded by --max-seconds; every process started here
# (Redis, nodes, loadgen) is stopped on exit, failure or interrupt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=${QUICK:-0}
SERVERS=${SERVERS:-"livechat socketioxide node"}
NODE_CPU=${NODE_CPU:-0}
AUX_CPU=${AUX_CPU:-1}
EXECUTORS=${EXECUTORS:-1}
NICE=${NICE:--20}
WAIT_IDLE=${WAIT_IDLE:-0}
PORT_BASE=${PORT_BASE:-24600} # below the ephemeral range (32768-60999): no clash with client ports
OUT=${OUT:-$ROOT/target/bench-cross-node/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ $QUICK == 1 ]]; then
  FAN_ROOMS=20 FAN_MEMBERS=20 FAN_PUBS=20 FAN_SPREAD=0
  FAN_RATE=${FAN_RATE:-200}            # publishes/s at the equal-load point (× members = msgs/s)
  FAN_DURATION=3
  SWEEP_START=200 SWEEP_FACTOR=2 SWEEP_DURATION=3 SWEEP_STEPS=4 SWEEP_REFINE=0 SWEEP_RETRIES=0
else
  # compare.sh's fan-out: 5,000 connections opened over 25 s (the servers' pingInterval).
  FAN_ROOMS=100 FAN_MEMBERS=50 FAN_PUBS=100 FAN_SPREAD=25
  FAN_RATE=${FAN_RATE:-600}            # 600 pub/s × 50 = 30,000 msgs/s
  FAN_DURATION=20
  SWEEP_START=600 SWEEP_FACTOR=1.3 SWEEP_DURATION=10 SWEEP_STEPS=10 SWEEP_REFINE=2 SWEEP_RETRIES=1
fi

LOADGEN=$ROOT/target/release/livechat-loadgen
FANOUT_BIN=$ROOT/target/release/examples/fanout
SX_DIR=$ROOT/benches/peers/socketioxide
SX_BIN=$SX_DIR/target/release/livechat-peer-socketioxide
NODE_DIR=$ROOT/benches/peers/node

log() { printf '[cross-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building (release)"
  (cd "$ROOT" && cargo build --release -p livechat-gateway --example fanout)
  (cd "$ROOT" && cargo build --release -p livechat-loadgen)
  if [[ " $SERVERS " == *" socketioxide "* ]]; then (cd "$SX_DIR" && cargo build --release --locked); fi
  if [[ " $SERVERS " == *" node "* ]]; then (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error); fi
fi
for bin in "$LOADGEN" redis-server redis-cli; do
  command -v "$bin" >/dev/null || { log "missing $bin"; exit 1; }
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PIN_N=(taskset -c "$NODE_CPU")   # the nodes
PIN_L=(taskset -c "$AUX_CPU")    # the loadgen
PIN_R=(taskset -c "$AUX_CPU")    # redis-server (default priority)
if nice -n "$NICE" true 2>/dev/null && [[ $(nice -n "$NICE" nice) == "$NICE" ]]; then
  PIN_N=(nice -n "$NICE" "${PIN_N[@]}")
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
# Processes: everything started here is in PIDS and is stopped on exit (also on failure).
PIDS=()
stop_pids() { # pid... : TERM, up to 5 s, then KILL
  local p live
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    live=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && live=1; done
    [[ $live == 0 ]] && break
    sleep 0.1
  done
  for p in "$@"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
forget_pids() { # pid... : no longer ours to stop (they have been stopped or have exited)
  local keep=() p q gone
  for p in "${PIDS[@]}"; do
    gone=0
    for q in "$@"; do [[ $p == "$q" ]] && gone=1; done
    [[ $gone == 1 ]] || keep+=("$p")
  done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
cleanup() {
  if [[ ${#PIDS[@]} -gt 0 ]]; then stop_pids "${PIDS[@]}"; fi
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$PORT_BASE
next_port() { # -> PORT: the next port nobody listens on
  PORT=$((PORT + 1))
  while ss -Hltn "sport = :$PORT" | grep -q .; do PORT=$((PORT + 1)); done
}

pin_all() { # name pid cpu: re-pin every thread (livechat ignores taskset's mask order) and check
  local name=$1 pid=$2 cpu=$3 t
  taskset -a -p -c "$cpu" "$pid" >/dev/null
  for t in /proc/"$pid"/task/*; do
    if [[ $(awk '/^Cpus_allowed_list/ {print $2}' "$t/status" 2>/dev/null) != "$cpu" ]] && [[ -e $t ]]; then
      log "could not pin $name thread $t to CPU $cpu"; exit 1
    fi
  done
}

REDIS_PID="" RPORT=""
start_redis() { # tag -> REDIS_PID, RPORT
  next_port; RPORT=$PORT
  "${PIN_R[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$OUT" --logfile "$OUT/redis-$1.log" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-cli -p "$RPORT" ping >/dev/null 2>&1 || { log "redis-server did not start"; cat "$OUT/redis-$1.log" >&2; exit 1; }
  pin_all redis-server "$REDIS_PID" "$AUX_CPU"
}

NODE_PIDS=() NODE_PORTS=()
start_node() { # server tag -> appends to NODE_PIDS, NODE_PORTS; returns 1 if it does not start
  local name=$1 tag=$2 url="redis://127.0.0.1:$RPORT" pid
  next_port
  local slog=$OUT/node-$tag-$PORT.log
  case $name in
    livechat)
      "${PIN_N[@]}" "$FANOUT_BIN" --listen "127.0.0.1:$PORT" --executors "$EXECUTORS" --redis-url "$url" >"$slog" 2>&1 &
      ;;
    socketioxide)
      "${PIN_N[@]}" "$SX_BIN" --port "$PORT" --workers "$EXECUTORS" --redis-url "$url" >"$slog" 2>&1 &
      ;;
    node)
      "${PIN_N[@]}" node "$NODE_DIR/server.mjs" --port "$PORT" --redis-url "$url" >"$slog" 2>&1 &
      ;;
    *) log "unknown server $name"; exit 2 ;;
  esac
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 200); do
    if grep -q "listening on http://" "$slog"; then
      pin_all "$name" "$pid" "$NODE_CPU"
      NODE_PIDS+=("$pid"); NODE_PORTS+=("$PORT")
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  log "$name did not start (does it take --redis-url?):"; cat "$slog" >&2
  stop_pids "$pid"; forget_pids "$pid"
  return 1
}

start_cluster() { # server mode
  wait_idle
  start_redis "$1-$2"
  NODE_PIDS=() NODE_PORTS=()
  start_node "$1" "$1-$2-A" || return 1
  start_node "$1" "$1-$2-B" || return 1
  log "$1 ($2): redis-server :$RPORT (pid $REDIS_PID, CPU $AUX_CPU), node A :${NODE_PORTS[0]} (pid ${NODE_PIDS[0]}), node B :${NODE_PORTS[1]} (pid ${NODE_PIDS[1]}) on CPU $NODE_CPU"
}

stop_cluster() { # server mode: saves Redis's command counts, stops the nodes and Redis
  redis-cli -p "$RPORT" info commandstats | tr -d '\r' >"$OUT/redis-commands-$1-$2.txt" || true
  local p=("${NODE_PIDS[@]+"${NODE_PIDS[@]}"}" "$REDIS_PID")
  stop_pids "${p[@]}"
  forget_pids "${p[@]}"
  NODE_PIDS=() NODE_PORTS=() REDIS_PID=
}

loadgen() { # name args...   (JSON lines → $OUT/name.jsonl; progress → stderr + name.log)
  local name=$1 lg rc=0; shift
  "${PIN_L[@]}" "$LOADGEN" --max-seconds 900 "$@" >>"$OUT/$name.jsonl" \
    2> >(grep --line-buffered -v RLIMIT_NOFILE | tee -a "$OUT/$name.log" >&2) &
  lg=$!
  PIDS+=("$lg")
  wait "$lg" || rc=$?
  forget_pids "$lg"
  if [[ $rc != 0 ]]; then log "loadgen failed ($name, exit $rc)"; return 1; fi
}

fan_args() {
  echo --url "http://127.0.0.1:${NODE_PORTS[0]}" --url "http://127.0.0.1:${NODE_PORTS[1]}" \
    --rooms "$FAN_ROOMS" --members "$FAN_MEMBERS" --publishers "$FAN_PUBS" \
    --connect-spread "$FAN_SPREAD" --server-pid "${NODE_PIDS[0]}" --server-pid "${NODE_PIDS[1]}" \
    --backend-pid "$REDIS_PID"
}

profile() { # server — perf samples of the fixed run's steady part (see PROFILE=1 above)
  local s=$1 secs=${PROFILE_SECONDS:-10} nodes redis
  nodes=$(IFS=,; echo "${NODE_PIDS[*]}")
  redis=$REDIS_PID
  # The loadgen opens the connections over FAN_SPREAD seconds; sample after that.
  sleep $(( FAN_SPREAD + 3 ))
  perf record -q -F 1999 -g -p "$nodes" -o "$OUT/perf-$s-nodes.data" -- sleep "$secs" >/dev/null 2>&1 &
  perf record -q -F 1999 -g -p "$redis" -o "$OUT/perf-$s-redis.data" -- sleep "$secs" >/dev/null 2>&1
  wait
  local what
  for what in nodes redis; do
    perf report -i "$OUT/perf-$s-$what.data" --no-children --sort dso,sym --percent-limit 0.7 \
      --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' >"$OUT/profile-$s-$what.txt" || true
  done
  log "$s: profiles in $OUT/profile-$s-{nodes,redis}.txt"
}

run_server() { # server
  local s=$1
  if ! start_cluster "$s" fixed; then
    log "$s: a node did not start; $s skipped"
    stop_cluster "$s" fixed
    return 0
  fi
  local prof=
  if [[ ${PROFILE:-0} == 1 ]]; then profile "$s" & prof=$!; fi
  # shellcheck disable=SC2046
  loadgen "fixed-$s" fanout $(fan_args) --rate "$FAN_RATE" --duration "$FAN_DURATION" --label "$s" || true
  if [[ -n $prof ]]; then wait "$prof" || true; fi # (it ended inside the run)
  stop_cluster "$s" fixed
  if [[ ${SKIP_SWEEP:-0} == 1 ]]; then return 0; fi
  if ! start_cluster "$s" sweep; then
    log "$s: a node did not start; its sweep skipped"
    stop_cluster "$s" sweep
    return 0
  fi
  # shellcheck disable=SC2046
  loadgen "sweep-$s" fanout $(fan_args) --sweep --rate "$SWEEP_START" --factor "$SWEEP_FACTOR" \
    --duration "$SWEEP_DURATION" --max-steps "$SWEEP_STEPS" --refine "$SWEEP_REFINE" \
    --retries "$SWEEP_RETRIES" --label "$s" || true
  stop_cluster "$s" sweep
}

START=$(date +%s)
for s in $SERVERS; do run_server "$s"; done
log "scenarios took $(( $(date +%s) - START )) s"

# ---------------------------------------------------------------------------------------------
# Table
find "$OUT" -maxdepth 1 -name '*.jsonl' ! -name all.jsonl -print0 | sort -z | xargs -0 cat >"$OUT/all.jsonl"
{
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- gateway core benches/peers 2>/dev/null || echo ' (+ uncommitted changes)'), QUICK=$QUICK;"
  echo "$(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), $(redis-server --version | awk '{print $3}');"
  echo "two nodes per server on CPU $NODE_CPU, redis-server and the loadgen on CPU $AUX_CPU;"
  echo "$FAN_ROOMS rooms × $FAN_MEMBERS members (half on each node), $FAN_PUBS publishers on node A."
  echo
} | tee "$OUT/table.md"
python3 - "$OUT" $SERVERS <<'EOF' | tee -a "$OUT/table.md"
import json, os, re, sys

out, servers = sys.argv[1], sys.argv[2:]
rows = []
for line in open(os.path.join(out, "all.jsonl"), encoding="utf-8"):
    line = line.strip()
    if line.startswith("{"):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass

def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"

def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "–"
    return f"{a / b:.2f}×"

peers = [s for s in servers if s != "livechat"]
lc = "livechat" in servers
header = ["metric"] + servers + ([f"livechat/{p}" for p in peers] if lc else [])
lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
blank = " |" * (len(header) - 1)

def add(metric, values, digits=2):
    cells = [fmt(values.get(s), digits) for s in servers]
    if lc:
        cells += [ratio(values.get("livechat"), values.get(p)) for p in peers]
    lines.append("| " + " | ".join([metric] + cells) + " |")

def section(title):
    lines.append(f"| **{title}** |" + blank)

def both(r, k):
    v = r.get(k) or [None, None]
    return v + [None] * (2 - len(v))

def redis_commands(s, mode):
    """Redis commands (from INFO commandstats at the end of the run) per publish sent."""
    path = os.path.join(out, f"redis-commands-{s}-{mode}.txt")
    if not os.path.exists(path):
        return None, ""
    calls = {}
    for l in open(path):
        m = re.match(r"cmdstat_(\S+):calls=(\d+)", l)
        if m and m.group(1) not in ("info", "ping", "client|setname", "hello", "client|setinfo"):
            calls[m.group(1)] = int(m.group(2))
    sent = sum(r.get("sent", 0) for r in rows
               if r.get("scenario") == "fanout" and r.get("label") == s and r.get("mode") == mode)
    if not sent:
        return None, ""
    top = ", ".join(f"{k} {v / sent:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:3])
    return sum(calls.values()) / sent, top

def steps(mode):
    return [r for r in rows if r.get("scenario") == "fanout" and r.get("mode") == mode]

# Fixed load: the last attempt of each server (a disturbed run is repeated by the loadgen).
fixed = {r["label"]: r for r in steps("fixed")}
if fixed:
    a = next(iter(fixed.values()))
    section(f"cross-node fan-out, equal load ({a['rooms']} rooms × {a['members']} members over 2 nodes, "
            f"{a['rate_pub_per_s']:.0f} pub/s → {a['offered_per_s']:,.0f} msgs/s offered)")
    g = lambda k: {s: r.get(k) for s, r in fixed.items()}
    add("delivered msgs/s", g("delivered_per_s"))
    add("↳ delivered by node A / node B, %", {s: "{} / {}".format(*[fmt(100 * x / max(1, r["received"]), 0) for x in both(r, "received_by_url")]) if r.get("received_by_url") else None for s, r in fixed.items()})
    for k, name in [("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")]:
        add(f"latency {name}, ms", g(k))
    add("server CPU per delivery, µs (both nodes, user + kernel)", g("server_us_per_delivery"))
    add("↳ user, µs per delivery", g("server_user_us_per_delivery"))
    add("↳ kernel, µs per delivery", g("server_sys_us_per_delivery"))
    add("Redis CPU per delivery, µs", g("backend_us_per_delivery"))
    add("server CPU, % of 1 core (both nodes)", g("server_cpu_pct"), 0)
    add("↳ node A / node B, %", {s: "{} / {}".format(*[fmt(x, 0) for x in both(r, "server_cpu_by_node_pct")]) for s, r in fixed.items()})
    add("Redis CPU, % of 1 core", g("backend_cpu_pct"), 0)
    add("loadgen CPU, % of 1 core", g("loadgen_cpu_pct"), 0)
    add("other processes' CPU, % of 1 core", g("foreign_cpu_pct"), 0)
    cmds = {s: redis_commands(s, "fixed") for s in fixed}
    add("Redis commands per publish", {s: c[0] for s, c in cmds.items()})
    add("step ok (all delivered, p99 ≤ 50 ms)", {s: ("yes" if r["ok"] else "NO") for s, r in fixed.items()})

# Sweeps: by offered load (rates every server ran), then capacity.
by_rate = {}
for r in steps("sweep"):
    slot = by_rate.setdefault(r["rate_pub_per_s"], {})
    if r["label"] not in slot or (slot[r["label"]].get("disturbed") and not r.get("disturbed")):
        slot[r["label"]] = r
common = sorted(rate for rate, got in by_rate.items() if all(s in got for s in servers))
if common:
    section("cross-node fan-out by offered load (sweep steps, first undisturbed run of each rate)")
    for key, name, d in [("p99_ms", "p99 ms", 2), ("server_us_per_delivery", "server µs/delivery", 2),
                         ("backend_us_per_delivery", "Redis µs/delivery", 2)]:
        for rate in common:
            got = by_rate[rate]
            offered = next(iter(got.values()))["offered_per_s"]
            add(f"{name} at {offered:,.0f} msgs/s", {s: r.get(key) for s, r in got.items()}, d)
sweeps = {r["label"]: r for r in rows if r.get("scenario") == "fanout-sweep"}
notes = []
if sweeps:
    section("cross-node fan-out capacity (delivered msgs/s at p99 ≤ 50 ms)")
    add("capacity, delivered msgs/s", {s: r["capacity_per_s"] for s, r in sweeps.items()})
    add("p99 at capacity, ms", {s: r["capacity_p99_ms"] for s, r in sweeps.items()})
    cap = {}
    for r in steps("sweep"):
        sw = sweeps.get(r.get("label"))
        if sw and r.get("ok") and abs(r.get("rate_pub_per_s", -1) - sw["capacity_pub_rate"]) < 1e-6:
            cap[r["label"]] = r
    add("server CPU at capacity, % (both nodes)", {s: r.get("server_cpu_pct") for s, r in cap.items()}, 0)
    add("server CPU per delivery at capacity, µs (user / kernel)",
        {s: f"{fmt(r.get('server_user_us_per_delivery'))} / {fmt(r.get('server_sys_us_per_delivery'))}" for s, r in cap.items()})
    add("Redis CPU at capacity, %", {s: r.get("backend_cpu_pct") for s, r in cap.items()}, 0)
    add("Redis CPU per delivery at capacity, µs", {s: r.get("backend_us_per_delivery") for s, r in cap.items()})
    add("loadgen CPU at capacity, %", {s: r["capacity_loadgen_cpu_pct"] for s, r in sweeps.items()}, 0)
    add("first failing step: loadgen CPU, %", {s: r.get("first_bad_loadgen_cpu_pct") for s, r in sweeps.items()}, 0)
    for s, r in sorted(sweeps.items()):
        notes.append(f"- {s} sweep limited by: {r.get('limited_by')}")
for s in servers:
    if s not in fixed and s not in sweeps:
        notes.append(f"- {s}: no results (see {s}'s logs in {out})")
for s in servers:
    n, top = redis_commands(s, "fixed")
    if top:
        notes.append(f"- {s}: Redis commands per publish (fixed run, set-up included): {top}")
print("\n".join(lines))
if notes:
    print()
    print("\n".join(notes))
EOF
log "results in $OUT"
