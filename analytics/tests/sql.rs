//! SQL over flushed and buffered rows: counts, pruning, map access, catalog, sandbox, limits.

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use phoenix_analytics::{scanned_files, QueryEngine, QueryError};
use phoenix_model::config::{ApiConfig, StorageConfig};
use phoenix_storage::testing::{metrics_batch, TestPoint};
use phoenix_storage::Storage;

/// 2026-11-21T14:00:00Z in ns.
const T0: i64 = 1_795_269_600_000_000_000;
const SEC: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SEC;

fn points(metric: &str, service: &str, start: i64, n: usize) -> Vec<TestPoint> {
    (0..n)
        .map(|i| {
            TestPoint::gauge(metric, service, start + i as i64 * SEC, i as f64)
                .attr("http.route", if i % 2 == 0 { "/api" } else { "/health" })
                .resource("host.name", "h1")
        })
        .collect()
}

/// Storage with two flushed files (14:00 and 16:00, 100 + 50 rows) and 30 buffered rows at 17:00.
async fn storage() -> Storage {
    let cfg = StorageConfig {
        url: "memory://".into(),
        ..StorageConfig::default()
    };
    let storage = Storage::open(&cfg).await.expect("open");
    let table = storage.table("metrics").expect("metrics");
    table
        .append(metrics_batch(&points("cpu", "web", T0, 100)))
        .expect("append");
    table.flush().await.expect("flush");
    table
        .append(metrics_batch(&points("mem", "db", T0 + 2 * HOUR, 50)))
        .expect("append");
    table.flush().await.expect("flush");
    table
        .append(metrics_batch(&points("cpu", "web", T0 + 3 * HOUR, 30)))
        .expect("append");
    assert_eq!(table.snapshot().files.len(), 2);
    storage
}

async fn engine_with(api: ApiConfig) -> QueryEngine {
    QueryEngine::new(storage().await, &api).expect("engine")
}

async fn engine() -> QueryEngine {
    engine_with(ApiConfig::default()).await
}

async fn count(engine: &QueryEngine, sql: &str) -> i64 {
    let out = engine.query(sql).await.expect(sql);
    assert_eq!(out.num_rows(), 1, "{sql}");
    out.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0)
}

/// `count(*)` counts flushed and buffered rows, each exactly once.
#[tokio::test]
async fn count_covers_files_and_buffer_once() {
    let e = engine().await;
    assert_eq!(count(&e, "SELECT count(*) FROM metrics").await, 180);
    assert_eq!(
        count(&e, "SELECT count(DISTINCT time) FROM metrics").await,
        180
    );
    assert_eq!(
        count(&e, "SELECT count(*) FROM metrics WHERE metric = 'cpu'").await,
        130
    );
}

/// Time filters skip files by the range in their names, and results stay exact.
#[tokio::test]
async fn time_filters_prune_files() {
    let e = engine().await;
    let cases = [
        ("SELECT count(*) FROM metrics", 2, 180),
        ("SELECT count(*) FROM metrics WHERE time >= '2026-11-21T16:00:00Z'", 1, 80),
        ("SELECT count(*) FROM metrics WHERE time < TIMESTAMP '2026-11-21T15:00:00Z'", 1, 100),
        ("SELECT count(*) FROM metrics WHERE time > '2026-11-21T14:01:39Z'", 1, 80),
        (
            "SELECT count(*) FROM metrics WHERE time BETWEEN '2026-11-21T14:30:00Z' AND '2026-11-21T15:30:00Z'",
            0,
            0,
        ),
        ("SELECT count(*) FROM metrics WHERE time >= '2026-11-21T17:00:00Z'", 0, 30),
        (
            "SELECT count(*) FROM metrics WHERE time = '2026-11-21T16:00:10Z' OR time = '2026-11-21T14:00:10Z'",
            2,
            2,
        ),
        ("SELECT count(*) FROM metrics WHERE value > 10", 2, 180 - 11 - 11 - 11),
        ("SELECT count(*) FROM metrics WHERE time > now()", 0, 0),
        (
            "SELECT count(*) FROM metrics WHERE time > now() - INTERVAL '36500 days'",
            2,
            180,
        ),
    ];
    for (sql, files, rows) in cases {
        let plan = e.physical_plan(sql).await.expect(sql);
        assert_eq!(scanned_files(&plan).len(), files, "files scanned by: {sql}");
        assert_eq!(count(&e, sql).await, rows, "rows of: {sql}");
    }
}

