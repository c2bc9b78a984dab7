"""`phoenix loadgen` against a real `phoenix serve`: the contract's report, and every datapoint
the generator saw accepted is stored exactly once."""

from __future__ import annotations

import json
import subprocess

import pytest

from phoenix_e2e import phoenix_bin

REQUIRED = {"sent", "accepted", "rejected", "duration_s", "rate_dps", "p50_ms", "p99_ms"}


def loadgen(*args: str) -> tuple[dict, str]:
    p = subprocess.run(
        [str(phoenix_bin()), "loadgen", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    last = p.stdout.strip().splitlines()[-1]
    return json.loads(last), p.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_loadgen_report_matches_stored_points(phoenix, protocol):
    """Scenario: loadgen pushes a mixed workload for 2 s over one protocol.
    Guarantee: its last stdout line is a JSON report with the contract's keys, it shows progress on
    stderr, nothing is rejected, and SQL finds exactly `accepted` new datapoints, each series
    with distinct timestamps."""
    endpoint = (
        f"http://{phoenix.grpc_target}"
        if protocol == "grpc"
        else phoenix.otlp_http_url.removesuffix("/v1/metrics")
    )
    before = phoenix.count()
    report, stderr = loadgen(
        "--endpoint", endpoint, "--protocol", protocol,
        "--rate", "20000", "--series", "300", "--duration", "2", "--seed", "7",
    )
    assert REQUIRED <= report.keys(), report
    assert report["protocol"] == protocol
    assert report["rejected"] == 0 and report["accepted"] == report["sent"] > 0, report
    assert "loadgen" in stderr, "expected a progress line on stderr"
    phoenix.wait_count("TRUE", before + report["accepted"], timeout=10)
    dup = phoenix.sql_scalar(
        "SELECT count(*) FROM (SELECT series_id, time FROM metrics "
        "GROUP BY series_id, time HAVING count(*) > 1)"
    )
    assert dup == 0
