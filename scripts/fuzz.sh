#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS_PER_TARGET seconds (default
# 20) on a copy of its seed corpus; fails on any crash, timeout, leak or out-of-memory, and
# prints where the input that caused it is. Known crash inputs in fuzz/regressions/ are
# replayed first (those listed in fuzz/regressions/OPEN, reported but not fixed, only warn).
# See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#
# Environment:
#   FUZZ_SANITIZER   none (default) or address. none: a cheaper cold build (~10 instead of
#                    ~12 CPU-minutes) and ~10x the executions per second; panics, overflow
#                    and bounds checks still fire (the gateway has no unsafe code). address
#                    adds AddressSanitizer + LeakSanitizer (memory errors in dependencies'
#                    unsafe code, leaks); use it for long runs.
#   FUZZ_CACHE       where the build and the run copies live (default ~/.cache/livechat):
#                    $FUZZ_CACHE/fuzz-target-<sanitizer> is the cargo target dir (reused),
#                    $FUZZ_CACHE/fuzz-run/<target>/ the corpus copy, log and crash artifacts.
#   FUZZ_JOBS        targets run at once (default 1; the machine's other work permitting).
#
# The toolchain is the stable one that is installed: cargo-fuzz passes nightly-only flags
# (-Zsanitizer=..., -Cpasses=sancov-module with -Z options), which stable rustc accepts with
# RUSTC_BOOTSTRAP=1. That variable is set only for the cargo invocations of this script.
set -euo pipefail

SECS=${1:-20}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ALL_TARGETS=(http_request engineio_packet ws_frame socketio_packet chat_payload)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
SANITIZER=${FUZZ_SANITIZER:-none}
CACHE=${FUZZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livechat}
TARGET_DIR=$CACHE/fuzz-target-$SANITIZER
RUN_DIR=$CACHE/fuzz-run
JOBS=${FUZZ_JOBS:-1}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
CARGO_FUZZ_VERSION=0.13.2

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into ~/.cargo/bin" >&2
    cargo install --locked --root "$HOME/.cargo" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export PATH="$HOME/.cargo/bin:$PATH"

# -O: optimised; -a: debug assertions and overflow checks on (they find real bugs; cost ~10 %).
BUILD=(--release --debug-assertions --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR")
start=$(date +%s)
mkdir -p "$RUN_DIR"
if ! (cd "$ROOT/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz build "${BUILD[@]}") >"$RUN_DIR/build.log" 2>&1; then
    tail -40 "$RUN_DIR/build.log" >&2
    echo "fuzz: build failed (log: $RUN_DIR/build.log)" >&2
    exit 1
fi
echo "fuzz: built in $(($(date +%s) - start)) s (sanitizer: $SANITIZER, target dir: $TARGET_DIR)"
BIN_DIR=$TARGET_DIR/$TRIPLE/release

# Per-target libFuzzer options: http_request needs inputs past the 16 KiB head limit.
max_len() {
    case $1 in
        http_request) echo 20000 ;;
        *) echo 4096 ;;
    esac
}

failed=0

# 1. Known crash inputs (strict: known-open checks the targets skip while fuzzing are on).
# Inputs listed in fuzz/regressions/OPEN are bugs reported but not fixed yet: they are
# reported, not fatal; delete a line there once its fix lands, and it guards from then on.
shopt -s nullglob
for t in "${TARGETS[@]}"; do
    for r in "$ROOT"/fuzz/regressions/"$t"-*.bin; do
        name=$(basename "$r")
        log=$RUN_DIR/regression-$name.log
        if LIVECHAT_FUZZ_STRICT=1 "$BIN_DIR/$t" -runs=1 "$r" >"$log" 2>&1; then
            echo "fuzz: regression $name: passes"
        elif grep -qx "$name" "$ROOT/fuzz/regressions/OPEN" 2>/dev/null; then
            echo "fuzz: regression $name: still open (listed in fuzz/regressions/OPEN; log: $log)"
        else
            echo "fuzz: regression $name: FAILS; log: $log" >&2
            grep -m1 -A1 -E 'panicked at|ERROR: ' "$log" >&2 || true
            failed=1
        fi
    done
done

# 2. A timed run per target on a copy of its seed corpus.
run_one() {
    local t=$1 dir=$RUN_DIR/$1
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp "$ROOT/fuzz/corpus/$t/"* "$dir/corpus/"
    local rc=0
    "$BIN_DIR/$t" "$dir/corpus" -max_total_time="$SECS" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1 || rc=$?
    local artifacts=("$dir"/artifacts/*)
    local execs cov ft
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$dir/log" | tail -1)
    if [ "$rc" -ne 0 ] || [ ${#artifacts[@]} -gt 0 ]; then
        echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} runs; log: $dir/log" >&2
        for a in "${artifacts[@]}"; do
            echo "fuzz: $t: crash input: $a" >&2
            echo "fuzz:   reproduce: $BIN_DIR/$t $a" >&2
            echo "fuzz:   minimise:  cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${BUILD[*]} $t $a" >&2
        done
        grep -m1 -A3 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)' "$dir/log" >&2 || true
        return 1
    fi
    echo "fuzz: $t: ok, ${execs:-?} runs in ${SECS} s ($((${execs:-0} / SECS))/s), ${cov:-cov: ?}, corpus $(ls "$dir/corpus" | wc -l) files"
}

if [ "$JOBS" -le 1 ]; then
    for t in "${TARGETS[@]}"; do run_one "$t" || failed=1; done
else
    pids=()
    for t in "${TARGETS[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
        run_one "$t" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
fi

if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED" >&2
    exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${SECS} s each without a crash"
