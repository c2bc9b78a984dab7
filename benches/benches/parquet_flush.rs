//! Parquet encoding: sort + zstd encode + put of one flush of 1M gauge points (1,000 series ×
//! 1,000 scrapes 10 s apart) into an in-memory object store.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use object_store::memory::InMemory;
use phoenix_benches::{gauge_batch, shift_time, INTERVAL_NS};
use phoenix_storage::Storage;

fn flush(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let base = gauge_batch(1000, 1_700_000_000_000_000_000);
    // Within one hour partition: 360 scrapes of 1,000 series.
    let scrapes = 360;
    let batches: Vec<_> = (0..scrapes)
        .map(|k| shift_time(&base, k as i64 * INTERVAL_NS))
        .collect();
    let rows = (scrapes * 1000) as u64;
    let config = phoenix_model::config::StorageConfig {
        url: "memory://".into(),
        ..Default::default()
    };
    let mut group = c.benchmark_group("parquet_flush");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function("sort_encode_put_360k_gauges", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let storage = Storage::open_with_store(Arc::new(InMemory::new()), &config)
                    .await
                    .expect("storage");
                let table = storage.table("metrics").expect("table");
                for batch in &batches {
                    table.append(batch.clone()).expect("append");
                }
                table.flush().await.expect("flush").bytes
            })
        })
    });
    group.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);
