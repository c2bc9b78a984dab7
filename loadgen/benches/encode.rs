//! How many datapoints per second one core can generate: patch pre-encoded OTLP request
//! bodies in place (`Chunk::fill`) and copy them out as a request body would be.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use phoenix_loadgen::encode::{build_chunks, Workload};
use phoenix_loadgen::Mix;

fn workload(mix: Mix) -> Workload {
    Workload {
        series: 100_000,
        attributes: 3,
        batch_size: 1000,
        connections: 8,
        mix,
        churn_per_sec: 0,
        id_attribute: "series.id".into(),
        seed: 1,
        timestamps: phoenix_loadgen::Timestamps::Wall,
        decimals: None,
    }
}

fn bench_fill(c: &mut Criterion) {
    let cases = [
        (
            "gauge_only",
            Mix {
                weights: [1, 0, 0, 0],
            },
        ),
        ("default_mix", Mix::default()),
    ];
    let mut group = c.benchmark_group("loadgen_fill");
    for (name, mix) in cases {
        let mut chunks = build_chunks(&workload(mix), 0).expect("build");
        let points: usize = chunks.iter().map(|c| c.datapoints()).sum();
        group.throughput(Throughput::Elements(points as u64));
        let mut now = 1_000_000_000u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += 1_000_000;
                let mut bytes = 0;
                for chunk in chunks.iter_mut() {
                    chunk.fill(now);
                    // The copy every request makes into its body.
                    bytes += bytes::Bytes::copy_from_slice(chunk.bytes()).len();
                }
                bytes
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fill);
criterion_main!(benches);
