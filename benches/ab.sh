#!/usr/bin/env bash
# Alternates two or more `phoenix` binaries under the same short load (benches/quick.sh), round
# after round, so a noisy host's drift falls on every binary alike; prints one line per run.
#
# Usage: benches/ab.sh ROUNDS RATE DURATION BIN_A BIN_B [BIN ...]   (100k series, OTLP/HTTP)
# Compare medians per binary, not single runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS=$1 RATE=$2 DUR=$3; shift 3
for _ in $(seq 1 "$ROUNDS"); do
    for bin in "$@"; do
        out=$(BIN=$bin "$ROOT/benches/quick.sh" "$RATE" "$DUR" 100000 2>&1)
        acc=$(grep -o '"accepted":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
        cpu=$(grep -o 'server_cpu_s=[0-9.]*' <<<"$out" | cut -d= -f2)
        rss=$(grep -o 'peak_rss_mib=[0-9]*' <<<"$out" | cut -d= -f2)
        awk -v b="$bin" -v a="$acc" -v c="$cpu" -v r="$rss" -v d="$DUR" 'BEGIN {
            printf "%s accepted_dps=%d cpu_s_per_million=%.3f peak_rss_mib=%s\n", b, a / d, c / a * 1e6, r }'
    done
done
