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


def test_sigkill_after_checkpoint_keeps_open_rollup_windows(phoenix_factory):
    """Scenario: the embedded default (1-minute rollup) with 1 s checkpoints; gauges sent into a
    minute that stays open (its end is past the watermark), the raw table flushed; the rollup's
    checkpoint then lets the WAL release everything although the window is still open; SIGKILL,
    restart, clean stop. Guarantee: the WAL was emptied while the window was open, and after the
    crash `metrics_1m` holds each series' count and sum over every point exactly once (restored
    from the checkpoint, nothing replayed twice)."""
    from phoenix_e2e import gauge, number_point, prom_samples, request, retry_until

    minute = 60_000_000_000
    server = phoenix_factory(flush_interval_secs=1, extra_sets=("storage.checkpoint_interval_secs=1",))
    base = (now_ns() // minute - 10) * minute
    series, per_series = 8, 5
    sent: dict[str, list[float]] = {}
    for p in range(per_series):
        points = []
        for s in range(series):
            v = (s * 3 + p * 7) % 11 - 4.5
            sent.setdefault(f"s{s}", []).append(v)
            points.append(number_point(base + p * 5_000_000_000, v, {"s": f"s{s}"}))
        resp = server.export_http(request([gauge("e2e.ckpt.g", points)], service="ckpt"))
        assert resp.partial_success.rejected_data_points == 0
    server.wait_count("metric = 'e2e.ckpt.g'", series * per_series, timeout=20)

    def wal_bytes() -> float:
        samples = prom_samples(server.prometheus(), "phoenix_wal_bytes")
        return samples[0][1] if samples else -1.0

    checkpoint = server.data_dir / "checkpoints" / "rollup_1m.ckpt"
    assert retry_until(lambda: checkpoint.exists() and wal_bytes() == 0, timeout=20), (
        f"checkpoint written: {checkpoint.exists()}, WAL bytes: {wal_bytes()}"
    )
    assert server.sql_scalar("SELECT count(*) FROM metrics_1m WHERE metric LIKE 'e2e.ckpt.g.%'") == 0, (
        "the window is still open"
    )

    server.proc.kill()
    server.proc.wait(timeout=10)
    server.start()
    server.restart()  # a clean stop emits the restored window
    rows = server.sql_dicts(
        "SELECT metric, attributes['s'] AS s, value FROM metrics_1m "
        "WHERE metric IN ('e2e.ckpt.g.count', 'e2e.ckpt.g.sum')"
    )
    got = {(r["metric"], r["s"]): r["value"] for r in rows}
    assert len(rows) == len(got) == 2 * series, rows
    for s, values in sent.items():
        assert got[("e2e.ckpt.g.count", s)] == len(values), s
        assert got[("e2e.ckpt.g.sum", s)] == sum(values), s
