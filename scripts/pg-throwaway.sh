#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests: its own cluster (initdb, trust auth, superuser
# `postgres`) in DIR/data, listening on 127.0.0.1 only, unix socket inside DIR, database
# `livechat` created. Uses the installed server binaries (`pg_config --bindir`, else the
# newest /usr/lib/postgresql/*/bin, or $LIVECHAT_PG_BINDIR).
#
#   scripts/pg-throwaway.sh start DIR [PORT]  initdb (first time) and start on PORT, else on the
#                                             cluster's previous port if free, else a free port;
#                                             prints postgres://postgres@127.0.0.1:PORT/livechat
#   scripts/pg-throwaway.sh stop DIR          pg_ctl stop -m fast (no error if not running)
#   scripts/pg-throwaway.sh restart DIR       restart on the same port; prints the URL
#
# Run as root, the server runs as user `postgres` (initdb refuses root; override with
# $LIVECHAT_PG_USER) and DIR is chowned to it; DIR's parent directories must let it in.
# Files in DIR: data/ (the cluster), socket/, postgres.log.
set -euo pipefail

die() {
  echo "pg-throwaway.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR | restart DIR" >&2
  exit 2
}

find_bindir() {
  local d
  if [ -n "${LIVECHAT_PG_BINDIR:-}" ]; then
    echo "$LIVECHAT_PG_BINDIR"
    return
  fi
  # pg_config from libpq-dev may name a bindir without the server binaries: check for initdb.
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return
    fi
  fi
  for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return
    fi
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return
  die "no PostgreSQL server binaries found (apt-get install postgresql, or set LIVECHAT_PG_BINDIR)"
}

bindir=$(find_bindir)

run_user=""
if [ "$(id -u)" -eq 0 ]; then
  run_user=${LIVECHAT_PG_USER:-postgres}
  id -u "$run_user" >/dev/null 2>&1 || die "running as root needs a user '$run_user' to run the server as (set LIVECHAT_PG_USER)"
  command -v runuser >/dev/null 2>&1 || die "running as root needs runuser (util-linux)"
fi

# Runs a command as the server's user (the invoking user unless that is root).
as_pg() {
  if [ -n "$run_user" ]; then
    runuser -u "$run_user" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sets $dir (absolute), $data, $sock, $log from DIR.
set_paths() {
  [ -d "$1" ] || die "no such directory: $1"
  dir=$(cd "$1" && pwd)
  data="$dir/data"
  sock="$dir/socket"
  log="$dir/postgres.log"
}

# The port the cluster in $data is configured for (empty if none yet).
configured_port() {
  [ -f "$data/livechat.conf" ] || return 0
  sed -n -E "s/^port = ([0-9]+)$/\1/p" "$data/livechat.conf" | tail -n 1
}

write_conf() {
  local port=$1
  # Included from postgresql.conf (see cmd_start); rewritten on every start.
  as_pg tee "$data/livechat.conf" >/dev/null <<EOF
# written by scripts/pg-throwaway.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
EOF
}

is_running() {
  as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

print_url() {
  echo "postgres://postgres@127.0.0.1:$(configured_port)/livechat"
}

ensure_database() {
  local port
  port=$(configured_port)
  if [ "$(as_pg "$bindir/psql" -h "$sock" -p "$port" -U postgres -d postgres -XAtq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'livechat'")" != 1 ]; then
    as_pg "$bindir/createdb" -h "$sock" -p "$port" -U postgres livechat
  fi
}

cmd_start() {
  local want_port=${2:-}
  if [ -n "$want_port" ] && ! { [[ $want_port =~ ^[1-9][0-9]{0,4}$ ]] && [ "$want_port" -le 65535 ]; }; then
    die "bad port: $want_port"
  fi
  mkdir -p "$1"
  set_paths "$1"
  if [ -n "$run_user" ]; then
    chown "$run_user:" "$dir"
    as_pg test -w "$dir" -a -x "$dir" ||
      die "user $run_user cannot reach $dir (a parent directory is closed to it); use a directory under /tmp"
  fi
  if [ ${#sock} -gt 90 ]; then
    die "DIR path too long for a unix socket path ($sock/.s.PGSQL.N): use a shorter DIR"
  fi
  cd "$dir" # the server user may not be allowed into the caller's working directory
  as_pg mkdir -p "$sock"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    echo "include_if_exists = 'livechat.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
  fi
  if is_running; then
    if [ -z "$want_port" ] || [ "$want_port" = "$(configured_port)" ]; then
      ensure_database
      print_url
      return
    fi
    die "already running from $dir on port $(configured_port); stop it first"
  fi
  local attempt port prev_port
  prev_port=$(configured_port)
  for attempt in 1 2 3; do
    if [ -n "$want_port" ]; then
      port=$want_port
    elif [ "$attempt" -eq 1 ] && [ -n "$prev_port" ]; then
      port=$prev_port # an existing cluster keeps its URL if it can
    else
      port=$(free_port)
    fi
    write_conf "$port"
    if as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 30 start >/dev/null 2>&1; then
      ensure_database
      print_url
      return
    fi
    # With a port of our choosing, someone may have taken it meanwhile; try another.
    [ -z "$want_port" ] || break
  done
  tail -n 20 "$log" >&2
  die "could not start PostgreSQL (log: $log)"
}

cmd_stop() {
  [ -d "$1" ] || return 0
  set_paths "$1"
  [ -f "$data/PG_VERSION" ] || return 0
  cd "$dir"
  if is_running; then
    as_pg "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
  fi
}

cmd_restart() {
  set_paths "$1"
  [ -f "$data/PG_VERSION" ] || die "no cluster in $dir (start it first)"
  cd "$dir"
  if is_running; then
    as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -m fast -w -t 30 restart >/dev/null ||
      { tail -n 20 "$log" >&2; die "restart failed (log: $log)"; }
  else
    as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 30 start >/dev/null ||
      { tail -n 20 "$log" >&2; die "start failed (log: $log)"; }
  fi
  ensure_database
  print_url
}

[ $# -ge 2 ] || usage
case "$1" in
start) [ $# -le 3 ] || usage; cmd_start "$2" "${3:-}" ;;
stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
restart) [ $# -eq 2 ] || usage; cmd_restart "$2" ;;
*) usage ;;
esac
