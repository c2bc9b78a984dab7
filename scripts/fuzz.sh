#!/usr/bin/env bash
# Fuzzes the OTLP decoders and the config parser with cargo-fuzz (libFuzzer, nightly toolchain).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 300
#   TARGET              otlp_protobuf, otlp_json, config_yaml (default: all three)
#
# Installs cargo-fuzz into ~/.cargo/bin (and the nightly toolchain) when missing. Builds with
# `nice -n 10` into CARGO_TARGET_DIR (default ~/.cache/phoenix/target-fuzz, apart from the main
# target dir). The in-tree seeds (ingest/fuzz/corpus/<target>) are read, never written: new
# corpus entries go to $PHOENIX_CACHE/fuzz/corpus/<target>, crashes to
# $PHOENIX_CACHE/fuzz/artifacts/<target>/. A crash found is fixed in the decoder and its input
# kept under ingest/fuzz/regressions/<target>/ (replayed by `cargo test -p phoenix-ingest`).
# Prints executions and seconds per target; exits 1 if any target crashed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-300}"
shift || true
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(otlp_protobuf otlp_json config_yaml)

export PHOENIX_CACHE="${PHOENIX_CACHE:-$HOME/.cache/phoenix}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PHOENIX_CACHE/target-fuzz}"
WORK="$PHOENIX_CACHE/fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd "$ROOT/ingest"
echo "==> building fuzz targets (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
nice -n 10 cargo +nightly fuzz build

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/corpus/$t" "$WORK/artifacts/$t"
    log="$WORK/$t.log"
    echo "==> fuzzing $t for ${SECS}s (log: $log)"
    start=$SECONDS
    rc=0
    nice -n 10 cargo +nightly fuzz run "$t" "$WORK/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -artifact_prefix="$WORK/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
    secs=$((SECONDS - start))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    if ((rc)); then
        failed=1
        summary+=("$t: CRASH after ${secs}s, ${execs:-?} executions; see $log and $WORK/artifacts/$t/")
        tail -40 "$log"
    else
        summary+=("$t: ok, ${execs:-?} executions in ${secs}s")
    fi
done
echo "==> summary"
printf '    %s\n' "${summary[@]}"
exit "$failed"
