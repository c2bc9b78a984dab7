#!/usr/bin/env bash
# A Kafka-protocol broker for Phoenix's tests: nisshi 0.8.1 (a Kafka broker in Rust, successor of
# tansu), built once with cargo and cached; no Apache Kafka or Redpanda is needed.
#
# Usage:
#   scripts/kafka-broker.sh install              build and cache the broker (skipped when cached)
#   scripts/kafka-broker.sh start PORT [STORAGE] start one on 127.0.0.1:PORT and wait until it
#                                                accepts connections; STORAGE defaults to
#                                                memory://nisshi/ (sqlite://FILE is relative to
#                                                the broker's working directory, see below)
#   scripts/kafka-broker.sh stop [PORT]          stop the broker on PORT (default: every broker
#                                                this script started in its state directory)
#   scripts/kafka-broker.sh bin                  print the broker binary's path (installs first)
#   scripts/kafka-broker.sh cached               print the cached binary's path; exit 1 if none
#
# Environment:
#   PHOENIX_CACHE         cache root (default ~/.cache/phoenix); the broker is installed under
#                         $PHOENIX_CACHE/nisshi (or $PHOENIX_CACHE/tansu for the fallback)
#   PHOENIX_KAFKA_STATE   pid and log files, and the broker's working directory
#                         (default $PHOENIX_CACHE/kafka-broker); logs are PORT.log there
#   PHOENIX_KAFKA_BROKER  use this broker binary instead of installing one
#
# If nisshi cannot be built, tansu 0.6.0 (same command line; its SQLite storage works for
# produce, consume and consumer groups) is installed instead.
set -euo pipefail

CACHE="${PHOENIX_CACHE:-$HOME/.cache/phoenix}"
STATE="${PHOENIX_KAFKA_STATE:-$CACHE/kafka-broker}"
NISSHI_ROOT="$CACHE/nisshi"
TANSU_ROOT="$CACHE/tansu"
START_TIMEOUT_S=60

log() { printf '    kafka-broker: %s\n' "$*" >&2; }
die() { printf 'error: kafka-broker: %s\n' "$*" >&2; exit 1; }

# Prints the cached broker binary, if any.
cached_bin() {
    if [[ -n "${PHOENIX_KAFKA_BROKER:-}" ]]; then
        [[ -x "$PHOENIX_KAFKA_BROKER" ]] || die "PHOENIX_KAFKA_BROKER=$PHOENIX_KAFKA_BROKER is not executable"
        echo "$PHOENIX_KAFKA_BROKER"
    elif [[ -x "$NISSHI_ROOT/bin/nisshi" ]]; then
        echo "$NISSHI_ROOT/bin/nisshi"
    elif [[ -x "$TANSU_ROOT/bin/tansu" ]]; then
        echo "$TANSU_ROOT/bin/tansu"
    fi
}

install() {
    local bin
    bin="$(cached_bin)"
    if [[ -n "$bin" ]]; then
        log "broker cached: $bin"
        return 0
    fi
    # nisshi needs rustc >= 1.96: the nightly toolchain serves.
    local toolchain=(+nightly)
    rustup toolchain list 2>/dev/null | grep -q '^nightly' || toolchain=()
    mkdir -p "$CACHE"
    log "building nisshi 0.8.1 (about 11 minutes on 2 cores; cached afterwards)"
    if nice -n 10 cargo "${toolchain[@]}" install nisshi --version 0.8.1 --locked \
        --no-default-features --features dynostore,libsql --root "$NISSHI_ROOT" >&2; then
        return 0
    fi
    log "nisshi did not build; falling back to tansu 0.6.0"
    nice -n 10 cargo "${toolchain[@]}" install tansu --version 0.6.0 --locked \
        --no-default-features --features dynostore,libsql --root "$TANSU_ROOT" >&2 \
        || die "neither nisshi 0.8.1 nor tansu 0.6.0 could be built"
}

# Succeeds once something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
    local port="${1:-}" storage="${2:-memory://nisshi/}"
    [[ "$port" =~ ^[0-9]+$ ]] || die "start needs a PORT"
    install
    local bin
    bin="$(cached_bin)"
    mkdir -p "$STATE"
    local pidfile="$STATE/$port.pid" logfile="$STATE/$port.log"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "a broker started here already runs on port $port (pid $(cat "$pidfile"))"
    fi
    port_open "$port" && die "port $port is already in use"
    local url="tcp://127.0.0.1:$port"
    # The broker runs from $STATE so that sqlite://FILE lands there; setsid detaches it from
    # the caller's process group, so a test runner's Ctrl-C does not kill it mid-run.
    (
        cd "$STATE"
        exec setsid "$bin" broker --listener-url "$url" --advertised-listener-url "$url" \
            --storage-engine "$storage" >>"$logfile" 2>&1 </dev/null
    ) &
    local pid=$!
    echo "$pid" >"$pidfile"
    local waited=0
    until port_open "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            tail -n 20 "$logfile" >&2 || true
            die "broker exited during startup (log: $logfile)"
        fi
        ((waited < START_TIMEOUT_S * 10)) || { stop_port "$port"; die "broker did not listen on $port within ${START_TIMEOUT_S}s (log: $logfile)"; }
        sleep 0.1
        waited=$((waited + 1))
    done
    log "broker pid $pid listening on 127.0.0.1:$port (storage $storage, log $logfile)"
    echo "PHOENIX_KAFKA_BROKERS=127.0.0.1:$port"
}

stop_port() {
    local port="$1" pidfile="$STATE/$1.pid"
    [[ -f "$pidfile" ]] || { log "no broker started here on port $port"; return 0; }
    local pid
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        log "stopped broker pid $pid on port $port"
    fi
    rm -f "$pidfile"
}

stop() {
    if [[ -n "${1:-}" ]]; then
        stop_port "$1"
        return
    fi
    shopt -s nullglob
    for pidfile in "$STATE"/*.pid; do
        stop_port "$(basename "$pidfile" .pid)"
    done
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    bin) install; cached_bin ;;
    cached) bin="$(cached_bin)"; [[ -n "$bin" ]] && echo "$bin" ;;
    -h|--help|"") sed -n '2,24p' "$0"; [[ -n "${1:-}" ]] ;;
    *) die "unknown command: $1 (see --help)" ;;
esac
