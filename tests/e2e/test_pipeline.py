"""The processor graph end to end: filter → attributes → sample into two sink tables, read back by SQL."""

from __future__ import annotations

import re
import subprocess

import pytest

from phoenix_e2e import gauge, now_ns, number_point, phoenix_bin, prom_samples, request, retry_until

PIPELINE = """
pipeline:
  processors:
    drop_debug: { type: filter, inputs: [otlp], drop: { metric: ["e2e.pipe.debug.*"] } }
    trim:
      type: attributes
      inputs: [drop_debug]
      actions: [{ drop: [user.id] }, { rename: { from: host, to: host.name } }, { hash: [session] }]
    sampled: { type: sample, inputs: [trim], ratio: 0.5 }
  sinks:
    metrics: { inputs: [trim] }
    metrics_sampled: { inputs: [sampled] }
"""

SERIES = 200
POINTS = 3
DEBUG_POINTS = 7
RATIO = 0.5


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A server running PIPELINE, loaded with SERIES×POINTS request points (each point with a
    unique `user.id`, so only the attributes processor makes them POINTS per series), debug
    points the filter drops, and three control points that must share one series id."""
    from conftest import _new_server, _teardown

    d = tmp_path_factory.mktemp("pipeline")
    cfg = d / "pipeline.yaml"
    cfg.write_text(PIPELINE)
    server = _new_server(d / "server", {"config": cfg})
    t0 = now_ns()
    points = [
        number_point(
            t0 + p * 1_000_000 + s,
            float(s),
            {"route": f"/r{s}", "host": f"h{s % 3}", "session": f"s{s}", "user.id": f"u{s}-{p}"},
        )
        for p in range(POINTS)
        for s in range(SERIES)
    ]
    debug = [number_point(t0 + i, 1.0, {"route": "/x"}) for i in range(DEBUG_POINTS)]
    control = [
        number_point(t0 + 1, 1.0, {"route": "/c", "host": "h9"}),
        number_point(t0 + 2, 2.0, {"route": "/c", "host.name": "h9", "user.id": "u"}),
        number_point(t0 + 3, 3.0, {"route": "/c", "host.name": "h9"}),
    ]
    req = request(
        [gauge("e2e.pipe.req", points), gauge("e2e.pipe.debug.x", debug), gauge("e2e.pipe.control", control)],
        "e2e-pipe",
    )
    resp = server.export_http(req)
    assert resp.partial_success.rejected_data_points == 0
    server.wait_count("metric LIKE 'e2e.pipe.%'", SERIES * POINTS + len(control), timeout=10)
    yield server
    _teardown(server)


def test_filter_dropped_debug(loaded):
    """Scenario: debug points through the filter. Guarantee: none stored, and each is counted
    as dropped by `drop_debug` with reason `filtered`."""
    assert loaded.count("metric LIKE 'e2e.pipe.debug%'") == 0
    samples = prom_samples(loaded.prometheus(), "phoenix_processor_datapoints_dropped_total")
    filtered = [v for labels, v in samples if labels == {"processor": "drop_debug", "reason": "filtered"}]
    assert filtered == [DEBUG_POINTS], samples


def test_attributes_edited_and_series_recomputed(loaded):
    """Scenario: points with a unique `user.id` each. Guarantee: `user.id` is gone, `host` is
    renamed to `host.name`, `session` holds a 16-hex-digit hash, and `series_id` is recomputed:
    SERIES distinct ids, not one per point."""
    rows = loaded.sql_dicts(
        "SELECT attributes['user.id'] AS uid, attributes['host'] AS host, "
        "attributes['host.name'] AS hostname, attributes['route'] AS route, "
        "attributes['session'] AS session, series_id FROM metrics WHERE metric = 'e2e.pipe.req'"
    )
    assert len(rows) == SERIES * POINTS
    assert all(r["uid"] is None and r["host"] is None for r in rows)
    by_route: dict[str, set] = {}
    for r in rows:
        s = int(r["route"][2:])
        assert r["hostname"] == f"h{s % 3}"
        assert re.fullmatch(r"[0-9a-f]{16}", r["session"]), r
        by_route.setdefault(r["route"], set()).add((r["series_id"], r["session"]))
    assert len(by_route) == SERIES
    assert all(len(v) == 1 for v in by_route.values()), "one series id and hash per series"
    assert len({next(iter(v))[0] for v in by_route.values()}) == SERIES


def test_series_id_matches_decoder_recipe(loaded):
    """Scenario: one point renamed to `host.name`, one with `user.id` dropped, one sent as the
    result already. Guarantee: all three have the decoder's series id for the final attributes."""
    ids = {
        r["series_id"]
        for r in loaded.sql_dicts("SELECT series_id FROM metrics WHERE metric = 'e2e.pipe.control'")
    }
    assert len(ids) == 1, ids


