"""Durability across restarts on the same data directory."""

from __future__ import annotations

import pytest

from phoenix_e2e import canonical, make_dataset, now_ns

PROJECTION = "SELECT CAST(time AS BIGINT) AS t, metric, attributes, value FROM metrics"


def _send(server, tag: str, t0: int):
    reqs, rows = make_dataset(t0, tag)
    for i, req in enumerate(reqs):
        resp = server.export_grpc(req) if i % 2 else server.export_http(req)
        assert resp.partial_success.rejected_data_points == 0
    return rows


@pytest.mark.parametrize("flush_interval_secs", [1, 3600], ids=["flushed", "buffered"])
def test_sigterm_restart_keeps_every_datapoint(phoenix_factory, flush_interval_secs):
    """Scenario: data sent, SIGTERM (exit 0 within 20 s), restart on the same data dir; with a 1 s
    flush interval (already on disk) and a 1 h one (still buffered at SIGTERM). Guarantee: every
    datapoint is queryable after the restart, exactly once, with identical values."""
    server = phoenix_factory(flush_interval_secs=flush_interval_secs)
    expected = _send(server, "restart", now_ns() - 120 * 1_000_000_000)
    server.wait_count("TRUE", len(expected), timeout=10)
    assert canonical(server.sql_dicts(PROJECTION)) == canonical(expected)

    server.restart()
    assert server.count() == len(expected)
    assert canonical(server.sql_dicts(PROJECTION)) == canonical(expected)


def test_two_restarts_accumulate(phoenix_factory):
    """Scenario: send A, restart, send B, restart. Guarantee: A and B both present, exactly once."""
    server = phoenix_factory(flush_interval_secs=1)
    t0 = now_ns() - 300 * 1_000_000_000
    rows_a = _send(server, "gen.a", t0)
    server.wait_count("TRUE", len(rows_a), timeout=10)
    server.restart()
    rows_b = _send(server, "gen.b", t0 + 60 * 1_000_000_000)
    server.wait_count("TRUE", len(rows_a) + len(rows_b), timeout=10)
    server.restart()
    assert canonical(server.sql_dicts(PROJECTION)) == canonical(rows_a + rows_b)


def test_sigkill_keeps_acknowledged_datapoints(phoenix_factory):
    """Scenario: data acknowledged with a 1 h flush interval (so only the WAL holds it), then the
    process is killed with SIGKILL and restarted. Guarantee: every acknowledged datapoint is
    recovered exactly once (the WAL is on by default)."""
    server = phoenix_factory(flush_interval_secs=3600)
    expected = _send(server, "crash", now_ns() - 60 * 1_000_000_000)
    server.wait_count("TRUE", len(expected), timeout=10)
    server.proc.kill()
    server.proc.wait(timeout=10)
    server.start()
    assert canonical(server.sql_dicts(PROJECTION)) == canonical(expected)
