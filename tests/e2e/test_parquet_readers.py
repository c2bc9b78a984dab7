"""The `metrics` table's Parquet files are readable as-is by other engines (DuckDB, pyarrow).

Data is sent, the SQL view of it recorded, the server stopped with SIGTERM (which flushes), and
then every Parquet file under `{storage.url}/metrics/` is read directly.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phoenix_e2e import canonical, make_dataset, now_ns

SQL_PROJECTION = (
    "SELECT CAST(time AS BIGINT) AS t, metric, series_id, value, attributes FROM metrics"
)


@pytest.fixture(scope="module")
def stopped(phoenix):
    """Sends a known dataset (HTTP and gRPC), snapshots SQL, then stops the server with SIGTERM."""
    t0 = now_ns() - 600 * 1_000_000_000
    reqs_http, rows_http = make_dataset(t0, "pq.http")
    reqs_grpc, rows_grpc = make_dataset(t0 + 7, "pq.grpc", metrics=2, series=3, points=4)
    for req in reqs_http:
        assert phoenix.export_http(req).partial_success.rejected_data_points == 0
    for req in reqs_grpc:
        assert phoenix.export_grpc(req).partial_success.rejected_data_points == 0
    expected = rows_http + rows_grpc
    phoenix.wait_count("TRUE", len(expected), timeout=10)
    snapshot = phoenix.sql_dicts(SQL_PROJECTION)
    phoenix.stop_clean()
    files = sorted(phoenix.metrics_dir.rglob("*.parquet"))
    return {"expected": expected, "snapshot": snapshot, "files": files, "root": phoenix.metrics_dir}


def _with_series(rows) -> list[tuple]:
    """Sorted (t, metric, series_id, attributes, value) tuples."""
    return sorted(
        (int(r["t"]), r["metric"], int(r["series_id"]), tuple(sorted(dict(r["attributes"]).items())), float(r["value"]))
        for r in rows
    )


def test_sql_snapshot_is_the_sent_data(stopped):
    """Scenario: a known dataset sent over both transports. Guarantee: SQL returned exactly it."""
    assert canonical(stopped["snapshot"]) == canonical(stopped["expected"])


def test_files_live_in_hive_partitions(stopped):
    """Scenario: after a SIGTERM flush. Guarantee: Parquet files exist under
    `{storage.url}/metrics/`, each inside Hive-style `key=value` folders."""
    files: list[Path] = stopped["files"]
    assert files, f"no Parquet files under {stopped['root']}"
    for f in files:
        parts = f.relative_to(stopped["root"]).parts[:-1]
        assert parts, f"{f} is not inside a partition folder"
        assert all("=" in p and p.split("=", 1)[0] and p.split("=", 1)[1] for p in parts), f


def test_duckdb_reads_same_rows(stopped):
    """Scenario: DuckDB reads every file with `read_parquet(..., hive_partitioning=false)`.
    Guarantee: the same rows, values, series ids and nanosecond timestamps SQL returned."""
    glob = str(stopped["root"] / "**" / "*.parquet")
    con = duckdb.connect()
    rows = con.execute(
        "SELECT epoch_ns(time) AS t, metric, series_id, value, map_keys(attributes) AS k,"
        " map_values(attributes) AS v FROM read_parquet(?, hive_partitioning = false)",
        [glob],
    ).fetchall()
    got = [{"t": t, "metric": m, "series_id": s, "value": v, "attributes": dict(zip(k, vals))}
           for t, m, s, v, k, vals in rows]
    assert _with_series(got) == _with_series(stopped["snapshot"])


def test_pyarrow_reads_same_rows(stopped):
    """Scenario: pyarrow reads each file on its own. Guarantee: the contract's column types
    (timestamp ns UTC, map<string,string>, uint64) and the same rows SQL returned."""
    got = []
    for f in stopped["files"]:
        table = pq.ParquetFile(f).read()
        schema = table.schema
        assert schema.field("time").type == pa.timestamp("ns", tz="UTC"), f
        assert pa.types.is_map(schema.field("attributes").type), f
        assert schema.field("series_id").type == pa.uint64(), f
        assert schema.field("value").type == pa.float64(), f
        cols = {n: table.column(n).to_pylist() for n in ("metric", "series_id", "value", "attributes")}
        times = table.column("time").cast(pa.int64()).to_pylist()
        for i, t in enumerate(times):
            got.append({"t": t, "metric": cols["metric"][i], "series_id": cols["series_id"][i],
                        "value": cols["value"][i], "attributes": dict(cols["attributes"][i])})
    assert _with_series(got) == _with_series(stopped["snapshot"])
