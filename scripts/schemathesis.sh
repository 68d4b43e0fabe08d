#!/usr/bin/env bash
# Fuzzes the REST API against its description (docs/openapi.json, served at
# /api/openapi.json) with schemathesis: a `livechat serve` on a free loopback port (embedded
# backend, development mode, so the identity headers are believed), every check (all are on
# by default; the config below turns off two that do not apply, saying why), the examples,
# coverage, fuzzing and stateful phases (the stateful one follows the description's
# links: start -> read / send / queue -> accept -> agent read / close). Exits non-zero on any
# failure, on a server that died or panicked, or when schemathesis cannot run.
#
# Invocation, from anywhere, after `cargo build -p livechat-gateway --bin livechat`:
#
#   scripts/schemathesis.sh
#
# Environment (all optional):
#   LIVECHAT_BIN              the server binary (default: target/debug/livechat)
#   SCHEMATHESIS_MAX_EXAMPLES examples per operation in the fuzzing phase (default: 250)
#   SCHEMATHESIS_SEED         hypothesis seed (default: fixed, so runs are repeatable)
#   SCHEMATHESIS_REPORT_DIR   where the JUnit and HAR reports go (default: target/schemathesis)
#   SCHEMATHESIS_EXTRA_ARGS   more `schemathesis run` options, split on spaces (e.g.
#                             `--report ndjson` to see every event, `--max-failures 1`)
#
# Takes about 1.5 minutes on a 2-CPU machine (debug build).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Pinned: a new schemathesis brings new checks and new generators, i.e. new findings; move
# the pin on purpose. hypothesis is pinned with it (it decides what gets generated).
schemathesis_version=4.32.5
hypothesis_version=6.170.17

bin=${LIVECHAT_BIN:-$root/target/debug/livechat}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-250}
seed=${SCHEMATHESIS_SEED:-20251113}
report_dir=${SCHEMATHESIS_REPORT_DIR:-$root/target/schemathesis}

if [ ! -x "$bin" ]; then
  echo "schemathesis.sh: no server binary at $bin (cargo build -p livechat-gateway --bin livechat)" >&2
  exit 2
fi

# The same venv as the Python tests (scripts/test.sh creates it the same way).
venv=$root/target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
installed=$("$venv/bin/python" -c 'import importlib.metadata as m
print(m.version("schemathesis"), m.version("hypothesis"))' 2>/dev/null || true)
if [ "$installed" != "$schemathesis_version $hypothesis_version" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "hypothesis==$hypothesis_version"
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # It drains first; do not wait for long.
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Port 0: the kernel picks a free port, and the server prints the address it bound. No rate
# limit: the fuzzer is one client sending as fast as it can, and 429s would hide the answers
# under test (429 itself is described, and checked whenever it happens).
serve_args=(serve --listen 127.0.0.1:0 --executors 2 --no-pin --rest-rate 0)
if "$bin" serve --help | grep -q -- '--drain-delay'; then
  serve_args+=(--drain-delay 0ms)
fi
"$bin" "${serve_args[@]}" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

base=
for _ in $(seq 100); do
  base=$(sed -n 's|^listening on \(http://[^ ]*\).*|\1|p' "$work/server.out" | head -n 1)
  [ -n "$base" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "schemathesis.sh: the server did not start" >&2
    cat "$work/server.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "schemathesis.sh: the server printed no address" >&2
  exit 1
fi
# Ready when /healthz answers (the address is printed once every executor runs).
"$venv/bin/python" - "$base/healthz" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("schemathesis.sh: /healthz did not answer")
EOF

# Statuses that answer valid data for reasons of state, not of the data: a conversation the
# stateful phase closed (410), another agent's (409), an agent at capacity (429), an id that
# does not exist or is not the caller's (404, 403).
cat >"$work/schemathesis.toml" <<'EOF'
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "410", "429"]

# `DELETE /api/conversations/{id}` closes a conversation (the contract we replace): it stays
# readable, CLOSED, for `chat.conversation.retention`, so "deleted yet still there" is right.
[checks.use_after_free]
enabled = false

# The probes answer any method alike (a balancer's choice of method must not fail it), as
# the description says; every other path answers 405 with `Allow`.
[[operations]]
include-path-regex = "^/(healthz|readyz)$"
checks.unsupported_method.enabled = false
EOF

mkdir -p "$report_dir"
status=0
# One worker: on the machine's Python (3.11.7) two threads parsing with `ast` at once trip
# "SystemError: AST constructor recursion depth mismatch" inside hypothesis (CPython
# gh-106905), which errors whole phases; the server is not the bottleneck anyway.
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run \
  "$base/api/openapi.json" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$max_examples" \
  --seed "$seed" \
  --workers 1 \
  --request-timeout 10 \
  --report junit,har --report-dir "$report_dir" \
  ${SCHEMATHESIS_EXTRA_ARGS:-} \
  2>&1 | tee "$work/schemathesis.out" || status=$?

# A test case that errored (the request could not be sent, a link could not be followed)
# tested nothing, yet schemathesis exits 0 for it.
if grep -Eq '^ +[0-9]+ generated, .*[0-9]+ errored|^Errors:' "$work/schemathesis.out"; then
  echo "schemathesis.sh: some test cases errored (see above)" >&2
  status=1
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schemathesis.sh: the server died during the run" >&2
  cat "$work/server.err" >&2
  status=1
elif grep -q 'panicked' "$work/server.err"; then
  echo "schemathesis.sh: the server panicked during the run" >&2
  grep -A5 'panicked' "$work/server.err" >&2
  status=1
fi
exit "$status"
