#!/usr/bin/env python3
"""Shares of a server profile by pipeline stage, from `perf script` call stacks.

A flat profile spreads the flush over memcpy, LZ4, Parquet and allocator symbols; this charges
each sample to the first stage whose marker appears anywhere on its stack, so "where does the
CPU go" reads as flush / decode / rollup / ... (markers are tried in the order below).

Usage (a profile with call graphs, e.g. `PERF=1 PERF_CG="--call-graph dwarf,16384" PERF_HZ=99
KEEP=1 benches/quick.sh 1200000 25 100000`, which prints work=DIR):

    perf script -i DIR/perf.data -F ip,sym | benches/perf_stages.py [REGEX ...]

Each REGEX also prints the share of samples with a matching frame (inclusive).
"""

import collections
import re
import sys

# (stage, marker): the first marker found on a sample's stack names its stage.
STAGES = [
    ("flush: sort, gather, Parquet encode", r"encode_sorted|take_rows::|sort_order::|FieldWrite|row_groups::"),
    ("WAL", r"phoenix_wal::"),
    # Before storage: the sinks' tasks record usage.
    ("usage accounting", r"usage::"),
    ("cardinality cap", r"cardinality_limit"),
    ("rollup (aggregate)", r"aggregate::"),
    ("checkpoints", r"checkpoint"),
    ("storage: other (buffering, commits)", r"phoenix_storage::"),
    ("decode", r"phoenix_ingest::decode"),
    ("ingest: other", r"phoenix_ingest::"),
    ("graph: other", r"phoenix_processors::"),
    ("HTTP (hyper)", r"hyper"),
    ("tokio", r"tokio::"),
]


def stacks(lines):
    """Yields each sample's frames (symbol names, leaf first)."""
    frames = []
    for line in lines:
        line = line.strip()
        if not line:
            if frames:
                yield frames
            frames = []
            continue
        # "ADDRESS SYMBOL": drop the address.
        parts = line.split(" ", 1)
        frames.append(parts[1] if len(parts) == 2 else parts[0])
    if frames:
        yield frames


def main():
    extra = [re.compile(p) for p in sys.argv[1:]]
    stages = [(name, re.compile(m)) for name, m in STAGES]
    total = 0
    by_stage = collections.Counter()
    inclusive = collections.Counter()
    for frames in stacks(sys.stdin):
        total += 1
        stage = next(
            (name for name, m in stages if any(m.search(f) for f in frames)),
            "other (leaf: %s)" % frames[0][:60],
        )
        by_stage[stage] += 1
        for p in extra:
            if any(p.search(f) for f in frames):
                inclusive[p.pattern] += 1
    if total == 0:
        sys.exit("no samples on stdin (perf script -F ip,sym of a profile with call graphs)")
    print(f"{total} samples")
    for stage, n in by_stage.most_common(20):
        print(f"{100 * n / total:6.2f}%  {stage}")
    for p in extra:
        print(f"{100 * inclusive[p.pattern] / total:6.2f}%  (inclusive) {p.pattern}")


if __name__ == "__main__":
    main()