/// `attributes['…']` and `resource['…']` read map values, in SELECT and WHERE.
#[tokio::test]
async fn map_access() {
    let e = engine().await;
    let out = e
        .query("SELECT attributes['http.route'] AS route, resource['host.name'] AS host FROM metrics ORDER BY time LIMIT 2")
        .await
        .expect("map access");
    let b = &out.batches[0];
    let route = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).expect("cast");
    let host = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8).expect("cast");
    assert_eq!(route.as_string::<i32>().value(0), "/api");
    assert_eq!(route.as_string::<i32>().value(1), "/health");
    assert_eq!(host.as_string::<i32>().value(0), "h1");
    assert_eq!(
        count(
            &e,
            "SELECT count(*) FROM metrics WHERE attributes['http.route'] = '/api'"
        )
        .await,
        90
    );
}

/// `SHOW TABLES`, `information_schema` and `DESCRIBE` list the storage tables.
#[tokio::test]
async fn catalog_queries() {
    let e = engine().await;
    let out = e.query("SHOW TABLES").await.expect("show tables");
    let text = arrow::util::pretty::pretty_format_batches(&out.batches)
        .expect("fmt")
        .to_string();
    assert!(text.contains("| metrics"), "{text}");
    let out = e
        .query("SELECT column_name FROM information_schema.columns WHERE table_name = 'metrics' ORDER BY ordinal_position LIMIT 3")
        .await
        .expect("information_schema");
    let names = out.batches[0].column(0).as_string::<i32>();
    assert_eq!(
        (names.value(0), names.value(1), names.value(2)),
        ("time", "start_time", "metric")
    );
    let out = e.query("DESCRIBE metrics").await.expect("describe");
    assert_eq!(
        out.num_rows(),
        phoenix_model::metrics_schema().fields().len()
    );

    // A table created after the engine is visible at once.
    e.storage().table("rollup_1m").expect("create");
    let out = e.query("SHOW TABLES").await.expect("show tables");
    let text = arrow::util::pretty::pretty_format_batches(&out.batches)
        .expect("fmt")
        .to_string();
    assert!(text.contains("rollup_1m"), "{text}");
}

/// Everything that writes, defines, changes settings or touches files is refused with 400.
#[tokio::test]
async fn sandbox_refusals() {
    let e = engine().await;
    let refused = [
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/phoenix-copy-test.csv'",
        "COPY metrics TO '/tmp/phoenix-copy-test.parquet'",
        "INSERT INTO metrics SELECT * FROM metrics",
        "DROP TABLE metrics",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "SET datafusion.execution.target_partitions = 1",
        "SELECT 1 INTO t",
        "SELECT 1; SELECT 2",
        "SELECT 1; DROP TABLE metrics",
        "EXPLAIN COPY (SELECT 1) TO '/tmp/phoenix-copy-test.csv'",
    ];
    for sql in refused {
        match e.query(sql).await {
            Err(err @ QueryError::Refused(_)) => assert_eq!(err.status_code(), 400, "{sql}"),
            other => panic!("{sql}: expected Refused, got {other:?}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/phoenix-copy-test.csv").exists());
    for sql in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'file:///etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/tmp/x.parquet')",
        "SELECT nope FROM metrics",
        "SELEC 1",
    ] {
        match e.query(sql).await {
            Err(err @ (QueryError::Invalid(_) | QueryError::Refused(_))) => {
                assert_eq!(err.status_code(), 400, "{sql}")
            }
            other => panic!("{sql}: expected Invalid, got {other:?}"),
        }
    }
    // The tables are intact.
    assert_eq!(count(&e, "SELECT count(*) FROM metrics").await, 180);
}

