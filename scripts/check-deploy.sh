#!/usr/bin/env bash
# scripts/check-deploy.sh — validates everything under deploy/ that can be validated on this
# machine, without a cluster, a Docker daemon or the network (past the one-time install of
# the pinned Python tools).
#
#   scripts/check-deploy.sh
#
# Checks (each one reported ok / FAILED / skipped with the reason; the exit status is 1 if
# any failed):
#   shell        bash -n and (if installed) shellcheck on deploy/*.sh and this script
#   yamllint     every YAML file in deploy/ with deploy/.yamllint
#   k8s-schema   kubernetes-validate --strict on every manifest in deploy/kubernetes (and on
#                the kustomize output), against the Kubernetes versions in $K8S_VERSIONS
#   kustomize    kubectl kustomize deploy/kubernetes        (when kubectl is installed)
#   compose      docker compose config -q (the plugin) or docker-compose config -q (Debian's
#                1.29) when present, and always the compose-spec JSON schema
#   hadolint     deploy/docker/Dockerfile
#   haproxy      haproxy -c on the rendered local-cluster config and on the compose one
#                (when haproxy is installed)
#   node-config  the ConfigMap's TOML and the compose nodes' LIVECHAT_CHAT_* variables,
#                parsed by the livechat binary itself (when one is built)
#   dashboard    deploy/grafana/livechat-dashboard.json parses, ids are unique, every query
#                uses the datasource variable and names only known livechat_ metrics
#
# The Python tools (deploy/check-requirements.txt, all pinned) go into target/py-venv,
# created with `python3 -m venv` when missing. LIVECHAT_BIN picks the binary for
# node-config (default target/release/livechat, else target/debug/livechat).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/target/py-venv"
# The oldest Kubernetes minor still commonly offered by managed clusters, and a recent one:
# kubernetes-validate bundles their schemas, so no network is needed.
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.33.0"}

passed=()
failed=()
skipped=()
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# Runs check function $2 under name $1, its output into a log shown only on failure. Every
# check function chains its steps with && / || return 1: `set -e` does not apply inside a
# function called as an `if` condition.
run() {
  local name=$1 fn=$2
  printf 'check-deploy: %-12s ' "$name"
  local rc=0
  "$fn" >"$log/$name" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo ok
    passed+=("$name")
  elif [ "$rc" -eq 77 ]; then
    # 77: the check could not run here (tool missing); its log says why.
    echo "skipped ($(tail -n 1 "$log/$name"))"
    skipped+=("$name")
  else
    echo FAILED
    sed 's/^/    /' "$log/$name"
    failed+=("$name")
  fi
}

# Says why a check cannot run here; the caller then returns its status (77).
skip() {
  echo "$*"
  return 77
}

# --- tools --------------------------------------------------------------------------------

setup_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || { echo "check-deploy: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  fi
  # pip checks what is installed against the pins and downloads only what differs.
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-input --only-binary=:all: \
    -r deploy/check-requirements.txt ||
    { echo "check-deploy: installing deploy/check-requirements.txt into $venv failed" >&2; exit 1; }
}

find_bin() {
  if [ -n "${LIVECHAT_BIN:-}" ]; then
    echo "$LIVECHAT_BIN"
  elif [ -x target/release/livechat ]; then
    echo target/release/livechat
  elif [ -x target/debug/livechat ]; then
    echo target/debug/livechat
  fi
}

# --- checks -------------------------------------------------------------------------------