def test_sampled_table(loaded):
    """Scenario: the second sink after `sample` at ratio 0.5. Guarantee: `metrics_sampled` is a
    queryable table; a series is in it with all its points or not at all, with sample_rate 0.5;
    kept series are a subset of `metrics`'; the kept fraction of SERIES series is within 5
    binomial standard deviations (sd = sqrt(0.25/200) ≈ 0.035); dropped points are counted."""
    tables = {r["table_name"] for r in loaded.sql_dicts("SHOW TABLES")}
    assert "metrics_sampled" in tables

    def sampled():
        return loaded.sql_dicts(
            "SELECT series_id, count(*) AS n, min(sample_rate) AS lo, max(sample_rate) AS hi "
            "FROM metrics_sampled WHERE metric = 'e2e.pipe.req' GROUP BY series_id"
        )

    # The two sinks run independently; wait until the sampled table has taken its delivery.
    groups = retry_until(sampled, timeout=10)
    assert groups, "nothing in metrics_sampled"
    assert all(g["n"] == POINTS and g["lo"] == RATIO and g["hi"] == RATIO for g in groups), groups
    kept = {g["series_id"] for g in groups}
    all_ids = {
        r["series_id"]
        for r in loaded.sql_dicts("SELECT DISTINCT series_id FROM metrics WHERE metric = 'e2e.pipe.req'")
    }
    assert kept <= all_ids
    fraction = len(kept) / SERIES
    assert abs(fraction - RATIO) < 5 * (RATIO * (1 - RATIO) / SERIES) ** 0.5, fraction
    samples = prom_samples(loaded.prometheus(), "phoenix_processor_datapoints_dropped_total")
    dropped = [v for labels, v in samples if labels == {"processor": "sampled", "reason": "sampled"}]
    control_sampled = loaded.sql_scalar(
        "SELECT count(*) FROM metrics_sampled WHERE metric = 'e2e.pipe.control'"
    )
    expected = SERIES * POINTS - len(kept) * POINTS + (3 - int(control_sampled))
    assert dropped == [expected], (dropped, expected)


def test_restart_keeps_both_tables(loaded):
    """Scenario: clean restart with the same config. Guarantee: both tables still hold exactly
    their rows (flushed, WAL released and nothing replayed twice)."""
    before = {
        t: loaded.sql_scalar(f"SELECT count(*) FROM {t} WHERE metric LIKE 'e2e.pipe.%'")
        for t in ("metrics", "metrics_sampled")
    }
    loaded.restart()
    after = {
        t: loaded.sql_scalar(f"SELECT count(*) FROM {t} WHERE metric LIKE 'e2e.pipe.%'")
        for t in ("metrics", "metrics_sampled")
    }
    assert after == before


def _send_series(server, t0: int) -> None:
    points = [
        number_point(
            t0 + p * 1_000_000 + s,
            float(s),
            {"route": f"/r{s}", "host": f"h{s % 3}", "session": f"s{s}", "user.id": f"u{s}-{p}"},
        )
        for p in range(POINTS)
        for s in range(SERIES)
    ]
    resp = server.export_http(request([gauge("e2e.pipe.req", points)], "e2e-pipe-crash"))
    assert resp.partial_success.rejected_data_points == 0


def test_sigkill_with_one_sink_flushed(tmp_path, phoenix_factory):
    """Scenario: with `flush_max_rows` 500, the `metrics` sink (600 rows) flushes while
    `metrics_sampled` (fewer rows) still buffers; then SIGKILL and restart. Guarantee: the WAL
    was not released (one sink had not stored the data), replay refills `metrics_sampled`,
    and `metrics` skips the rows its file already holds: both tables hold each row once."""
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(PIPELINE)
    server = phoenix_factory(
        config=cfg, flush_interval_secs=3600, extra_sets=("storage.flush_max_rows=500",)
    )
    _send_series(server, now_ns() - 60 * 1_000_000_000)
    files = lambda t: list((server.tables_dir / t).rglob("*.parquet"))  # noqa: E731
    assert retry_until(lambda: files("metrics"), timeout=10), "metrics did not flush"
    sampled = int(server.sql_scalar("SELECT count(*) FROM metrics_sampled"))
    assert 0 < sampled < 500 and not files("metrics_sampled"), "premise: only one sink flushed"
    server.proc.kill()
    server.proc.wait(timeout=10)
    server.start()
    counts = {
        t: int(server.sql_scalar(f"SELECT count(*) FROM {t}")) for t in ("metrics", "metrics_sampled")
    }
    assert counts == {"metrics": SERIES * POINTS, "metrics_sampled": sampled}
    distinct = int(
        server.sql_scalar("SELECT count(*) FROM (SELECT DISTINCT series_id, time FROM metrics_sampled)")
    )
    assert distinct == sampled, "no row twice"


def test_config_validate_reports_pipeline_errors(tmp_path):
    """Scenario: `phoenix config validate` on a pipeline with an unknown type, a bad ratio, an
    empty rename target, an unknown input, a cycle and an orphan. Guarantee: exit 1 and one
    stderr line naming each key path; the valid PIPELINE passes."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
pipeline:
  processors:
    a: { type: explode, inputs: [otlp] }
    b: { type: sample, inputs: [otlp], ratio: 1.5 }
    c: { type: attributes, inputs: [b], actions: [{ drop: [x] }, { rename: { from: host, to: "" } }] }
    d: { type: filter, inputs: [nope], keep: { metric: [x] } }
    e: { type: sample, inputs: [f], ratio: 0.5 }
    f: { type: sample, inputs: [e], ratio: 0.5 }
    lonely: { type: sample, inputs: [otlp], ratio: 0.5 }
  sinks:
    metrics: { inputs: [a, c, d, f] }
"""
    )
    p = subprocess.run(
        [str(phoenix_bin()), "config", "validate", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 1, (p.returncode, p.stderr)
    for key in (
        "pipeline.processors.a.type",
        "pipeline.processors.b.ratio",
        "pipeline.processors.c.actions[1].rename.to",
        "pipeline.processors.d.inputs[0]",
        "pipeline.processors.e.inputs",
        "pipeline.processors.lonely",
    ):
        assert any(key + ":" in line for line in p.stderr.splitlines()), f"{key} missing:\n{p.stderr}"
    good = tmp_path / "good.yaml"
    good.write_text(PIPELINE)
    ok = subprocess.run(
        [str(phoenix_bin()), "config", "validate", str(good)], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