/// A query needing more than `query_memory_bytes` fails cleanly instead of spilling.
#[tokio::test]
async fn memory_budget_exhausted() {
    let e = engine_with(ApiConfig {
        query_memory_bytes: 1024 * 1024,
        ..ApiConfig::default()
    })
    .await;
    let err = e
        .query("SELECT value FROM generate_series(1, 2000000) ORDER BY value DESC")
        .await
        .expect_err("over budget");
    assert!(matches!(err, QueryError::ResourcesExhausted(_)), "{err:?}");
    assert_eq!(err.status_code(), 400);
    // Small queries still run with the same budget.
    assert_eq!(count(&e, "SELECT count(*) FROM metrics").await, 180);
}

/// More rows than `max_result_rows` is an error, not a truncated answer.
#[tokio::test]
async fn row_cap() {
    let e = engine_with(ApiConfig {
        max_result_rows: 100,
        ..ApiConfig::default()
    })
    .await;
    let err = e
        .query("SELECT * FROM metrics")
        .await
        .expect_err("too many rows");
    assert!(
        matches!(err, QueryError::ResourcesExhausted(ref m) if m.contains("100")),
        "{err:?}"
    );
    assert_eq!(
        e.query("SELECT * FROM metrics LIMIT 100")
            .await
            .expect("at cap")
            .num_rows(),
        100
    );
}

/// A query past the time limit is cancelled; meanwhile a second query over the concurrency
/// limit is turned away at once with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_busy() {
    let e = engine_with(ApiConfig {
        query_timeout_secs: 1,
        max_concurrent_queries: 1,
        ..ApiConfig::default()
    })
    .await;
    let slow = tokio::spawn({
        let e = e.clone();
        async move {
            e.query("SELECT count(*) FROM generate_series(1, 100000000000)")
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = e.query("SELECT 1").await.expect_err("busy");
    assert!(matches!(busy, QueryError::Busy { limit: 1 }), "{busy:?}");
    assert_eq!(busy.status_code(), 503);
    let err = slow.await.expect("join").expect_err("timeout");
    assert!(matches!(err, QueryError::Timeout { secs: 1 }), "{err:?}");
    assert!(err.to_string().contains("1s"), "{err}");
    // The permit is back.
    assert_eq!(count(&e, "SELECT count(*) FROM metrics").await, 180);
}

/// The filter reaches the Parquet scan: row groups of other metrics are skipped by statistics.
#[tokio::test]
async fn row_groups_are_pruned() {
    let storage = Storage::open(&StorageConfig {
        url: "memory://".into(),
        row_group_rows: 10,
        ..StorageConfig::default()
    })
    .await
    .expect("open");
    let table = storage.table("metrics").expect("metrics");
    let mut pts = Vec::new();
    for m in ["a", "b", "c", "d"] {
        pts.extend(points(m, "web", T0, 10));
    }
    table.append(metrics_batch(&pts)).expect("append");
    table.flush().await.expect("flush");
    let e = QueryEngine::new(storage, &ApiConfig::default()).expect("engine");
    let out = e
        .query("EXPLAIN ANALYZE SELECT count(*) FROM metrics WHERE metric = 'c'")
        .await
        .expect("explain analyze");
    let text = arrow::util::pretty::pretty_format_batches(&out.batches)
        .expect("fmt")
        .to_string();
    assert!(
        text.contains("row_groups_pruned_statistics=4 total → 1 matched"),
        "{text}"
    );
    assert_eq!(
        count(&e, "SELECT count(*) FROM metrics WHERE metric = 'c'").await,
        10
    );
}
