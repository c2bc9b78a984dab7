#!/usr/bin/env bash
# Runs every Phoenix test on a fresh Debian machine with Rust installed:
#   1. system packages and the Python venv (scripts/setup-test-env.sh; idempotent)
#   2. Rust tests of the whole workspace (cargo-nextest when installed, else cargo test)
#   3. the `phoenix` binary (debug build)
#   4. end-to-end tests (pytest tests/e2e) against that binary
# Every stage runs even if an earlier one failed (except e2e without a binary); the exit code is
# non-zero if anything failed, and a summary lists each stage's result.
#
# Usage: scripts/test.sh [--no-rust] [--no-e2e] [-- PYTEST_ARGS...]
# Environment: CARGO_TARGET_DIR (default ~/.cache/phoenix/target, reused so datafusion is built
# once), PHOENIX_CACHE (default ~/.cache/phoenix; holds the venv), PHOENIX_BIN (skip the build
# and test this binary instead).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

run_rust=1
run_e2e=1
pytest_args=()
while (($#)); do
    case "$1" in
        --no-rust) run_rust=0 ;;
        --no-e2e) run_e2e=0 ;;
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "error: unknown argument: $1 (see --help)" >&2; exit 1 ;;
    esac
    shift
done

export PHOENIX_CACHE="${PHOENIX_CACHE:-$HOME/.cache/phoenix}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PHOENIX_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
VENV="$PHOENIX_CACHE/venv"

declare -a summary=()
failed=0
started=$SECONDS

section() { printf '\n==> %s\n' "$*"; }
record() { # record NAME STATUS(0=ok) SECONDS
    local name="$1" rc="$2" secs="$3"
    if [[ "$rc" == 0 ]]; then
        summary+=("ok      ${name} (${secs}s)")
    else
        summary+=("FAILED  ${name} (exit ${rc}, ${secs}s)")
        failed=1
    fi
}
stage() { # stage NAME COMMAND...
    local name="$1"; shift
    local t0=$SECONDS
    "$@"
    local rc=$?
    record "$name" "$rc" "$((SECONDS - t0))"
    return "$rc"
}
finish() {
    section "Summary ($((SECONDS - started))s total)"
    printf '    %s\n' "${summary[@]}"
    if ((failed)); then
        echo "==> FAILED"
        exit 1
    fi
    echo "==> ALL PASSED"
    exit 0
}

section "Environment"
command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
echo "    repo:             $ROOT"
echo "    rustc:            $(rustc --version)"
echo "    CARGO_TARGET_DIR: $CARGO_TARGET_DIR"
echo "    python venv:      $VENV"

# A reused target directory only grows; prune stale copies when the disk runs low.
"$ROOT/scripts/prune-target.sh" "$CARGO_TARGET_DIR" || echo "    warning: pruning the target dir failed"

section "[1/4] System packages and Python venv"
stage "setup (apt packages, python venv)" "$ROOT/scripts/setup-test-env.sh" || finish

# A Kafka-protocol broker for the Kafka-bus tests (built once, cached under $PHOENIX_CACHE);
# Rust tests read PHOENIX_KAFKA_BROKERS, e2e tests start their own brokers with the same script.
section "Kafka broker (scripts/kafka-broker.sh)"
# A state folder this run made is removed at exit; one given in PHOENIX_KAFKA_STATE is kept.
kafka_state_made=""
if [[ -z "${PHOENIX_KAFKA_STATE:-}" ]]; then
    PHOENIX_KAFKA_STATE="$(mktemp -d "${TMPDIR:-/tmp}/phoenix-kafka.XXXXXX")"
    kafka_state_made="$PHOENIX_KAFKA_STATE"
fi
export PHOENIX_KAFKA_STATE
trap '[[ -z "$kafka_state_made" ]] || rm -rf "$kafka_state_made"' EXIT
kafka_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if stage "kafka broker (install, start)" "$ROOT/scripts/kafka-broker.sh" start "$kafka_port"; then
    export PHOENIX_KAFKA_BROKERS="127.0.0.1:$kafka_port"
    trap '"$ROOT/scripts/kafka-broker.sh" stop >/dev/null 2>&1 || true
          [[ -z "$kafka_state_made" ]] || rm -rf "$kafka_state_made"' EXIT
    echo "    PHOENIX_KAFKA_BROKERS=$PHOENIX_KAFKA_BROKERS"
fi

if ((run_rust)); then
    section "[2/4] Rust tests (cargo, whole workspace)"
    if cargo nextest --version >/dev/null 2>&1; then
        stage "cargo nextest run --workspace" \
            cargo nextest run --workspace --no-fail-fast --no-tests=pass
        # nextest does not run doctests.
        stage "cargo test --workspace --doc" cargo test --workspace --doc --no-fail-fast
    else
        stage "cargo test --workspace" cargo test --workspace --no-fail-fast
    fi
    # Benchmarks must keep compiling (release profile; reuses the cached target dir).
    stage "cargo bench --no-run --workspace" cargo bench --no-run --workspace
else
    section "[2/4] Rust tests: skipped (--no-rust)"
fi

if ((run_e2e)); then
    section "[3/4] Build the phoenix binary (debug)"
    if [[ -n "${PHOENIX_BIN:-}" ]]; then
        echo "    using PHOENIX_BIN=$PHOENIX_BIN"
        build_rc=0
        [[ -x "$PHOENIX_BIN" ]] || { echo "error: PHOENIX_BIN is not an executable" >&2; build_rc=1; }
        record "phoenix binary (PHOENIX_BIN)" "$build_rc" 0
    else
        stage "cargo build -p phoenix" cargo build -p phoenix
        build_rc=$?
        export PHOENIX_BIN="$CARGO_TARGET_DIR/debug/phoenix"
    fi

    section "[4/4] End-to-end tests (pytest tests/e2e)"
    if [[ "$build_rc" == 0 ]]; then
        # Bounded as a whole too; each test also has its own timeout (tests/e2e/pytest.ini).
        stage "pytest tests/e2e" timeout --signal=TERM --kill-after=30 1500 \
            "$VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider "${pytest_args[@]}"
        # The spine's OTLP-to-SQL tests and the anomaly tests again, unchanged, on the Kafka bus
        # (`--role all`).
        if [[ -n "${PHOENIX_KAFKA_BROKERS:-}" ]]; then
            stage "pytest OTLP-to-SQL tests on the Kafka bus" env PHOENIX_E2E_BUS=kafka \
                timeout --signal=TERM --kill-after=30 300 \
                "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
                tests/e2e/test_sdk_roundtrip.py tests/e2e/test_otlp_http_formats.py \
                tests/e2e/test_sql_api.py tests/e2e/test_anomaly_stream.py "${pytest_args[@]}"
        fi
    else
        echo "    skipped: the phoenix binary did not build"
        record "pytest tests/e2e (not run: no binary)" 1 0
    fi
else
    section "[3/4] [4/4] End-to-end tests: skipped (--no-e2e)"
fi

finish
