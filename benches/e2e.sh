#!/usr/bin/env bash
# End-to-end benchmark of one Phoenix node on this machine (generator on the same machine).
#
# Builds release, starts `phoenix serve` on the embedded default (data in a temp dir), pushes
# OTLP with `phoenix loadgen` for DURATION seconds, and reports: accepted datapoints/s, the
# decode-only ceiling measured in the same run (criterion, prost only) and the ratio, p50/p99
# export latency, peak RSS, CPU seconds per million datapoints (server, and the generator that
# shares the machine), refused requests by the server's reason, Parquet bytes per datapoint,
# and a SQL check that stored == accepted. With PEER_ENDPOINT set, the same load runs against that
# OTLP endpoint too and the ratio is printed.
#
# Environment (defaults in brackets):
#   RATE [1000000] target datapoints/s   DURATION [60]   SERIES [100000]   PROTOCOL [http]
#   CONNECTIONS [8]   BATCH [1000]   MIX [gauge=100]   EXTRA_SETS (more `--set k=v` for serve)
#   CONFIG (a config file for serve instead of the embedded default, e.g. configs/examples/empty.yaml)
#   LOADGEN_ARGS (more loadgen flags, e.g. "--timestamps aligned --decimals 2")
#   PEER_ENDPOINT (e.g. http://127.0.0.1:14318)   SKIP_CEILING=1 to skip the criterion run
# Output: a human summary, then one JSON line with every figure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phoenix/target}"
RATE="${RATE:-1000000}" DURATION="${DURATION:-60}" SERIES="${SERIES:-100000}"
PROTOCOL="${PROTOCOL:-http}" CONNECTIONS="${CONNECTIONS:-8}" BATCH="${BATCH:-1000}"
MIX="${MIX:-gauge=100}"
BIN="$CARGO_TARGET_DIR/release/phoenix"

echo "==> building release" >&2
cargo build --release -p phoenix >&2

ceiling=null
if [[ "${SKIP_CEILING:-0}" != 1 ]]; then
    echo "==> decode-only ceiling (criterion, prost only, one core)" >&2
    out=$(cargo bench -p phoenix-benches --bench otlp_decode -- prost_only \
        --warm-up-time 2 --measurement-time 5 2>/dev/null | grep -A2 'prost_only' | grep thrpt || true)
    # "thrpt:  [a Melem/s b Melem/s c Melem/s]": take the middle (point estimate).
    ceiling=$(awk '{for(i=1;i<=NF;i++) if($i ~ /elem\/s/){n++; if(n==2){v=$(i-1); u=$i}}} END{
        m=(u ~ /^M/)?1e6:(u ~ /^K/)?1e3:(u ~ /^G/)?1e9:1; if (v!="") printf "%.0f", v*m; else print "null"}' <<<"$out")
fi

WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
ports=($(python3 - <<'PY'
import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])
PY
))
GRPC=127.0.0.1:${ports[0]} HTTP=127.0.0.1:${ports[1]} API=http://127.0.0.1:${ports[2]}
sets=(--set "ingest.grpc_listen=$GRPC" --set "ingest.http_listen=$HTTP"
      --set "api.listen=127.0.0.1:${ports[2]}" --set "storage.url=$WORK/tables"
      --set "storage.data_dir=$WORK")
for s in ${EXTRA_SETS:-}; do sets+=(--set "$s"); done
echo "==> phoenix serve (${CONFIG:-embedded default}, data in $WORK) ${EXTRA_SETS:-}" >&2
"$BIN" serve ${CONFIG:+--config "$CONFIG"} "${sets[@]}" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "$API/health" >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
cpu0=$(cpu_ticks "$SERVER")
if [[ "$PROTOCOL" == grpc ]]; then endpoint="http://$GRPC"; else endpoint="http://$HTTP"; fi
echo "==> phoenix loadgen: $PROTOCOL, $RATE dp/s target, $SERIES series, ${DURATION}s" >&2
# CPU of finished children: the generator's is the difference around it. (`times` runs in
# this shell: in a subshell or pipeline it would see that subshell's children only.)
times > "$WORK/times0"
report=$("$BIN" loadgen --endpoint "$endpoint" --protocol "$PROTOCOL" --rate "$RATE" \
    --series "$SERIES" --duration "$DURATION" --connections "$CONNECTIONS" \
    --batch-size "$BATCH" --mix "$MIX" ${LOADGEN_ARGS:-} | tail -n 1)
