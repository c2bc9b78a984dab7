#!/usr/bin/env bash
# A short load run for profiling and A/B checks (not the reported benchmark: use e2e.sh):
# starts `phoenix serve` (release build, embedded default or $CONFIG) on spare ports, runs
# `phoenix loadgen` over OTLP/HTTP (or gRPC), and prints the loadgen report, the server's CPU seconds and
# peak RSS, and its refusal, WAL and checkpoint counters.
#
# Usage: benches/quick.sh RATE DURATION SERIES [key=value ...]   (extra `--set` for serve)
# Environment: CONFIG (config file), MIX (loadgen --mix, default gauge=100), BIN (phoenix binary),
#   PROTOCOL (http or grpc, default http),
#   PERF=1 (perf record the server for PDUR seconds after a 6 s warm-up, to $work/perf.data;
#   PERF_HZ sets the frequency, PERF_CG the call-graph flag, e.g. "--call-graph dwarf"),
#   KEEP=1 (keep the work folder, printed as work=).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/phoenix/target}/release/phoenix}
RATE=$1 DUR=$2 SERIES=$3; shift 3
W=$(mktemp -d)
sets=(--set ingest.grpc_listen=127.0.0.1:24317 --set ingest.http_listen=127.0.0.1:24318
      --set api.listen=127.0.0.1:28080 --set storage.url="$W/tables" --set storage.data_dir="$W")
for s in "$@"; do sets+=(--set "$s"); done
"$BIN" serve ${CONFIG:+--config "$CONFIG"} "${sets[@]}" 2>"$W/serve.log" & S=$!
trap 'kill "$S" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf 127.0.0.1:28080/health >/dev/null && break; sleep 0.1; done
c0=$(awk '{print $14+$15}' "/proc/$S/stat")
port=24318; [[ "${PROTOCOL:-http}" == grpc ]] && port=24317
"$BIN" loadgen --endpoint "http://127.0.0.1:$port" --protocol "${PROTOCOL:-http}" --rate "$RATE" --series "$SERIES" \
    --duration "$DUR" --connections 8 --batch-size 1000 --mix "${MIX:-gauge=100}" >"$W/loadgen.out" 2>&1 &
L=$!
if [[ -n "${PERF:-}" ]]; then
    sleep 6
    perf record -F ${PERF_HZ:-199} ${PERF_CG:--g} -p "$S" -o "$W/perf.data" -- sleep "${PDUR:-15}" >/dev/null 2>&1 || true
fi
wait "$L"
c1=$(awk '{print $14+$15}' "/proc/$S/stat")
curl -s 127.0.0.1:28080/metrics >"$W/metrics.txt"
rss=$(awk '/VmHWM/{print $2}' "/proc/$S/status")
kill -TERM "$S"; wait "$S" || true
tail -1 "$W/loadgen.out"
echo "server_cpu_s=$(awk -v t=$(( c1 - c0 )) 'BEGIN{printf "%.2f", t / 100}') peak_rss_mib=$(( rss / 1024 )) work=$W"
grep -E "^phoenix_(ingest_requests_rejected_total|wal_bytes |checkpoint_bytes|checkpoints_written_total|checkpoint_duration_seconds_sum)" \
    "$W/metrics.txt" || true
# The data is kept only for a perf profile or when asked (KEEP=1).
[[ -n "${PERF:-}${KEEP:-}" ]] || rm -rf "$W"
