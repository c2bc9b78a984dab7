"""The embedded default pipeline end to end: raw `metrics`, the 1-minute rollup `metrics_1m` and
the `usage` table, checked against what was sent (computed independently here)."""

from __future__ import annotations

import pytest

from phoenix_e2e import cumulative_sum, gauge, now_ns, number_point, request

MINUTE = 60_000_000_000
SERIES = 20
POINTS_PER_MINUTE = 6
MINUTES = 3
FUNCTIONS = ("count", "sum", "min", "max", "mean", "last")


def _value(s: int, m: int, p: int) -> float:
    """Deterministic values with ties and negatives, exact in binary (multiples of 1/4)."""
    return ((s * 7 + m * 13 + p * 5) % 23 - 8) / 4


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A server on the embedded default (usage rows held until shutdown), loaded with SERIES
    gauge series and SERIES cumulative counters over MINUTES whole minutes in the past, then
    stopped cleanly (windows and usage flushed) and started again."""
    from conftest import _new_server, _teardown

    server = _new_server(
        tmp_path_factory.mktemp("default"), {"extra_sets": ("pipeline.usage.grace_secs=86400",)}
    )
    base = (now_ns() // MINUTE - MINUTES - 2) * MINUTE
    sent = []  # (minute index, series, time, value)
    for m in range(MINUTES):
        for p in range(POINTS_PER_MINUTE):
            t = base + m * MINUTE + p * 10_000_000_000
            for s in range(SERIES):
                sent.append((m, s, t, _value(s, m, p)))
    gauges = [number_point(t, v, {"s": f"s{s}"}) for (_, s, t, v) in sent]
    # Counters: +s+1 per point from a common start, so each minute's increase is known.
    counters = [
        number_point(t, (m * POINTS_PER_MINUTE + p + 1) * (s + 1), {"s": f"s{s}"}, start_ns=base - MINUTE)
        for m in range(MINUTES)
        for p in range(POINTS_PER_MINUTE)
        for s in range(SERIES)
        for t in [base + m * MINUTE + p * 10_000_000_000]
    ]
    for chunk in range(0, len(gauges), 120):
        req = request(
            [gauge("e2e.dflt.g", gauges[chunk : chunk + 120]), cumulative_sum("e2e.dflt.c", counters[chunk : chunk + 120])],
            service="dflt",
        )
        assert server.export_http(req).partial_success.rejected_data_points == 0
    server.restart()
    yield server, base, sent
    _teardown(server)


def test_raw_table_has_every_point(loaded):
    """Guarantee: the raw table holds every gauge and counter point exactly once."""
    server, _, sent = loaded
    for metric in ("e2e.dflt.g", "e2e.dflt.c"):
        assert server.count(f"metric = '{metric}'") == len(sent), metric


def test_gauge_rollup_is_exact(loaded):
    """Guarantee: each gauge function of each (series, minute) in `metrics_1m` equals the value
    computed here from the raw points, to the last bit."""
    server, base, sent = loaded
    expected = {}
    for m in range(MINUTES):
        for s in range(SERIES):
            pts = sorted((t, v) for (mm, ss, t, v) in sent if mm == m and ss == s)
            vals = [v for _, v in pts]
            row = {"count": float(len(vals)), "sum": sum(vals), "min": min(vals), "max": max(vals),
                   "mean": sum(vals) / len(vals), "last": pts[-1][1]}
            for f in FUNCTIONS:
                expected[(f"e2e.dflt.g.{f}", f"s{s}", base + m * MINUTE)] = row[f]
    rows = server.sql_dicts(
        "SELECT metric, attributes['s'] AS s, CAST(time AS BIGINT) AS t, value FROM metrics_1m "
        "WHERE metric LIKE 'e2e.dflt.g.%'"
    )
    got = {(r["metric"], r["s"], r["t"]): r["value"] for r in rows}
    assert len(rows) == len(got), "one row per function, series and window"
    assert got == expected


def test_counter_rollup_sums_per_minute_increases(loaded):
    """Guarantee: per series, the rollup's delta sums add up to the counter's increase over the
    points sent, and no window is emitted twice. The counter started before the server did, so
    its first point is only the baseline (`initial_value: auto`, as the OTel collector)."""
    server, _, _ = loaded
    rows = server.sql_dicts(
        "SELECT attributes['s'] AS s, sum(value) AS total, count(*) AS n, count(DISTINCT time) AS windows "
        "FROM metrics_1m WHERE metric = 'e2e.dflt.c' GROUP BY attributes['s']"
    )
    assert len(rows) == SERIES
    last_point = MINUTES * POINTS_PER_MINUTE
    for r in rows:
        s = int(r["s"][1:])
        assert r["n"] == r["windows"] == MINUTES, r
        assert r["total"] == (last_point - 1) * (s + 1), r


def test_usage_matches_what_was_sent(loaded):
    """Guarantee: `usage` counts, per minute, exactly the points and series sent into the graph
    and written out (raw rows for the input metric; rollup rows under their own names)."""
    server, base, sent = loaded
    rows = server.sql_dicts(
        "SELECT CAST(minute AS BIGINT) AS minute, metric, service, sum(datapoints_in) AS din, "
        "sum(datapoints_out) AS dout, sum(datapoints_dropped) AS dropped, max(series_in) AS sin, "
        "max(series_out) AS sout, sum(bytes_stored) AS bytes FROM usage WHERE service = 'dflt' "
        "GROUP BY 1, 2, 3"
    )
    got = {(r["minute"], r["metric"]): r for r in rows}
    per_minute = SERIES * POINTS_PER_MINUTE
    for m in range(MINUTES):
        minute = base + m * MINUTE
        for metric in ("e2e.dflt.g", "e2e.dflt.c"):
            r = got[(minute, metric)]
            # The counter's rollup keeps its name: one more row per series and minute.
            extra = SERIES if metric == "e2e.dflt.c" else 0
            assert (r["din"], r["dout"], r["dropped"]) == (per_minute, per_minute + extra, 0), r
            assert (r["sin"], r["sout"]) == (SERIES, SERIES), r
            assert r["bytes"] > 0, r
        for f in FUNCTIONS:
            r = got[(minute, f"e2e.dflt.g.{f}")]
            assert (r["din"], r["dout"], r["sout"]) == (0, SERIES, SERIES), r
