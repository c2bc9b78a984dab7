//! Parquet encoding: sort + zstd encode + put of one flush of 360k gauge points (1,000 series ×
//! 360 scrapes 10 s apart) into an in-memory object store, with values that repeat per series
//! and with full-precision random values (as `phoenix loadgen` sends by default); and one flush
//! shaped like the end-to-end run's (100,000 loadgen series × 5 points, random values).
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::sync::Arc;

use arrow::array::RecordBatch;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use object_store::memory::InMemory;
use phoenix_benches::{gauge_batch, loadgen_batches, shift_time, with_random_values, INTERVAL_NS};
use phoenix_storage::Storage;

fn flush(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let base = gauge_batch(1000, 1_700_000_000_000_000_000);
    // Within one hour partition: 360 scrapes of 1,000 series.
    let scrapes = 360;
    let batches: Vec<_> = (0..scrapes)
        .map(|k| shift_time(&base, k as i64 * INTERVAL_NS))
        .collect();
    let random = with_random_values(&batches, 42);
    // At 1M datapoints/s over 100k series a series sends every 100 ms; the default flush
    // limits (128 MiB of Arrow memory) close a flush after about half a million rows.
    let e2e = with_random_values(
        &loadgen_batches(100, 5, 1_700_000_000_000_000_000, 100_000_000),
        42,
    );
    let config = phoenix_model::config::StorageConfig {
        url: "memory://".into(),
        ..Default::default()
    };
    let mut group = c.benchmark_group("parquet_flush");
    group.sample_size(10);
    for (name, input) in [
        ("sort_encode_put_360k_gauges", &batches),
        ("sort_encode_put_360k_random_gauges", &random),
        ("sort_encode_put_500k_loadgen_100k_series", &e2e),
    ] {
        let rows: usize = input.iter().map(RecordBatch::num_rows).sum();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let storage = Storage::open_with_store(Arc::new(InMemory::new()), &config)
                        .await
                        .expect("storage");
                    let table = storage.table("metrics").expect("table");
                    for batch in input {
                        table.append(batch.clone()).expect("append");
                    }
                    table.flush().await.expect("flush").bytes
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);