check_shell() {
  local scripts=(deploy/*.sh scripts/check-deploy.sh) s
  for s in "${scripts[@]}"; do
    bash -n "$s" || return 1
  done
  if command -v shellcheck >/dev/null 2>&1; then
    shellcheck "${scripts[@]}" || return 1
  else
    echo "shellcheck not installed: bash -n only (apt-get install shellcheck)"
  fi
}

check_yamllint() {
  "$venv/bin/yamllint" --strict -c deploy/.yamllint deploy/
}

manifests() {
  local f
  for f in deploy/kubernetes/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || echo "$f"
  done
}

check_k8s_schema() {
  local v files
  mapfile -t files < <(manifests)
  [ "${#files[@]}" -gt 0 ] || { echo "no manifests in deploy/kubernetes"; return 1; }
  for v in $K8S_VERSIONS; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${files[@]}" || return 1
    if command -v kubectl >/dev/null 2>&1; then
      # What `kubectl apply -k` would send: the namespace, labels and image set by kustomize.
      kubectl kustomize deploy/kubernetes >"$log/kustomized.yaml" &&
        "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$log/kustomized.yaml" || return 1
    fi
  done
  echo "validated against Kubernetes $K8S_VERSIONS"
}

check_kustomize() {
  command -v kubectl >/dev/null 2>&1 || { skip "kubectl not installed"; return; }
  local out
  out=$(kubectl kustomize deploy/kubernetes) || return 1
  # Every file listed in kustomization.yaml became an object.
  local kinds
  kinds=$(grep -c '^kind: ' <<<"$out")
  [ "$kinds" -eq "$(manifests | wc -l)" ] || { echo "kustomize emitted $kinds objects, deploy/kubernetes has $(manifests | wc -l) manifests"; return 1; }
}

check_compose() {
  local file=deploy/docker/compose.yaml ran=""
  # The compose-spec schema (bundled with check-jsonschema) knows every key of today's
  # Compose; the CLIs below also resolve anchors, interpolation and dependencies.
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$file" || return 1
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    docker compose -f "$file" config -q || return 1
    ran="docker compose"
  fi
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f "$file" config -q || return 1
    ran="${ran:+$ran, }docker-compose $(docker-compose version --short 2>/dev/null)"
  fi
  echo "compose-spec schema${ran:+, $ran}"
  if [ -z "$ran" ]; then
    echo "no docker compose plugin nor docker-compose here: schema check only"
  fi
}

check_hadolint() {
  "$venv/bin/hadolint" --config deploy/docker/.hadolint.yaml deploy/docker/Dockerfile
}

# haproxy -c exits 0 with warnings: they are read from its output. The compose config names
# its servers by compose service name, which resolves only inside the compose network; that
# warning is the one expected.
check_haproxy() {
  command -v haproxy >/dev/null 2>&1 || { skip "haproxy not installed (apt-get install haproxy)"; return; }
  local out
  deploy/local-cluster.sh haproxy-config 3 >"$log/local-haproxy.cfg" || return 1
  out=$(haproxy -c -f "$log/local-haproxy.cfg" 2>&1) || { echo "$out"; return 1; }
  if grep -q '\[WARNING\]' <<<"$out"; then echo "$out"; return 1; fi
  out=$(haproxy -c -f deploy/docker/haproxy.cfg 2>&1) || { echo "$out"; return 1; }
  if grep '\[WARNING\]' <<<"$out" | grep -v 'could not resolve address'; then echo "$out"; return 1; fi
  haproxy -v | sed -n 1p # sed reads all: head would close the pipe under pipefail
}

# `livechat check-config` reads the whole configuration as `serve` would (file and
# LIVECHAT_CHAT_* variables, unknown keys and bad values refused, the security mode against
# the listen address) without connecting anything.
node_config_ok() {
  local out
  # A clean environment: the caller's own LIVECHAT_* variables must not mix in.
  if out=$(env -i PATH="$PATH" RUST_BACKTRACE=0 "$@" 2>&1); then
    sed -n 1p <<<"$out"
    return 0
  fi
  sed -n 1,5p <<<"$out"
  return 1
}

check_node_config() {
  local bin
  bin=$(find_bin)
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    skip "no livechat binary (cargo build -p livechat-gateway --bin livechat)"
    return
  fi
  "$venv/bin/python" - "$log" <<'PY' || return 1
import sys, yaml
out = sys.argv[1]
cm = yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))
open(f"{out}/livechat.toml", "w").write(cm["data"]["livechat.toml"])
compose = yaml.safe_load(open("deploy/docker/compose.yaml"))
for name in ("livechat-1", "livechat-2", "livechat-3"):
    env = compose["services"][name]["environment"]
    with open(f"{out}/{name}.env", "w") as f:
        for k, v in env.items():
            if k.startswith("LIVECHAT_CHAT_") and k != "LIVECHAT_CHAT_DATABASE_URL":
                f.write(f"{k}={v}\n")
PY
  # The key file the ConfigMap names is mounted from a Secret in the cluster; here the RSA
  # test key stands in for it (check-config reads and parses it).
  echo "ConfigMap TOML:" && node_config_ok env \
    LIVECHAT_CHAT_SECURITY_JWT_PUBLIC_KEY_FILE="$root/gateway/src/chat/auth/testdata/rsa-public.pem" \
    "$bin" check-config --listen 0.0.0.0:8080 --config "$log/livechat.toml" || return 1
  local n
  for n in 1 2 3; do
    local vars=()
    mapfile -t vars <"$log/livechat-$n.env"
    echo "compose livechat-$n env:" && node_config_ok env "${vars[@]}" "$bin" check-config --listen 0.0.0.0:8080 || return 1
  done
  echo "with $bin"
}

check_dashboard() {
  "$venv/bin/python" - deploy/grafana/livechat-dashboard.json <<'PY'
import json, re, sys
path = sys.argv[1]
d = json.load(open(path))
# What GET /metrics exports today, and the names announced for issue 12.
known = {
    "mesh_full_total", "mesh_disconnected_total", "outbox_overflow_total",
    "broadcast_stale_member_total", "late_acks_total", "chat_flood_refused_total",
    "chat_rate_limited_total", "chat_rate_disconnects_total", "chat_capacity_refused_total",
    "http_refused_node_cap_total", "http_refused_ip_conns_total", "http_rate_limited_total",
    "http_timeouts_total", "http_malformed_total", "http_origin_refused_total",
    "http_accept_errors_total", "events_published_total", "events_delivered_total",
    "events_dropped_total", "database_commits_total", "database_rows_total",
    "database_stale_total", "database_errors_total", "database_reverts_total",
    "database_queue_full_total", "database_touches_total", "database_touches_dropped_total",
    "database_reads_total", "database_read_errors_total",
    "connections", "sockets", "rooms", "conversations", "queue_length",
    "queue_oldest_wait_seconds", "messages_stored_total", "deliveries_total", "accepts_total",
    "backend_command_duration_seconds_bucket", "backend_errors_total",
    "kafka_events_dropped_total", "pubsub_messages_total", "executor_mailbox_depth",
    "build_info",
}
errors = []
names = {v["name"] for v in d.get("templating", {}).get("list", [])}
if "datasource" not in names:
    errors.append("no `datasource` template variable")
ids = [p["id"] for p in d["panels"]]
if len(ids) != len(set(ids)):
    errors.append("duplicate panel ids")
queries = 0
for p in d["panels"]:
    if p["type"] == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        errors.append(f"panel {p['title']!r} does not use ${{datasource}}")
    for t in p.get("targets", []):
        queries += 1
        if t.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel {p['title']!r} query {t['refId']} does not use ${{datasource}}")
        for m in re.findall(r"\blivechat_([a-z_]+)", t["expr"]):
            if m not in known:
                errors.append(f"panel {p['title']!r}: unknown metric livechat_{m}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(d['panels'])} panels, {queries} queries")
PY
}

# --- main ---------------------------------------------------------------------------------

setup_venv
run shell check_shell
run yamllint check_yamllint
run k8s-schema check_k8s_schema
run kustomize check_kustomize
run compose check_compose
run hadolint check_hadolint
run haproxy check_haproxy
run node-config check_node_config
run dashboard check_dashboard

echo "check-deploy: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "check-deploy: FAILED: ${failed[*]}" >&2
  exit 1
fi
