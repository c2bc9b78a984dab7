//! The ceiling: how fast this machine merely parses OTLP protobuf with prost.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

fn decode(c: &mut Criterion) {
    let points = 1000;
    let bytes = phoenix_benches::gauge_request(points, 1_700_000_000_000_000_000).encode_to_vec();
    let mut group = c.benchmark_group("otlp_decode");
    group.throughput(Throughput::Elements(points as u64));
    group.bench_function("prost_1000_gauges", |b| {
        b.iter(|| {
            ExportMetricsServiceRequest::decode(bytes.as_slice()).map(|r| r.resource_metrics.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
