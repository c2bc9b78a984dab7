//! SQL over 10M stored points (1,000 series × 10,000 scrapes 10 s apart, ~28 hourly files):
//! a full-table aggregate and a one-hour time-range aggregate that prunes files.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use phoenix_analytics::QueryEngine;
use phoenix_benches::{gauge_batch, shift_time, INTERVAL_NS};
use phoenix_storage::Storage;

const SCRAPES: usize = 10_000;
const BASE_NS: u64 = 1_700_000_000_000_000_000;

fn sql(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = phoenix_model::config::StorageConfig {
        url: dir.path().join("tables").display().to_string(),
        data_dir: dir.path().display().to_string(),
        ..Default::default()
    };
    let engine = runtime.block_on(async {
        let storage = Storage::open(&config).await.expect("storage");
        let table = storage.table("metrics").expect("table");
        let base = gauge_batch(1000, BASE_NS);
        for k in 0..SCRAPES {
            table
                .append(shift_time(&base, k as i64 * INTERVAL_NS))
                .expect("append");
            if k % 1000 == 999 {
                table.flush().await.expect("flush");
            }
        }
        table.flush().await.expect("flush");
        QueryEngine::new(storage, &Default::default()).expect("engine")
    });
    let count = runtime
        .block_on(engine.query("SELECT count(*) AS n FROM metrics"))
        .expect("count");
    let n = arrow::util::pretty::pretty_format_batches(&count.batches)
        .map(|t| t.to_string())
        .unwrap_or_default();
    assert!(
        n.contains("10000000"),
        "expected 10M stored points, got {n}"
    );

    let mut group = c.benchmark_group("sql_10m_points");
    group.sample_size(10);
    group.throughput(Throughput::Elements((SCRAPES * 1000) as u64));
    group.bench_function("group_by_metric_avg", |b| {
        b.iter(|| {
            runtime
                .block_on(engine.query(
                    "SELECT metric, count(*), avg(value), max(value) FROM metrics GROUP BY metric",
                ))
                .map(|o| o.batches.len())
                .expect("query")
        })
    });
    let start = BASE_NS as i64 + 3_600_000_000_000 * 5;
    let hour_query = format!(
        "SELECT attributes['host'] AS host, avg(value) FROM metrics \
         WHERE time >= to_timestamp_nanos({start}) AND time < to_timestamp_nanos({}) GROUP BY 1",
        start + 3_600_000_000_000
    );
    group.bench_function("one_hour_group_by_attribute", |b| {
        b.iter(|| {
            runtime
                .block_on(engine.query(&hour_query))
                .map(|o| o.batches.len())
                .expect("query")
        })
    });
    group.finish();
}

criterion_group!(benches, sql);
criterion_main!(benches);