cpu1=$(cpu_ticks "$SERVER")
times > "$WORK/times1"
rss_kb=$(awk '/VmHWM/{print $2}' "/proc/$SERVER/status")
# Requests the server refused (503 / UNAVAILABLE, 4xx), by its reason label.
curl -s "$API/metrics" > "$WORK/metrics.txt" || true
accepted=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accepted"])' "$report")

# Everything accepted must be queryable (flushed or buffered) before we stop.
stored=-1
for _ in $(seq 1 300); do
    stored=$("$BIN" sql "SELECT count(*) AS n FROM metrics" --server "$API" --format csv | tail -n 1)
    [[ "$stored" == "$accepted" ]] && break
    sleep 0.2
done
kill -TERM "$SERVER"
wait "$SERVER" || true
parquet_bytes=$(find "$WORK/tables" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END{print s+0}')

peer=null
if [[ -n "${PEER_ENDPOINT:-}" ]]; then
    echo "==> same load against PEER_ENDPOINT=$PEER_ENDPOINT" >&2
    peer=$("$BIN" loadgen --endpoint "$PEER_ENDPOINT" --protocol "$PROTOCOL" --rate "$RATE" \
        --series "$SERIES" --duration "$DURATION" --connections "$CONNECTIONS" \
        --batch-size "$BATCH" --mix "$MIX" ${LOADGEN_ARGS:-} | tail -n 1)
fi

python3 - "$report" "$ceiling" "$cpu0" "$cpu1" "$tck" "$rss_kb" "$stored" "$parquet_bytes" "$peer" \
    "$WORK/times0" "$WORK/times1" "$WORK/metrics.txt" <<'PY'
import json, re, sys
rep = json.loads(sys.argv[1]); ceiling = json.loads(sys.argv[2])
def children_cpu(path):
    # Second line of `times`: children's user and sys, as "XmY.YYYs XmY.YYYs".
    parts = re.findall(r'(\d+)m([\d.]+)s', open(path).read().splitlines()[1])
    return sum(int(m) * 60 + float(sec) for m, sec in parts)
gen_cpu_s = children_cpu(sys.argv[11]) - children_cpu(sys.argv[10])
refused = {}
wal_bytes = 0
for line in open(sys.argv[12]):
    if line.startswith("phoenix_wal_bytes_written_total "):
        wal_bytes = int(float(line.split()[1]))
    m = re.match(r'phoenix_ingest_requests_rejected_total\{(.*)\} (\S+)', line)
    if m:
        reason = re.search(r'reason="([^"]*)"', m.group(1))
        key = reason.group(1) if reason else "?"
        refused[key] = refused.get(key, 0) + int(float(m.group(2)))
cpu_s = (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])
rss_mib = int(sys.argv[6]) / 1024; stored = int(sys.argv[7]); pq = int(sys.argv[8])
peer = json.loads(sys.argv[9])
acc = rep["accepted"]
out = {
    "protocol": rep["protocol"], "target_rate_dps": rep["target_rate_dps"],
    "duration_s": rep["duration_s"], "sent": rep["sent"], "accepted": acc,
    "rejected": rep["rejected"], "retryable": rep.get("retryable"),
    "accepted_dps": rep["rate_dps"], "p50_ms": rep["p50_ms"], "p99_ms": rep["p99_ms"],
    "decode_ceiling_dps_per_core": ceiling,
    "ratio_to_ceiling": (rep["rate_dps"] / ceiling) if ceiling else None,
    "server_peak_rss_mib": round(rss_mib, 1),
    "server_cpu_s": round(cpu_s, 2),
    "cpu_s_per_million_dp": round(cpu_s / acc * 1e6, 3) if acc else None,
    "generator_cpu_s": round(gen_cpu_s, 2),
    "refused_requests_by_reason": refused,
    "wal_bytes_per_dp": round(wal_bytes / acc, 1) if acc and wal_bytes else None,
    "stored": stored, "stored_equals_accepted": stored == acc,
    "parquet_bytes": pq, "bytes_per_dp": round(pq / stored, 3) if stored > 0 else None,
}
if peer:
    out["peer_accepted_dps"] = peer["rate_dps"]
    out["phoenix_to_peer_ratio"] = rep["rate_dps"] / peer["rate_dps"] if peer["rate_dps"] else None
w = max(len(k) for k in out)
for k, v in out.items():
    print(f"{k:<{w}}  {v}", file=sys.stderr)
print(json.dumps(out))
sys.exit(0 if stored == acc else 1)
PY
