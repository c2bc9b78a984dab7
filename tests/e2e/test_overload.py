"""Overload: a load generator pushing far more than the server sustains, with the memory limits
set small. Memory stays bounded, the excess gets retryable errors, and what was accepted is
stored exactly once."""

from __future__ import annotations

import json
import subprocess

from phoenix_e2e import phoenix_bin

# What bounds memory: bodies in flight, queued batches, rows buffered per table, the WAL budget
# (on disk, not in memory). The bound asserted is this budget plus a stated margin for the
# process itself (runtime, DataFusion, allocator slack) and a debug build's larger frames.
IN_FLIGHT = 32 * 1024 * 1024
RSS_BOUND_MIB = 768


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def test_overload_stays_bounded_and_answers_retryable(phoenix_factory, tmp_path):
    """Scenario: the plain pipeline with a 32 MiB in-flight budget, 16 queued batches and 100k
    rows per flush, pushed at 400k datapoints/s over 16 connections for 10 s (several times what
    this debug build sustains). Guarantee: peak RSS stays under RSS_BOUND_MIB, some requests get
    retryable refusals, none fails otherwise, the server stays healthy, and every accepted point
    is stored exactly once."""
    plain = tmp_path / "plain.yaml"
    plain.write_text("pipeline: {}\n")
    server = phoenix_factory(
        config=plain,
        flush_interval_secs=1,
        extra_sets=(
            f"ingest.max_in_flight_bytes={IN_FLIGHT}",
            "ingest.max_body_bytes=4194304",
            "bus.memory_capacity_batches=16",
            "storage.flush_max_rows=100000",
        ),
    )
    before = server.count()
    p = subprocess.run(
        [
            str(phoenix_bin()), "loadgen", "--endpoint", server.otlp_http_url.removesuffix("/v1/metrics"),
            "--protocol", "http", "--rate", "400000", "--series", "20000", "--duration", "10",
            "--connections", "16", "--seed", "11",
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout.strip().splitlines()[-1])
    peak = _peak_rss_mib(server.proc.pid)
    print(f"\n[overload] {json.dumps({'peak_rss_mib': round(peak), **report})}")
    assert server.health() == 200
    assert report["accepted"] > 0, report
    assert report["retryable"] > 0, f"the excess is refused retryably: {report}"
    assert report["rejected"] == 0, f"nothing is refused for good: {report}"
    assert peak < RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB over {RSS_BOUND_MIB} MiB"
    server.wait_count("TRUE", before + report["accepted"], timeout=60)
    dup = server.sql_scalar(
        "SELECT count(*) FROM (SELECT series_id, time FROM metrics GROUP BY series_id, time HAVING count(*) > 1)"
    )
    assert dup == 0
