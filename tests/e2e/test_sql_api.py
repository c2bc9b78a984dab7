"""The HTTP API on the api port: read-only SQL, result formats, health and Prometheus metrics."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest
import requests

from phoenix_e2e import gauge, now_ns, number_point, request

ROWS = [("/a", 1.5), ("/b", 2.5), ("/a", 4.0)]


@pytest.fixture(scope="module")
def loaded(phoenix):
    """Three gauge points of `e2e.sql` with known routes and values; returns their timestamp base."""
    t = now_ns()
    points = [number_point(t + i, v, {"http.route": r, "i": i}) for i, (r, v) in enumerate(ROWS)]
    req = request([gauge("e2e.sql", points, unit="s")], "e2e-sql", {"host.name": "sql-host"})
    assert phoenix.export_http(req).partial_success.rejected_data_points == 0
    phoenix.wait_count("metric = 'e2e.sql'", len(ROWS), timeout=5)
    return t


@pytest.mark.parametrize(
    "query",
    [
        "CREATE EXTERNAL TABLE evil STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/phoenix-e2e-copy.csv'",
        "COPY metrics TO '/tmp/phoenix-e2e-copy.parquet'",
        "INSERT INTO metrics (metric) VALUES ('x')",
        "DROP TABLE metrics",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "DELETE FROM metrics",
    ],
)
def test_write_and_file_statements_refused(phoenix, loaded, query):
    """Scenario: DDL, DML, COPY, external tables and file reads. Guarantee: 400 with a JSON
    `{"error": ...}` and the table is unchanged."""
    r = phoenix.sql_response(query)
    assert r.status_code == 400, f"{query!r} -> {r.status_code}: {r.text[:300]}"
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert phoenix.count("metric = 'e2e.sql'") == len(ROWS)
    names = {row["table_name"] for row in phoenix.sql_dicts("SHOW TABLES")}
    assert "evil" not in names and "t" not in names and "v" not in names


def test_bad_query_is_400_with_error(phoenix):
    """Scenario: a syntax error and an unknown column. Guarantee: 400 with a non-empty error."""
    for q in ("SELEC 1", "SELECT no_such_column FROM metrics"):
        r = phoenix.sql_response(q)
        assert r.status_code == 400, (q, r.status_code, r.text)
        assert r.json()["error"]


def test_body_without_query_is_4xx(phoenix):
    """Scenario: a request body that is not `{"query": ...}`. Guarantee: a 4xx answer, not 5xx."""
    r = requests.post(f"{phoenix.api_url}/api/v1/sql", data=b"not json",
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert 400 <= r.status_code < 500, r.status_code


def test_show_tables_lists_metrics(phoenix):
    """Scenario: `SHOW TABLES` and information_schema. Guarantee: both list the `metrics` table."""
    rows = phoenix.sql_dicts("SHOW TABLES")
    assert any(r.get("table_name") == "metrics" for r in rows), rows
    cols = phoenix.sql_dicts(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'metrics' ORDER BY ordinal_position"
    )
    names = [c["column_name"] for c in cols]
    assert names[:20] == [
        "time", "start_time", "metric", "kind", "temporality", "monotonic", "unit", "service",
        "resource", "scope", "attributes", "series_id", "value", "count", "sum", "min", "max",
        "bounds", "bucket_counts", "sample_rate",
    ], names


def test_json_columns_and_types(phoenix, loaded):
    """Scenario: a JSON query. Guarantee: `columns` carries each name and a type; rows are arrays."""
    body = phoenix.sql("SELECT metric, value, time FROM metrics WHERE metric = 'e2e.sql' LIMIT 1")
    assert [c["name"] for c in body["columns"]] == ["metric", "value", "time"]
    assert all(isinstance(c["type"], str) and c["type"] for c in body["columns"])
    assert body["rows"][0][0] == "e2e.sql"


def test_map_subscript(phoenix, loaded):
    """Scenario: filter and group on `attributes['k']` and `resource['k']`. Guarantee: the known
    per-route sums."""
    rows = phoenix.sql_dicts(
        "SELECT attributes['http.route'] AS route, sum(value) AS total, max(resource['host.name']) AS host "
        "FROM metrics WHERE metric = 'e2e.sql' GROUP BY 1 ORDER BY 1"
    )
    assert rows == [{"route": "/a", "total": 5.5, "host": "sql-host"},
                    {"route": "/b", "total": 2.5, "host": "sql-host"}]
    n = phoenix.sql_scalar("SELECT count(*) FROM metrics WHERE attributes['http.route'] = '/b'")
    assert n == 1


def test_csv_format(phoenix, loaded):
    """Scenario: `Accept: text/csv`. Guarantee: a text/csv body with a header row and the rows."""
    r = phoenix.sql_response(
        "SELECT attributes['http.route'] AS route, value FROM metrics WHERE metric = 'e2e.sql' ORDER BY value",
        accept="text/csv",
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["route", "value"]
    assert [(a, float(b)) for a, b in rows[1:]] == [("/a", 1.5), ("/b", 2.5), ("/a", 4.0)]


def test_arrow_ipc_format(phoenix, loaded):
    """Scenario: `Accept: application/vnd.apache.arrow.stream`. Guarantee: an Arrow IPC stream
    pyarrow reads, with the table's types (timestamp ns UTC, map, float64) and the known values."""
    t = loaded
    r = phoenix.sql_response(
        "SELECT time, metric, attributes, value FROM metrics WHERE metric = 'e2e.sql' ORDER BY time",
        accept="application/vnd.apache.arrow.stream",
    )
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/vnd.apache.arrow.stream")
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert pa.types.is_map(table.schema.field("attributes").type)
    assert table.schema.field("value").type == pa.float64()
    assert table.column("time").cast(pa.int64()).to_pylist() == [t, t + 1, t + 2]
    assert table.column("value").to_pylist() == [1.5, 2.5, 4.0]
    assert [dict(m)["http.route"] for m in table.column("attributes").to_pylist()] == ["/a", "/b", "/a"]


def test_health_detailed_lists_components(phoenix):
    """Scenario: `GET /health/detailed`. Guarantee: JSON naming the ingest, graph, bus, storage and
    wal components, each with status ok|degraded|down."""
    r = requests.get(f"{phoenix.api_url}/health/detailed", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    comps = body.get("components", body)
    if isinstance(comps, list):
        comps = {c["name"]: c for c in comps}
    statuses = {name: c.get("status") for name, c in comps.items() if isinstance(c, dict)}
    for name in ("ingest", "graph", "bus", "storage", "wal"):
        assert name in statuses, f"component {name} missing from {body}"
    assert all(s in ("ok", "degraded", "down") for s in statuses.values()), statuses


def test_prometheus_metrics(phoenix, loaded):
    """Scenario: `GET /metrics` after ingesting 3 datapoints. Guarantee: Prometheus text whose
    metric names all start with `phoenix_`, including ingest counters that count those points."""
    r = requests.get(f"{phoenix.api_url}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    names = set()
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    assert names, r.text[:500]
    assert all(n.startswith("phoenix_") for n in names), sorted(n for n in names if not n.startswith("phoenix_"))
    assert any(n.startswith("phoenix_ingest_") for n in names), sorted(names)
